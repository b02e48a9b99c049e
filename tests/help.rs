//! Help, completions and the manual page, from the real binary: every
//! command and argument is described, REPO's help names every kind of
//! location, no default is shown twice, and the generated completion
//! scripts and man page cover every subcommand.

mod common;

use common::*;

/// Every subcommand path (`["snapshot", "create"]`, ...), read from the
/// binary's own help, so a command added later is covered without
/// editing this list.
fn command_paths() -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut todo: Vec<Vec<String>> = vec![vec![]];
    while let Some(path) = todo.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let help = ok(&args);
        for name in subcommands(&help) {
            let mut sub = path.clone();
            sub.push(name);
            todo.push(sub.clone());
            out.push(sub);
        }
    }
    out
}

/// The names under a help text's `Commands:` heading (clap's `help` left out).
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| *n != "help")
        .map(str::to_string)
        .collect()
}

#[test]
fn every_command_and_argument_has_a_description() {
    let paths = command_paths();
    assert!(paths.len() > 20, "{paths:?}");
    for path in &paths {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let help = ok(&args);
        let mut in_list = false;
        let mut lines = help.lines().peekable();
        while let Some(line) = lines.next() {
            if line.ends_with(':') && !line.starts_with(' ') {
                in_list = matches!(line, "Arguments:" | "Options:" | "Commands:");
                continue;
            }
            // An entry is "  NAME" or "  -f, --flag <V>"; its description
            // follows on the same line after two spaces, or on the next,
            // deeper-indented line.
            if in_list && line.starts_with("  ") && !line.starts_with("   ") {
                let entry = line.trim();
                let described = entry.contains("  ")
                    || lines
                        .peek()
                        .is_some_and(|next| next.starts_with("          "));
                assert!(described, "{path:?}: {entry:?} has no description:\n{help}");
            }
            if in_list {
                let defaults = line.matches("[default:").count();
                assert!(defaults <= 1, "{path:?}: default shown twice: {line}");
            }
        }
        // A default in the text and clap's [default: ..] on one argument.
        for para in help.split("\n\n") {
            assert!(
                para.matches("[default:").count() <= 1 || para.starts_with("Options:"),
                "{path:?}: a default shown twice in\n{para}"
            );
        }
    }
}

#[test]
fn repo_help_names_every_kind_of_location() {
    let help = ok(&["--help"]);
    for kind in [
        "folder path",
        "file://",
        "s3://",
        "az://",
        "azure://",
        "gs://",
        "R2",
        "https://HOST/api/repos/NAME",
        "@PROFILE",
        "SNAPKEEP_REPOSITORY",
        "--repo-file",
        "config.toml",
    ] {
        assert!(help.contains(kind), "{kind} missing from --help:\n{help}");
    }
    let stats = ok(&["repo", "stats", "--help"]);
    assert!(stats.contains("Repository location"), "{stats}");
}

#[test]
fn completion_scripts_know_every_subcommand() {
    let paths = command_paths();
    for shell in ["bash", "zsh", "fish"] {
        let script = ok(&["completions", shell]);
        assert!(script.contains("snapkeep"), "{shell}");
        for path in &paths {
            let name = path.last().unwrap();
            assert!(script.contains(name.as_str()), "{shell}: no {name}");
        }
    }
    let bash = ok(&["completions", "bash"]);
    assert!(bash.contains("complete -F"), "{bash}");
    assert!(bash.contains("--repo-file"), "global flags complete too");
    let err = fails(&["completions", "tcsh"]);
    assert!(err.contains("tcsh") && err.contains("bash"), "{err}");
}

#[test]
fn the_man_page_lists_every_subcommand() {
    let page = ok(&["man"]);
    assert!(
        page.starts_with(".ie") || page.contains(".TH snapkeep"),
        "{page}"
    );
    let text = page.replace("\\-", "-");
    for path in command_paths() {
        let full = format!("snapkeep {}", path.join(" "));
        assert!(text.contains(&full), "{full} missing from the man page");
    }
    assert!(
        text.contains("--storage-option"),
        "global options are in it"
    );

    // `--dir` writes a page per command, as `man -l` reads them.
    let t = tempfile::tempdir().unwrap();
    ok(&["man", "--dir", s(t.path())]);
    for page in [
        "snapkeep.1",
        "snapkeep-snapshot.1",
        "snapkeep-snapshot-create.1",
    ] {
        let body = std::fs::read_to_string(t.path().join(page)).unwrap();
        assert!(body.contains(".TH"), "{page}");
    }
}
