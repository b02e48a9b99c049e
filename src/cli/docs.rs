//! `snapkeep completions` and `snapkeep man`: generated from the same clap
//! definitions as `--help`, so they cannot drift from it.

use std::io::Write;
use std::path::Path;

use clap::CommandFactory;

use super::args::Cli;
use crate::native::error::{Error, Result};

/// Prints `shell`'s completion script on stdout.
pub fn completions(shell: clap_complete::Shell) -> Result<()> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "snapkeep", &mut out);
    write_stdout(&out)
}

/// Without `dir`: one page on stdout, with every command (nested ones
/// included) in its COMMANDS section. With `dir`: `snapkeep.1` and a page
/// per subcommand, as `man` finds them under a `man1` folder.
pub fn man(dir: Option<&Path>) -> Result<()> {
    let cmd = Cli::command();
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        return clap_mangen::generate_to(cmd, dir).map_err(|e| Error::io(dir, e));
    }
    let page = one_page(cmd).map_err(|e| Error::io("stdout", e))?;
    write_stdout(&page)
}

/// clap_mangen's page with a COMMANDS section naming every nested
/// command, put before its VERSION section.
fn one_page(cmd: clap::Command) -> std::io::Result<Vec<u8>> {
    let mut cmd = cmd;
    cmd.build();
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut page)?;
    let page = String::from_utf8_lossy(&page).into_owned();
    let mut section = String::from(".SH COMMANDS\n");
    for (path, about) in commands(&cmd, "snapkeep") {
        section.push_str(&format!(
            ".TP\n\\fB{}\\fR\n{}\n",
            roff_text(&path),
            roff_text(&about)
        ));
    }
    let at = page.find(".SH VERSION").unwrap_or(page.len());
    Ok([&page[..at], &section, &page[at..]].concat().into_bytes())
}

/// Every subcommand under `cmd`, depth first, as its full invocation and
/// its one-line description.
fn commands(cmd: &clap::Command, prefix: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let path = format!("{prefix} {}", sub.get_name());
        let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
        out.push((path.clone(), about));
        out.extend(commands(sub, &path));
    }
    out
}

/// Text safe in a roff paragraph: backslashes escaped, hyphens as
/// hyphen-minus, and a line never starting a request.
fn roff_text(s: &str) -> String {
    let escaped = s.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with(['.', '\'']) {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

fn write_stdout(bytes: &[u8]) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .map_err(|e| Error::io("stdout", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_commands_are_listed_with_their_parents() {
        let list = commands(&Cli::command(), "snapkeep");
        assert!(list.iter().any(|(p, _)| p == "snapkeep snapshot create"));
        assert!(list
            .iter()
            .any(|(p, _)| p == "snapkeep slm execute-retention"));
        assert!(list.iter().all(|(_, about)| !about.is_empty()));
    }
}
