//! `snapkeep node`: merges the config file with the flags and runs the
//! node; `snapkeep node hash-password` hashes a password from stdin.

use std::io::Read;

use crate::cli::args::{NodeAction, NodeArgs};
use crate::native::error::{Error, Result};
use crate::node::config::{read_file, settings, FileConfig, Overrides};

pub fn run(a: NodeArgs) -> Result<()> {
    if let Some(NodeAction::HashPassword) = a.action {
        return hash_password();
    }
    let file = match &a.config {
        Some(path) => read_file(path)?,
        None => FileConfig::default(),
    };
    let flags = Overrides {
        data: a.data,
        listen: a.listen,
        state: a.state,
        path_repo: a.path_repo,
        tls_cert: a.tls_cert,
        tls_key: a.tls_key,
        www: a.www,
        env_token: std::env::var("SNAPKEEP_NODE_TOKEN").ok(),
        slm_minimum_interval: a.slm_minimum_interval,
        slm_retention_schedule: a.slm_retention_schedule,
        test_clock_offset_ms: a.test_clock_offset,
    };
    crate::node::run(settings(file, flags)?)?;
    Ok(())
}

/// The password is stdin up to the end of its first line.
fn hash_password() -> Result<()> {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .map_err(|e| Error::Usage(format!("cannot read the password from stdin: {e}")))?;
    let password = input.lines().next().unwrap_or_default();
    if password.is_empty() {
        return Err(Error::Usage("no password on stdin".into()));
    }
    println!("{}", crate::node::hash_password(password)?);
    Ok(())
}
