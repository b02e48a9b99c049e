//! `snapkeep ccr ...`: cross-cluster replication of a running node from
//! the command line (Elasticsearch's `_ccr` API and the remote clusters
//! of `_cluster/settings`). A thin HTTP client like `snapkeep slm`: the
//! node decides everything; this prints its answers (as they are with
//! `--json`, summarised by `ccr_text` otherwise).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{json, Map, Value};

use crate::cli::ccr_text::summary;
use crate::cli::context::Ctx;
use crate::cli::node_client::{segment, Client, NodeConnection};
use crate::cli::render::print_json;
use crate::native::error::{Error, Result};
use crate::native::runtime::block_on;

/// `snapkeep ccr --help`: on the `Ccr` variant of `Command`, since a
/// variant's doc comment would replace a long text set here.
pub const LONG_ABOUT: &str =
    "Cross-cluster replication on a running node: a follower index (a folder of \
    this node's data) kept in step with a leader index of another node, through \
    Elasticsearch's _ccr API.\n\n\
    First name the leader node as a remote of the follower node (`ccr remote put`), then \
    `ccr follow` a leader index into a follower index. `ccr stats` shows each follower's \
    checkpoints, lag and last error; `ccr pause`, `ccr resume` and `ccr unfollow` control it; \
    `ccr promote` fails over in one call (the follower becomes a writable leader of a new \
    lineage). `ccr auto-follow` follows new leader indices that match patterns.\n\n\
    Nodes with no connection to each other follow through a repository both have \
    registered (S3, Azure, GCS, a shared folder): `ccr publish INDEX --repository NAME` on \
    the leader node, `ccr remote put ALIAS --repository NAME` on the follower node, then \
    `ccr follow` as usual.\n\n\
    Every command is one HTTP request to --node. Errors are the node's, on one line (with \
    --json, its error object on stdout too); the exit status says their class (see \
    `snapkeep --help`).";

#[derive(Debug, Args)]
pub struct CcrArgs {
    #[command(flatten)]
    pub connection: NodeConnection,
    /// Print the node's JSON answer as it is.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: CcrCommand,
}

/// Follow parameters (Elasticsearch's names); those left out keep the
/// node's defaults.
#[derive(Debug, Args, Default, Clone)]
pub struct FollowOptions {
    /// How long one read waits on the leader for a change (e.g. 30s).
    #[arg(long, value_name = "TIME")]
    pub read_poll_timeout: Option<String>,
    /// The longest wait between retries of a failed read (e.g. 500ms).
    #[arg(long, value_name = "TIME")]
    pub max_retry_delay: Option<String>,
    /// The most bytes per second read from the leader (e.g. 40mb).
    #[arg(long, value_name = "SIZE")]
    pub max_bytes_per_sec: Option<String>,
    /// Elasticsearch's read size limit (accepted and shown; a checkpoint
    /// is read whole).
    #[arg(long, value_name = "SIZE")]
    pub max_read_request_size: Option<String>,
    /// Elasticsearch's concurrent reads (accepted and shown).
    #[arg(long, value_name = "N")]
    pub max_outstanding_read_requests: Option<u64>,
    /// Follow into an existing folder, keeping its files as the base of the
    /// first checkpoint (failback: only what diverged travels).
    #[arg(long)]
    pub reuse_existing: bool,
}

impl FollowOptions {
    /// The options given, as body members.
    fn members(&self) -> Map<String, Value> {
        let mut m = Map::new();
        let texts = [
            ("read_poll_timeout", &self.read_poll_timeout),
            ("max_retry_delay", &self.max_retry_delay),
            ("max_bytes_per_sec", &self.max_bytes_per_sec),
            ("max_read_request_size", &self.max_read_request_size),
        ];
        for (name, v) in texts {
            if let Some(v) = v {
                m.insert(name.into(), json!(v));
            }
        }
        if let Some(n) = self.max_outstanding_read_requests {
            m.insert("max_outstanding_read_requests".into(), json!(n));
        }
        if self.reuse_existing {
            m.insert("reuse_existing".into(), json!(true));
        }
        m
    }
}

