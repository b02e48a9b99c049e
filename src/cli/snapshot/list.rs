//! `snapkeep snapshot list`: one page of a repository's snapshots.

use super::get::in_progress_json;
use crate::cli::args::ListArgs;
use crate::cli::context::Ctx;
use crate::cli::render::{bytes, iso_time, print_json};
use crate::core::elapsed::clock_text;
use crate::core::policy::listing::{list, ListParams, Page};
use crate::native::clock::now_millis;
use crate::native::error::{Error, Result};
use crate::native::inflight::{scan, Marker};

pub fn run(ctx: &Ctx, a: ListArgs) -> Result<()> {
    // The query is checked before the repository is read, by the parser
    // the Worker and the inspector share.
    let q = ListParams {
        sort: Some(&a.sort),
        order: Some(&a.order),
        size: a.size.as_deref(),
        after: a.after.as_deref(),
    }
    .parse()
    .map_err(|e| Error::Usage(e.to_string()))?;
    let repo = ctx.open(&a.repo)?;
    let root = repo.root()?;
    let page = list(&root.snapshots, &q).map_err(|e| Error::Usage(e.to_string()))?;
    let markers = scan(&repo, now_millis())?;
    let running = markers.running_snapshots(&|n| root.snapshot(n).is_some());
    if a.json {
        let mut v = crate::repo::shapes::page_json(&page);
        // Only when there are some: the page is otherwise the API's shape.
        if !running.is_empty() {
            v["in_progress"] = running.iter().map(|m| in_progress_json(m)).collect();
        }
        print_json(&v);
    } else {
        print_table(&page, &running);
    }
    Ok(())
}

/// The page as a table, snapshots other writers are creating first;
/// printed even with `--quiet`, as it is the answer.
fn print_table(page: &Page, running: &[&Marker]) {
    println!(
        "{:<28} {:<8} {:<24} {:>10} {:>7} {:>11} {:>11}",
        "snapshot", "state", "start_time", "duration", "indices", "size", "new logical"
    );
    for m in running {
        println!(
            "{:<28} {:<8} {:<24} {:>10} {:>7} {:>11} {:>11}",
            m.snapshot,
            "IN_PROGRESS",
            iso_time(m.started_ms),
            "-",
            "-",
            "-",
            "-"
        );
    }
    for s in &page.snapshots {
        println!(
            "{:<28} {:<8} {:<24} {:>10} {:>7} {:>11} {:>11}",
            s.snapshot,
            s.state.as_str(),
            iso_time(s.start_time_in_millis),
            clock_text(s.duration_in_millis().max(0) as u64),
            s.indices.len(),
            bytes(s.size_in_bytes),
            bytes(s.new_bytes)
        );
    }
    if let Some(n) = &page.next {
        println!("({} more; next page: --after '{n}')", page.remaining);
    }
}
