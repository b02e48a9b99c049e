//! `snapkeep snapshot ...`: create, list, inspect, compare and delete snapshots.

mod create;
mod delete;
mod diff;
pub(super) mod get;
mod list;

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
    }
}
