//! `snapkeep repo key list|add|remove|passwd`: the passwords of an
//! encrypted repository. Each password is one key slot wrapping the same
//! master key, so adding, removing or changing one touches no other object.
//! `export` prints that master key, the edge Worker's read key.

use serde_json::json;

use crate::cli::args::{KeyCommand, NewKeyArgs, RemoveKeyArgs, RepoArgs};
use crate::cli::context::Ctx;
use crate::cli::render::print_json;
use crate::core::crypto::keys::MasterKey;
use crate::core::crypto::slot::Argon2Params;
use crate::native::error::{Error, Result};
use crate::native::password::{new_password, os_random, NEW_PASSWORD_ENV};
use crate::native::repo::Repo;
use crate::native::runtime::block_on;
use crate::repo::keyring;

/// The edge Worker's secret for the read key (src/edge/read_key.rs).
const READ_KEY_SECRET: &str = "SNAPKEEP_READ_KEY";

pub fn run(ctx: &Ctx, command: KeyCommand) -> Result<()> {
    match command {
        KeyCommand::List(a) => list(ctx, a),
        KeyCommand::Add(a) => add(ctx, a, false),
        KeyCommand::Passwd(a) => add(ctx, a, true),
        KeyCommand::Remove(a) => remove(ctx, a),
        KeyCommand::Export(a) => export(ctx, a),
    }
}

/// Opens the repository (which proves the password) and refuses a plain
/// one; with the master key and the slot that opened it (one key
/// derivation in all).
fn open_encrypted(ctx: &Ctx, repo: &str) -> Result<(Repo, MasterKey, String)> {
    let repo = ctx.open(repo)?;
    let Some((master, opened)) = repo.sealing().master_key() else {
        return Err(Error::Usage(format!(
            "the repository at {} is not encrypted: it has no keys (create an encrypted one with `repo init --encryption`)",
            repo.store.location()
        )));
    };
    let (master, opened) = (master.clone(), opened.to_string());
    Ok((repo, master, opened))
}

fn list(ctx: &Ctx, a: RepoArgs) -> Result<()> {
    let (repo, _, opened) = open_encrypted(ctx, &a.repo)?;
    let store = repo.reader().unsealed_store();
    let (slots, unreadable) = block_on(keyring::slots(store.as_ref()))?;
    let rows: Vec<_> = slots
        .iter()
        .map(|s| {
            let p = s.slot.params();
            json!({
                "id": s.id,
                "current": s.id == opened,
                "kdf": "argon2id",
                "memory_kib": p.memory_kib,
                "iterations": p.iterations,
                "parallelism": p.parallelism,
                "modified_millis": s.modified_ms,
            })
        })
        .collect();
    if a.json {
        print_json(&json!({"keys": rows, "unreadable": unreadable}));
        return Ok(());
    }
    for s in &slots {
        let p = s.slot.params();
        println!(
            "{} {}  argon2id m={} KiB t={} p={}",
            if s.id == opened { "*" } else { " " },
            s.id,
            p.memory_kib,
            p.iterations,
            p.parallelism
        );
    }
    if unreadable > 0 {
        ctx.say(format!("{unreadable} unreadable key slot(s) under keys/"));
    }
    Ok(())
}

fn add(ctx: &Ctx, a: NewKeyArgs, replace: bool) -> Result<()> {
    let (repo, master, opened) = open_encrypted(ctx, &a.repo)?;
    let store = repo.reader().unsealed_store();
    let password = new_password(a.new_password_file.as_deref(), NEW_PASSWORD_ENV, "password")?;
    let slot = keyring::wrap(&master, &password, Argon2Params::DEFAULT, os_random)?;
    let id = block_on(keyring::put_slot(store.as_ref(), &slot, os_random))?;
    if replace {
        block_on(keyring::remove_slot(store.as_ref(), &opened))?;
    }
    if a.json {
        let removed = replace.then_some(&opened);
        print_json(&json!({"acknowledged": true, "added": id, "removed": removed}));
    } else if replace {
        ctx.say(format!("password changed: key slot {id} replaces {opened}"));
    } else {
        ctx.say(format!("added key slot {id}"));
    }
    Ok(())
}

fn remove(ctx: &Ctx, a: RemoveKeyArgs) -> Result<()> {
    let (repo, _, _) = open_encrypted(ctx, &a.repo)?;
    let store = repo.reader().unsealed_store();
    block_on(keyring::remove_slot(store.as_ref(), &a.id))?;
    if a.json {
        print_json(&json!({"acknowledged": true, "removed": a.id}));
    } else {
        ctx.say(format!("removed key slot {}", a.id));
    }
    Ok(())
}

/// Prints the master key (hex) on stdout, and on stderr what it is: the
/// warning is never silenced by --quiet or --json, since the key opens
/// every object whatever the passwords.
fn export(ctx: &Ctx, a: RepoArgs) -> Result<()> {
    let (repo, master, _) = open_encrypted(ctx, &a.repo)?;
    let store = repo.reader().unsealed_store();
    let key = master.to_hex();
    eprintln!(
        "warning: this is the master key of {}: it opens the whole repository, and changing or removing passwords does not change it; give it only to what may read everything (the edge Worker's secret {READ_KEY_SECRET})",
        store.location()
    );
    if a.json {
        print_json(&json!({"master_key": key.as_str(), "secret": READ_KEY_SECRET}));
    } else {
        println!("{}", key.as_str());
    }
    Ok(())
}
