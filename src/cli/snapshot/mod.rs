//! `snapkeep snapshot ...`: create, list, inspect, compare, delete and copy
//! snapshots, and list (`ls`) or read (`dump`) the files inside one.

mod copy;
mod create;
mod delete;
mod diff;
mod dump;
pub(super) mod get;
mod list;
mod ls;

use super::args::SnapshotCommand;
use super::context::Ctx;
use crate::native::error::Result;

pub fn run(ctx: &Ctx, command: SnapshotCommand) -> Result<()> {
    match command {
        SnapshotCommand::Create(a) => create::run(ctx, a),
        SnapshotCommand::List(a) => list::run(ctx, a),
        SnapshotCommand::Get(a) => get::run(ctx, a),
        SnapshotCommand::Diff(a) => diff::run(ctx, a),
        SnapshotCommand::Delete(a) => delete::run(ctx, a),
        SnapshotCommand::Ls(a) => ls::run(ctx, a),
        SnapshotCommand::Dump(a) => dump::run(ctx, a),
        SnapshotCommand::Copy(a) => copy::run(ctx, a),
    }
}
