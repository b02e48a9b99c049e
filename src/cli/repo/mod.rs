//! `snapkeep repo ...`: create, inspect, verify and maintain repositories.

mod analyze;
mod check;
mod cleanup;
mod init;
mod key;
mod settings;
mod stats;
mod verify;

use super::args::RepoCommand;
use super::context::Ctx;
use crate::native::error::Result;

pub fn run(ctx: &Ctx, command: RepoCommand) -> Result<()> {
    match command {
        RepoCommand::Init(a) => init::run(ctx, a),
        RepoCommand::Stats(a) => stats::run(ctx, a),
        RepoCommand::Key(c) => key::run(ctx, c),
        RepoCommand::Check(a) => check::run(ctx, a),
        RepoCommand::Verify(a) => verify::run(ctx, a),
        RepoCommand::Cleanup(a) => cleanup::run(ctx, a),
        RepoCommand::Settings(a) => settings::run(ctx, a),
        RepoCommand::Analyze(a) => analyze::run(ctx, a),
    }
}