#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum CcrCommand {
    /// Make FOLLOWER follow a leader index of a remote (PUT /<follower>/_ccr/follow).
    Follow {
        /// The follower index (a folder of this node's data).
        follower: String,
        /// The remote cluster's alias (see `ccr remote`).
        #[arg(long, value_name = "ALIAS")]
        remote: String,
        /// The leader index on the remote.
        #[arg(long, value_name = "NAME")]
        leader_index: String,
        #[command(flatten)]
        options: FollowOptions,
    },
    /// Pause a follower: its folder stays at the checkpoint it holds.
    Pause {
        /// The follower index.
        follower: String,
    },
    /// Resume a paused follower; options given replace all its parameters.
    Resume {
        /// The follower index.
        follower: String,
        #[command(flatten)]
        options: FollowOptions,
    },
    /// Stop following (pause first): the folder stays as a normal index.
    Unfollow {
        /// The follower index.
        follower: String,
    },
    /// Fail over: the follower stops following and leads a new lineage.
    Promote {
        /// The follower index.
        follower: String,
    },
    /// Followers' checkpoints, lag, bytes and last error (all by default).
    Stats {
        /// One follower index (default: every one, with auto-follow figures).
        index: Option<String>,
    },
    /// What an index follows, its status and parameters.
    Info {
        /// The index.
        index: String,
    },
    /// On a leader: drop a follower's leases (its checkpoints may then go).
    ForgetFollower {
        /// The leader index.
        leader: String,
        /// The follower node's id (its cluster_uuid).
        #[arg(long, value_name = "ID")]
        follower_cluster: String,
        /// The follower index on that node.
        #[arg(long, value_name = "NAME")]
        follower_index: String,
    },
    /// On a leader: publish an index into a registered repository for followers
    /// that cannot reach this node (PUT /<index>/_ccr/publish); without
    /// --repository, show what its publisher did.
    Publish {
        /// The leader index.
        index: String,
        /// The registered repository its checkpoints and feed go to.
        #[arg(long, value_name = "NAME")]
        repository: Option<String>,
    },
    /// On a leader: stop publishing an index (what was published stays).
    Unpublish {
        /// The leader index.
        index: String,
    },
    /// Patterns that follow new leader indices by themselves.
    #[command(subcommand)]
    AutoFollow(AutoFollowCommand),
    /// The remote clusters (leader nodes) this node can follow from.
    #[command(subcommand)]
    Remote(RemoteCommand),
}

// Parsed once per process: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum AutoFollowCommand {
    /// Store a pattern: leader indices created after it that match are followed.
    Put {
        /// The pattern's name.
        name: String,
        /// The remote cluster's alias.
        #[arg(long, value_name = "ALIAS")]
        remote: String,
        /// Leader index patterns, e.g. logs-* (repeatable or comma-separated).
        #[arg(
            long = "leader-pattern",
            value_name = "PATTERN",
            required = true,
            value_delimiter = ','
        )]
        leader_patterns: Vec<String>,
        /// Leader index patterns never followed (repeatable or comma-separated).
        #[arg(long = "exclude", value_name = "PATTERN", value_delimiter = ',')]
        exclusions: Vec<String>,
        /// The follower's name, with {{leader_index}} for the leader's [default: {{leader_index}}].
        #[arg(long, value_name = "PATTERN")]
        follow_pattern: Option<String>,
        #[command(flatten)]
        options: FollowOptions,
    },
    /// Show patterns (all by default).
    Get {
        /// A pattern's name (default: all).
        name: Option<String>,
    },
    /// Delete a pattern (the followers it started go on).
    Delete {
        /// The pattern's name.
        name: String,
    },
    /// Stop a pattern from following new indices.
    Pause {
        /// The pattern's name.
        name: String,
    },
    /// Start a paused pattern again (indices made meanwhile are followed).
    Resume {
        /// The pattern's name.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum RemoteCommand {
    /// Add or change a remote: a leader node's address and a token it accepts,
    /// or a registered repository its leader publishes into.
    Put {
        /// The remote's alias (what `ccr follow --remote` names).
        alias: String,
        /// The leader node's HTTP address, HOST:PORT.
        #[arg(
            long,
            value_name = "HOST:PORT",
            required_unless_present = "repository",
            conflicts_with = "repository"
        )]
        proxy_address: Option<String>,
        /// A repository registered on this node that the leader node publishes
        /// into (`ccr publish` there): for nodes with no connection between them.
        #[arg(long, value_name = "NAME", conflicts_with = "credentials_file")]
        repository: Option<String>,
        /// A file whose first line is a token the leader node accepts (kept
        /// off the command line, where other users could see it).
        #[arg(long, value_name = "FILE")]
        credentials_file: Option<PathBuf>,
    },
    /// Remove a remote.
    Delete {
        /// The remote's alias.
        alias: String,
    },
    /// Every remote: its address, and whether it answers now (and why not).
    Info,
}

