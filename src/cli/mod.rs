//! The `snapkeep` command line: parses arguments, calls the native shell,
//! prints results. Errors end the process with one line on stderr and a
//! non-zero exit status. Each command lives in its own module (`repo/`,
//! `snapshot/`, `restore.rs`, `demo.rs`, `node.rs`, `retention.rs`,
//! `slm.rs`, `ccr.rs`, the last two over
//! `node_client.rs`); `run` only dispatches.

pub mod args;
mod ccr;
mod ccr_text;
mod context;
mod default_repo;
pub mod demo;
mod docs;
pub mod exit;
mod materialize;
mod mount;
mod mount_daemon;
mod node;
mod node_client;
mod profiles;
pub mod render;
mod repo;
mod restore;
mod retention;
mod slm;
mod snapshot;

use std::process::ExitCode;

use crate::native::error::{Error, Result};
use args::{Cli, Command};
use context::Ctx;

pub fn main() -> ExitCode {
    // Every command that has `--json` takes it as this exact flag, and a
    // command without one does not parse with it.
    let json = std::env::args_os().any(|a| a == "--json");
    let cli = match default_repo::parse(std::env::args_os().collect()) {
        Ok(cli) => cli,
        Err(default_repo::ParseFailure::Clap(e)) => return usage_error(e),
        Err(default_repo::ParseFailure::Repository(e)) => return report(&e, json),
    };
    match run(cli) {
        Ok(()) => ExitCode::from(exit::SUCCESS),
        Err(e) => report(&e, json),
    }
}

/// One line on stderr for every failure; with `--json`, Elasticsearch's
/// error object on stdout too, unless the command printed its own JSON
/// (a PARTIAL snapshot, a dry run's conflicts).
fn report(e: &Error, json: bool) -> ExitCode {
    let code = exit::code(e);
    let message = one_line(&without_os_error_codes(&e.to_string()));
    if code == exit::PARTIAL {
        eprintln!("warning: {message}");
    } else {
        if json && !render::json_printed() {
            render::print_json(&exit::error_json(e));
        }
        eprintln!("error: {message}");
    }
    ExitCode::from(code)
}

/// The operating system's error numbers (`No such file or directory (os
/// error 2)`) say nothing the words before them do not.
pub(crate) fn without_os_error_codes(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(i) = rest.find(" (os error ") {
        let tail = &rest[i + " (os error ".len()..];
        let digits = tail
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(tail.len());
        if digits > 0 && tail[digits..].starts_with(')') {
            out.push_str(&rest[..i]);
            rest = &tail[digits + 1..];
        } else {
            out.push_str(&rest[..i + 1]);
            rest = &rest[i + 1..];
        }
    }
    out.push_str(rest);
    out
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
    // clap's "a similar subcommand exists" tips stay on the one line.
    let tips: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("tip: "))
        .collect();
    let mut line = one_line(what.trim_start_matches("error: "));
    for tip in tips {
        line.push_str("; ");
        line.push_str(&one_line(tip.trim_start_matches("tip: ")));
    }
    if let Some(hint) = positional_hint(&e) {
        line.push_str("; ");
        line.push_str(hint);
    }
    eprintln!("error: {line} (see --help)");
    ExitCode::from(2)
}

/// A folder given where a flag belongs: `snapshot create REPO NAME DIR`
/// is how restic and borg users type it.
fn positional_hint(e: &clap::Error) -> Option<&'static str> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if e.kind() != ErrorKind::UnknownArgument {
        return None;
    }
    let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) else {
        return None;
    };
    let args: Vec<String> = std::env::args().collect();
    let creating = args
        .windows(2)
        .any(|w| w[0] == "snapshot" && w[1] == "create");
    let restoring = args.iter().any(|a| a == "restore");
    match () {
        _ if arg.starts_with('-') => None,
        _ if creating => Some("give the data directory with --source DIR"),
        _ if restoring => Some("give the folder to restore into with --target DIR"),
        _ => None,
    }
}

fn run(cli: Cli) -> Result<()> {
    crate::native::password::set_command(cli.password_command);
    let ctx = Ctx::new(cli.quiet, cli.storage_options, cli.token, cli.profile);
    match cli.command {
        Command::Repo(c) => repo::run(&ctx, c),
        Command::Snapshot(c) => snapshot::run(&ctx, c),
        Command::Restore(a) => restore::run(&ctx, a),
        Command::Mount(a) => mount::run(&ctx, a),
        Command::Materialize(a) => materialize::run(&ctx, a),
        Command::Demo(a) => demo::run(a.dir),
        Command::Node(a) => node::run(a),
        Command::Retention(c) => retention::run(&ctx, c),
        Command::Slm(a) => slm::run(&ctx, a),
        Command::Ccr(a) => ccr::run(&ctx, a),
        Command::Completions(a) => docs::completions(a.shell),
        Command::Man(a) => docs::man(a.dir.as_deref()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_error_numbers_are_dropped_and_nothing_else() {
        assert_eq!(
            without_os_error_codes("a: No such file or directory (os error 2); b (os error 13)"),
            "a: No such file or directory; b"
        );
        assert_eq!(
            without_os_error_codes("kept (os error x) and (os error 5"),
            "kept (os error x) and (os error 5"
        );
    }
}
