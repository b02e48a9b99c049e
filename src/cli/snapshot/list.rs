//! `snapkeep snapshot list`: one page of a repository's snapshots.

use crate::cli::args::{ListArgs, OrderArg};
use crate::cli::context::Ctx;
use crate::cli::render::{bytes, iso_time, print_json};
use crate::core::policy::listing::{list, ListQuery, ListingError, Page};
use crate::native::error::{Error, Result};

pub fn run(ctx: &Ctx, a: ListArgs) -> Result<()> {
    let root = ctx.open(&a.repo)?.root()?;
    let q = ListQuery {
        sort: a
            .sort
            .parse()
            .map_err(|e: ListingError| Error::Usage(e.to_string()))?,
        descending: matches!(a.order, OrderArg::Desc),
        size: a.size,
        after: a.after,
    };
    let page = list(&root.snapshots, &q).map_err(|e| Error::Usage(e.to_string()))?;
    if a.json {
        print_json(&crate::repo::shapes::page_json(&page));
    } else {
        print_table(&page);
    }
    Ok(())
}

/// The page as a table; printed even with `--quiet`, as it is the answer.
fn print_table(page: &Page) {
    println!(
        "{:<28} {:<8} {:<24} {:>10} {:>7} {:>11} {:>11}",
        "snapshot", "state", "start_time", "duration", "indices", "size", "new"
    );
    for s in &page.snapshots {
        println!(
            "{:<28} {:<8} {:<24} {:>8}ms {:>7} {:>11} {:>11}",
            s.snapshot,
            s.state.as_str(),
            iso_time(s.start_time_in_millis),
            s.duration_in_millis(),
            s.indices.len(),
            bytes(s.size_in_bytes),
            bytes(s.new_bytes)
        );
    }
    if let Some(n) = &page.next {
        println!("({} more; next page: --after '{n}')", page.remaining);
    }
}