pub fn run(ctx: &Ctx, a: CcrArgs) -> Result<()> {
    let client = Client::connect(&a.connection)?;
    let (method, path, body) = request(&a.command)?;
    let body = body.map(|v| v.to_string().into_bytes());
    let answer = block_on(client.send(method, &path, body))?;
    if a.json {
        print_json(&answer);
    } else {
        ctx.say(summary(&a.command, &answer));
    }
    Ok(())
}

/// The HTTP request a command makes.
fn request(c: &CcrCommand) -> Result<(Method, String, Option<Value>)> {
    let index = |i: &str, action: &str| format!("/{}/_ccr/{action}", segment(i));
    Ok(match c {
        CcrCommand::Follow {
            follower,
            remote,
            leader_index,
            options,
        } => {
            let mut body = options.members();
            body.insert("remote_cluster".into(), json!(remote));
            body.insert("leader_index".into(), json!(leader_index));
            (
                Method::PUT,
                index(follower, "follow"),
                Some(Value::Object(body)),
            )
        }
        CcrCommand::Pause { follower } => (Method::POST, index(follower, "pause_follow"), None),
        CcrCommand::Resume { follower, options } => {
            let body = options.members();
            let body = (!body.is_empty()).then_some(Value::Object(body));
            (Method::POST, index(follower, "resume_follow"), body)
        }
        CcrCommand::Unfollow { follower } => (Method::POST, index(follower, "unfollow"), None),
        CcrCommand::Promote { follower } => (Method::POST, index(follower, "promote"), None),
        CcrCommand::Stats { index: None } => (Method::GET, "/_ccr/stats".into(), None),
        CcrCommand::Stats { index: Some(i) } => (Method::GET, index(i, "stats"), None),
        CcrCommand::Info { index: i } => (Method::GET, index(i, "info"), None),
        CcrCommand::ForgetFollower {
            leader,
            follower_cluster,
            follower_index,
        } => (
            Method::POST,
            index(leader, "forget_follower"),
            Some(json!({"follower_cluster": follower_cluster, "follower_index": follower_index})),
        ),
        CcrCommand::Publish {
            index: i,
            repository: Some(r),
        } => (
            Method::PUT,
            index(i, "publish"),
            Some(json!({"repository": r})),
        ),
        CcrCommand::Publish {
            index: i,
            repository: None,
        } => (Method::GET, index(i, "publish"), None),
        CcrCommand::Unpublish { index: i } => (Method::DELETE, index(i, "publish"), None),
        CcrCommand::AutoFollow(a) => auto_follow_request(a),
        CcrCommand::Remote(r) => remote_request(r)?,
    })
}

fn auto_follow_request(c: &AutoFollowCommand) -> (Method, String, Option<Value>) {
    let path = |name: &str| format!("/_ccr/auto_follow/{}", segment(name));
    match c {
        AutoFollowCommand::Put {
            name,
            remote,
            leader_patterns,
            exclusions,
            follow_pattern,
            options,
        } => {
            let mut body = options.members();
            body.insert("remote_cluster".into(), json!(remote));
            body.insert("leader_index_patterns".into(), json!(leader_patterns));
            body.insert("leader_index_exclusion_patterns".into(), json!(exclusions));
            if let Some(p) = follow_pattern {
                body.insert("follow_index_pattern".into(), json!(p));
            }
            (Method::PUT, path(name), Some(Value::Object(body)))
        }
        AutoFollowCommand::Get { name: None } => (Method::GET, "/_ccr/auto_follow".into(), None),
        AutoFollowCommand::Get { name: Some(n) } => (Method::GET, path(n), None),
        AutoFollowCommand::Delete { name } => (Method::DELETE, path(name), None),
        AutoFollowCommand::Pause { name } => (Method::POST, format!("{}/pause", path(name)), None),
        AutoFollowCommand::Resume { name } => {
            (Method::POST, format!("{}/resume", path(name)), None)
        }
    }
}

