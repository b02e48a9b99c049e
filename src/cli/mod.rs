//! The `snapkeep` command line: parses arguments, calls the native shell,
//! prints results. Errors end the process with one line on stderr and a
//! non-zero exit status. Each command lives in its own module (`repo/`,
//! `snapshot/`, `restore.rs`, `demo.rs`, `node.rs`, `retention.rs`,
//! `slm.rs`); `run` only dispatches.

pub mod args;
mod context;
pub mod demo;
mod node;
pub mod render;
mod repo;
mod restore;
mod retention;
mod slm;
mod snapshot;

use std::process::ExitCode;

use clap::Parser;

use crate::native::error::Result;
use args::{Cli, Command};
use context::Ctx;

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e.to_string()));
            ExitCode::FAILURE
        }
    }
}

/// A message as one line: control characters (a newline in a file or
/// index name, say) are shown escaped.
pub fn one_line(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for c in message.trim_end().chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Help and version go out as clap prints them; a usage mistake is one line
/// on stderr, like every other error, with a pointer to `--help`.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        e.exit();
    }
    // The first paragraph says what is wrong (a list of missing arguments
    // continues on indented lines); tips and usage follow a blank line.
    let rendered = e.render().to_string();
    let first: Vec<&str> = rendered
        .lines()
        .skip_while(|l| l.trim().is_empty())
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect();
    let what = first.join(" ");
    eprintln!(
        "error: {} (see --help)",
        one_line(what.trim_start_matches("error: "))
    );
    ExitCode::from(2)
}

fn run(cli: Cli) -> Result<()> {
    let ctx = Ctx::new(cli.quiet, cli.storage_options, cli.token.clone());
    match cli.command {
        Command::Repo(c) => repo::run(&ctx, c),
        Command::Snapshot(c) => snapshot::run(&ctx, c),
        Command::Restore(a) => restore::run(&ctx, a),
        Command::Demo(a) => demo::run(a.dir),
        Command::Node(a) => node::run(a),
        Command::Retention(c) => retention::run(&ctx, c),
        Command::Slm(a) => slm::run(a, cli.token),
    }
}