fn remote_request(c: &RemoteCommand) -> Result<(Method, String, Option<Value>)> {
    let settings = |alias: &str, remote: Value| {
        let mut remotes = Map::new();
        remotes.insert(alias.to_string(), remote);
        json!({"persistent": {"cluster": {"remote": remotes}}})
    };
    Ok(match c {
        RemoteCommand::Put {
            alias,
            proxy_address,
            repository: Some(repository),
            ..
        } if proxy_address.is_none() => (
            Method::PUT,
            "/_cluster/settings".into(),
            Some(settings(
                alias,
                json!({"mode": "repository", "repository": repository,
                       "proxy_address": null, "credentials": null}),
            )),
        ),
        RemoteCommand::Put {
            alias,
            proxy_address,
            credentials_file,
            ..
        } => {
            let mut remote = json!({"mode": "proxy", "proxy_address": proxy_address,
                                    "repository": null});
            if let Some(file) = credentials_file {
                remote["credentials"] = json!(first_line(file)?);
            }
            (
                Method::PUT,
                "/_cluster/settings".into(),
                Some(settings(alias, remote)),
            )
        }
        RemoteCommand::Delete { alias } => (
            Method::PUT,
            "/_cluster/settings".into(),
            Some(settings(
                alias,
                json!({"mode": null, "proxy_address": null, "repository": null,
                       "credentials": null}),
            )),
        ),
        RemoteCommand::Info => (Method::GET, "/_remote/info".into(), None),
    })
}

/// The token in `file`: its first line, trimmed.
fn first_line(file: &std::path::Path) -> Result<String> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        Error::Usage(format!(
            "cannot read --credentials-file {}: {e}",
            file.display()
        ))
    })?;
    match text.lines().next().map(str::trim) {
        Some(t) if !t.is_empty() => Ok(t.to_string()),
        _ => Err(Error::Usage(format!(
            "--credentials-file {}: the first line is empty",
            file.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follow_sends_only_the_options_given() {
        let c = CcrCommand::Follow {
            follower: "copy".into(),
            remote: "site-a".into(),
            leader_index: "logs".into(),
            options: FollowOptions {
                read_poll_timeout: Some("1s".into()),
                ..Default::default()
            },
        };
        let (m, path, body) = request(&c).unwrap();
        assert_eq!((m, path.as_str()), (Method::PUT, "/copy/_ccr/follow"));
        assert_eq!(
            body.unwrap(),
            json!({"remote_cluster": "site-a", "leader_index": "logs", "read_poll_timeout": "1s"})
        );
        let resume = CcrCommand::Resume {
            follower: "a/b".into(),
            options: FollowOptions::default(),
        };
        let (_, path, body) = request(&resume).unwrap();
        assert_eq!((path.as_str(), body), ("/a%2Fb/_ccr/resume_follow", None));
    }

    #[test]
    fn a_removed_remote_nulls_its_settings() {
        let (m, path, body) = remote_request(&RemoteCommand::Delete { alias: "a".into() }).unwrap();
        assert_eq!((m, path.as_str()), (Method::PUT, "/_cluster/settings"));
        assert_eq!(
            body.unwrap()["persistent"]["cluster"]["remote"]["a"]["proxy_address"],
            Value::Null
        );
    }

    #[test]
    fn publish_and_a_repository_remote_send_their_requests() {
        let publish = CcrCommand::Publish {
            index: "logs".into(),
            repository: Some("shared".into()),
        };
        let (m, path, body) = request(&publish).unwrap();
        assert_eq!((m, path.as_str()), (Method::PUT, "/logs/_ccr/publish"));
        assert_eq!(body.unwrap(), json!({"repository": "shared"}));
        let status = CcrCommand::Publish {
            index: "logs".into(),
            repository: None,
        };
        assert_eq!(request(&status).unwrap().0, Method::GET);
        let stop = CcrCommand::Unpublish {
            index: "logs".into(),
        };
        assert_eq!(request(&stop).unwrap().0, Method::DELETE);
        let (_, _, body) = remote_request(&RemoteCommand::Put {
            alias: "far".into(),
            proxy_address: None,
            repository: Some("shared".into()),
            credentials_file: None,
        })
        .unwrap();
        assert_eq!(
            body.unwrap()["persistent"]["cluster"]["remote"]["far"],
            json!({"mode": "repository", "repository": "shared", "proxy_address": null,
                   "credentials": null})
        );
    }
}
