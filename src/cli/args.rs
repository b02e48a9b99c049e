//! The command-line surface (DESIGN.md section 4).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "snapkeep",
    version,
    about = "Elasticsearch-style snapshots for any data directory: incremental, deduplicated, verifiable.",
    long_about = "snapkeep snapshots a data directory into a repository and restores all or part of it.\n\n\
        The immediate subdirectories of the data directory are its indices; everything else at the top \
        level (files, and folders starting with '_' or '.') is its global state.\n\n\
        REPO is a folder path, a file:// URL, an object-storage URL (s3:// or s3a://bucket/prefix, \
        also for Cloudflare R2 and other S3-compatible stores with --storage-option endpoint=URL; \
        az://, azure://, abfs:// or abfss://container/prefix; gs://bucket/prefix), a snapkeep edge \
        repository (https://HOST/api/repos/NAME; http:// on localhost only), or @PROFILE, a \
        profile of the config file. It may be left out when --repo-file, --profile (or \
        SNAPKEEP_PROFILE) or SNAPKEEP_REPOSITORY names it. Profiles live in \
        $SNAPKEEP_CONFIG, else $XDG_CONFIG_HOME/snapkeep/config.toml, else \
        ~/.config/snapkeep/config.toml. A failure prints one line on stderr (with --json, also \
        Elasticsearch's error object on stdout).\n\n\
        Exit status: 0 success, 1 failure, 2 usage, 3 snapshot PARTIAL (committed, with \
        failures), 4 not found (repository, bucket, snapshot, index, policy), 5 authentication \
        or permission, 6 storage or node unreachable."
)]
pub struct Cli {
    /// Print nothing but errors (and --json output).
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Object-storage setting, e.g. endpoint=http://127.0.0.1:9000, region=eu-west-1,
    /// allow_http=true (repeatable; any key of object_store's S3/Azure/GCS builders).
    /// Credentials come from the usual AWS_*, AZURE_* and GOOGLE_* variables.
    /// Time limits, for every remote repository (edge included), also as
    /// SNAPKEEP_<KEY> variables: connect_timeout=10s, first_byte_timeout=30s
    /// (to the response headers; uploads get size/min_rate more),
    /// idle_timeout=30s (longest pause in a body), min_rate=16KiB (bytes/s a
    /// body must average over each idle_timeout window; 0 = off),
    /// retry_timeout=2m (no retry starts after it).
    #[arg(long = "storage-option", value_name = "KEY=VALUE", global = true, value_parser = parse_pair::<String>)]
    pub storage_options: Vec<(String, String)>,
    /// Bearer token for an edge repository (https://HOST/api/repos/NAME);
    /// defaults to $SNAPKEEP_TOKEN.
    #[arg(long, value_name = "TOKEN", global = true)]
    pub token: Option<String>,
    /// Read the repository location from the first line of FILE when REPO is left out.
    #[arg(long, value_name = "FILE", global = true)]
    pub repo_file: Option<PathBuf>,
    /// Use a profile of the config file: its repository when REPO is left
    /// out, and its storage options and credentials.
    #[arg(long, value_name = "NAME", env = "SNAPKEEP_PROFILE", global = true)]
    pub profile: Option<String>,
    /// Run `sh -c COMMAND` for an encrypted repository's password (its
    /// output less one trailing newline). Without it: $SNAPKEEP_PASSWORD_FILE,
    /// then $SNAPKEEP_PASSWORD, then a prompt on a terminal. Asked only
    /// when a repository is encrypted.
    #[arg(long, value_name = "COMMAND", global = true)]
    pub password_command: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create, inspect and verify repositories.
    #[command(subcommand)]
    Repo(RepoCommand),
    /// Create, list, inspect, compare and delete snapshots.
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
    /// Restore indices (and optionally global state) from a snapshot.
    Restore(RestoreArgs),
    /// Mount a snapshot as a read-only folder, read lazily through a bounded cache.
    #[command(long_about = crate::cli::mount::LONG_ABOUT)]
    Mount(crate::cli::mount::MountArgs),
    /// Turn a writable mount's folder (snapshot plus changes) into a plain local folder.
    #[command(long_about = crate::cli::materialize::LONG_ABOUT)]
    Materialize(crate::cli::materialize::MaterializeArgs),
    /// Run the whole cycle on built-in sample data: snapshot, change, snapshot, restore, verify.
    Demo(DemoArgs),
    /// Run a long-lived node serving Elasticsearch's snapshot REST API.
    Node(NodeArgs),
    /// Snapshot lifecycle retention: what a policy keeps and deletes.
    #[command(subcommand)]
    Retention(RetentionCommand),
    /// Snapshot lifecycle policies on a running node (Elasticsearch's _slm API).
    #[command(long_about = SLM_LONG_ABOUT)]
    Slm(SlmArgs),
    /// Cross-cluster replication on a running node: follow, pause, resume,
    /// promote, stats (Elasticsearch's _ccr API).
    #[command(long_about = crate::cli::ccr::LONG_ABOUT)]
    Ccr(crate::cli::ccr::CcrArgs),
    /// Print a shell completion script to stdout, e.g.
    /// `snapkeep completions bash > /etc/bash_completion.d/snapkeep`.
    Completions(CompletionsArgs),
    /// Print the manual page (roff) to stdout, or write one page per
    /// command into --dir.
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write snapkeep.1 and a page per subcommand (snapkeep-snapshot-create.1, ...) into DIR.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// `snapkeep slm --help` (on the variant: clap shows a variant's own doc
/// line otherwise).
const SLM_LONG_ABOUT: &str = "Manage a running node's snapshot lifecycle policies through \
    Elasticsearch's _slm API: store, list and delete policies, run one now, run retention, \
    see statistics and history, and stop or start scheduling.\n\n\
    Errors are the node's, on one line (with --json, its error object on stdout too); the \
    exit status is non-zero.";

/// `snapkeep slm`: the `_slm` API of a node, over HTTP.
#[derive(Debug, Args)]
pub struct SlmArgs {
    /// The node's URL.
    #[arg(
        long,
        value_name = "URL",
        env = "SNAPKEEP_NODE",
        default_value = "http://127.0.0.1:9200",
        global = true
    )]
    pub node: String,
    /// Bearer token for the node (a `manage` role for changes).
    #[arg(long, env = "SNAPKEEP_NODE_TOKEN", hide_env_values = true)]
    pub node_token: Option<String>,
    /// HTTP Basic user for the node, as NAME:PASSWORD.
    #[arg(long, value_name = "NAME:PASSWORD")]
    pub user: Option<String>,
    /// PEM certificate to trust for an https:// node (e.g. a self-signed one).
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<std::path::PathBuf>,
    /// Print the node's JSON answer as it is.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: SlmCommand,
}

#[derive(Debug, Subcommand)]
pub enum SlmCommand {
    /// Store a policy (PUT /_slm/policy/<id>); FILE holds its JSON body, - for stdin.
    Put {
        /// The policy id.
        id: String,
        /// The policy's JSON body (Elasticsearch's PUT /_slm/policy/<id>); - for stdin.
        #[arg(long, value_name = "FILE")]
        policy: std::path::PathBuf,
    },
    /// Show policies with their next run, last success and failure, and stats (all by default).
    Get {
        /// Policy ids (default: all).
        ids: Vec<String>,
    },
    /// Delete a policy (its snapshots stay).
    Delete {
        /// The policy id.
        id: String,
    },
    /// Take the policy's snapshot now; prints the snapshot's name.
    Execute {
        /// The policy id.
        id: String,
    },
    /// Run retention for every policy now.
    ExecuteRetention,
    /// Snapshot and retention counts, per policy and overall.
    Stats,
    /// Resume scheduling.
    Start,
    /// Stop scheduling (running snapshots finish; nothing new starts).
    Stop,
    /// Whether scheduling runs (RUNNING, STOPPING, STOPPED).
    Status,
    /// A policy's runs and retention deletions, newest first.
    History {
        /// The policy id.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum RetentionCommand {
    /// Show, without changing anything, which of a policy's snapshots its
    /// retention would keep and delete, each with its reason.
    #[command(
        long_about = "Show, without changing anything, which of a policy's snapshots its \
        retention would keep and delete, each with its reason.\n\n\
        The policy file holds the body of Elasticsearch's PUT /_slm/policy/<id> (name, schedule, \
        repository, config, retention with expire_after, min_count, max_count, and snapkeep's \
        keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly, timezone). Only \
        snapshots whose metadata names the policy are considered; the newest SUCCESS one is \
        always kept, and a snapshot dated more than 5 minutes after the clock is kept and \
        reported, never counted."
    )]
    Plan(RetentionPlanArgs),
}

#[derive(Debug, Args)]
pub struct RetentionPlanArgs {
    /// Repository location (see REPO in `snapkeep --help`).
    pub repo: String,
    /// The policy file (JSON, the body of PUT /_slm/policy/<id>).
    #[arg(long)]
    pub policy: std::path::PathBuf,
    /// The policy id (default: the file name without its extension).
    #[arg(long)]
    pub id: Option<String>,
    /// Plan as of this instant (RFC 3339, e.g. 2026-12-03T17:00:00Z) instead of now.
    #[arg(long)]
    pub now: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `snapkeep node`: every setting of the config file is also a flag, and a
/// flag wins over the file.
#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    long_about = "Run a long-lived node serving Elasticsearch's snapshot REST API \
        (repositories, snapshots, _cat, clone, analyze, and the read API under /api; see docs/NODE.md).\n\n\
        Settings come from --config (TOML) and from the flags below, which override the file. \
        Credentials are configured in the file only ([[auth.tokens]] token/role, [[auth.users]] \
        name/password_hash/role, roles monitor, snapshot, manage), plus SNAPKEEP_NODE_TOKEN, a \
        bearer token with the manage role. With no credential configured every request is \
        allowed, which the node permits only on a loopback --listen address.\n\n\
        The node stops on SIGTERM or SIGINT: it stops accepting, lets running requests finish \
        (up to shutdown_grace_secs) and exits 0."
)]
pub struct NodeArgs {
    #[command(subcommand)]
    pub action: Option<NodeAction>,
    /// TOML config file (keys: data, listen, state, name, path.repo, max_body_bytes,
    /// shutdown_grace_secs, cleanup_grace_secs, www, [tls] cert/key, [[auth.tokens]],
    /// [[auth.users]], slm.minimum_interval, slm.retention_schedule); unknown keys are refused.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The data directory the node manages: its subfolders are its indices.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Address to serve on [default: 127.0.0.1:9200]. A non-loopback address
    /// needs at least one credential.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// The node's own state folder (registered repositories), outside the
    /// indices; one live node per folder.
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// Folder under which `fs` repositories may live (Elasticsearch's
    /// path.repo; repeatable; replaces the file's list).
    #[arg(long = "path-repo", value_name = "DIR")]
    pub path_repo: Vec<PathBuf>,
    /// PEM certificate chain: serve HTTPS (needs --tls-key).
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// The inspector's folder (www/ after scripts/build-inspector.sh):
    /// browsers opening / get the page; without it / is only the root JSON.
    #[arg(long, value_name = "DIR")]
    pub www: Option<PathBuf>,
    /// Snapshot lifecycle policies may not fire more often than this
    /// (Elasticsearch's slm.minimum_interval) [default: 15m].
    #[arg(long, value_name = "TIME")]
    pub slm_minimum_interval: Option<String>,
    /// When lifecycle retention runs, as a cron with seconds (Elasticsearch's
    /// slm.retention_schedule) [default: "0 30 1 * * ?", 01:30 UTC].
    #[arg(long, value_name = "CRON")]
    pub slm_retention_schedule: Option<String>,
    /// Tests only: shift the lifecycle scheduler's clock by this many milliseconds.
    #[arg(long, value_name = "MS", hide = true, allow_hyphen_values = true)]
    pub test_clock_offset: Option<i64>,
}

#[derive(Debug, Subcommand)]
pub enum NodeAction {
    /// Read a password from stdin and print its argon2 hash, for
    /// `password_hash` in [[auth.users]].
    HashPassword,
}

#[derive(Debug, Subcommand)]
pub enum RepoCommand {
    /// Create a repository (the folder is created if missing; an existing repository is never touched).
    Init(InitArgs),
    /// Show logical vs stored bytes, the dedup ratio, packs and blobs.
    Stats(RepoArgs),
    /// List, add, remove or change the passwords of an encrypted repository, or
    /// export its master key (the edge Worker's read key).
    #[command(subcommand)]
    Key(KeyCommand),
    /// Verify the repository's structure; with --read-data also re-hash every blob.
    Check(CheckArgs),
    /// Write, read, list and delete a probe object.
    Verify(RepoArgs),
    /// Delete objects no snapshot needs (left by interrupted or failed work).
    Cleanup(CleanupArgs),
    /// Show or change the settings stored in the repository (read-only mode,
    /// transfer rate limits); every client honours them.
    Settings(SettingsArgs),
    /// Test the storage semantics snapkeep relies on (read-after-write, create-only
    /// conflicts, listing, ranges, large uploads) and time them.
    Analyze(RepoArgs),
}

#[derive(Debug, Args)]
pub struct SettingsArgs {
    /// Repository location (see REPO in `snapkeep --help`).
    pub repo: String,
    /// Refuse every write (snapshots, deletes, cleanup) until set to false.
    #[arg(long)]
    pub readonly: Option<bool>,
    /// Default upload limit for snapshots, e.g. 50MiB; `none` removes it.
    #[arg(long, value_parser = parse_limit)]
    pub max_snapshot_bytes_per_sec: Option<u64>,
    /// Default download limit for restores, e.g. 100MiB; `none` removes it.
    #[arg(long, value_parser = parse_limit)]
    pub max_restore_bytes_per_sec: Option<u64>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CleanupArgs {
    /// Repository location (see REPO in `snapkeep --help`).
    pub repo: String,
    /// Only report what would be deleted.
    #[arg(long)]
    pub dry_run: bool,
    /// Keep unreferenced objects younger than this: they may belong to a
    /// snapshot that has not committed yet (e.g. 30m, 2h).
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub grace: std::time::Duration,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RepoArgs {
    /// Repository location (see REPO in `snapkeep --help`).
    pub repo: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Repository location (see REPO in `snapkeep --help`).
    pub repo: String,
    /// Smallest chunk (e.g. 256KiB). Chunk sizes are fixed for the repository's life.
    #[arg(long, value_parser = parse_size, default_value = "256KiB")]
    pub chunk_min: u32,
    /// Average chunk size (e.g. 512KiB): smaller finds more shared data
    /// between versions and after in-place edits, larger keeps the index
    /// smaller (about 100 bytes per chunk).
    #[arg(long, value_parser = parse_size, default_value = "512KiB")]
    pub chunk_avg: u32,
    /// Largest chunk (e.g. 8MiB, at most 16MiB).
    #[arg(long, value_parser = parse_size, default_value = "8MiB")]
    pub chunk_max: u32,
    /// FastCDC normalization level, 0 to 3: higher keeps chunk sizes closer
    /// to the average, which finds more shared chunks between versions of a
    /// file.
    #[arg(long, default_value_t = crate::core::chunker::DEFAULT_NORMALIZATION)]
    pub chunk_normalization: u8,
    /// How files are cut: `auto` cuts database files it recognises
    /// (PostgreSQL, InnoDB, SQLite) at page-group boundaries, so a page
    /// rewritten in place changes one chunk, and everything else into
    /// content-defined chunks; `cdc` cuts every file by content;
    /// `pages:8KiB` cuts every file at page groups (4KiB, 8KiB, 16KiB or
    /// 32KiB pages).
    #[arg(long, default_value = "auto", value_parser = parse_chunking, value_name = "MODE")]
    pub chunking: crate::core::chunking::Chunking,
    /// Bytes per chunk of a file cut as pages (whole pages): smaller stores
    /// less after scattered page updates, for more index per byte.
    #[arg(long, default_value = "64KiB", value_parser = parse_size, value_name = "SIZE")]
    pub page_group: u32,
    /// Cut files whose path inside their index matches PATTERN with MODE
    /// instead of --chunking (repeatable; the first matching rule wins):
    /// `*.sqlite=pages:4KiB`, `base/**=pages:8KiB`, `pg_wal/**=cdc`. A
    /// pattern without `/` matches a name at any depth, one with `/` is
    /// anchored at the index folder; `*` never matches `/`, `**` does.
    #[arg(long = "chunking-rule", value_parser = parse_chunking_rule, value_name = "PATTERN=MODE")]
    pub chunking_rules: Vec<crate::core::chunking::rules::ChunkingRule>,
    /// Blob compression.
    #[arg(long, value_enum, default_value = "zstd")]
    pub compression: CompressionArg,
    /// Encrypt the repository (format v2): every object but the key slots
    /// and a minimal config is sealed with XChaCha20-Poly1305, and blobs are
    /// named by keyed hashes. The password comes from --password-command,
    /// $SNAPKEEP_PASSWORD_FILE, $SNAPKEEP_PASSWORD or a prompt (asked twice).
    /// A lost password cannot be recovered: add a second one with
    /// `repo key add`.
    #[arg(long)]
    pub encryption: bool,
    /// Create the repository in a local folder that already holds other files.
    #[arg(long)]
    pub force: bool,
    /// Take the chunker parameters of this repository (so `snapshot copy`
    /// between them shares data); overrides the --chunk-* options,
    /// --chunking, --page-group and --chunking-rule.
    #[arg(long, value_name = "REPO")]
    pub copy_chunker_params_from: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// List the key slots (one per password) of an encrypted repository.
    List(RepoArgs),
    /// Add a password: a new key slot around the same master key (no data
    /// object changes). The new password comes from --new-password-file,
    /// $SNAPKEEP_NEW_PASSWORD or a prompt (asked twice).
    Add(NewKeyArgs),
    /// Remove a key slot by id (see `repo key list`); the last one is never
    /// removed.
    Remove(RemoveKeyArgs),
    /// Change the password that opens the repository: adds a slot for the
    /// new password, then removes the slot the current one opened.
    Passwd(NewKeyArgs),
    /// Print the master key in hex, for the edge Worker's secret
    /// SNAPKEEP_READ_KEY (its JSON views of the repository). Needs the
    /// password. The key opens the whole repository, and changing passwords
    /// does not change it: keep it as secret as the data.
    Export(RepoArgs),
}

#[derive(Debug, Args)]
pub struct NewKeyArgs {
    /// Repository location (see REPO in `snapkeep --help`).
    pub repo: String,
    /// Read the new password from FILE (less one trailing newline).
    #[arg(long, value_name = "FILE")]
    pub new_password_file: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RemoveKeyArgs {
    /// Repository location (see REPO in `snapkeep --help`).
    pub repo: String,
    /// The slot's id, as `repo key list` shows it.
    pub id: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum CompressionArg {
    /// zstd at level 3, per blob.
    Zstd,
    /// Store blobs as they are (data that is already compressed).
    None,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Repository location (see REPO in `snapkeep --help`).
    pub repo: String,
    /// Download every pack and re-hash every blob.
    #[arg(long, conflicts_with = "read_data_subset")]
    pub read_data: bool,
    /// Download and re-hash a random share of the packs, e.g. `10%`: a
    /// different share each run, so regular runs cover everything over time.
    #[arg(long, value_name = "PCT", value_parser = parse_percent)]
    pub read_data_subset: Option<f64>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Take a snapshot of a data directory.
    Create(CreateArgs),
    /// List snapshots, sorted and paged.
    List(ListArgs),
    /// Show one snapshot in detail.
    Get(GetArgs),
    /// Show what changed between two snapshots.
    Diff(DiffArgs),
    /// Delete snapshots (names or wildcards) and the data only they needed.
    Delete(DeleteArgs),
    /// List the files, folders and links in a snapshot (recursively under PATH).
    Ls(LsArgs),
    /// Write one file of a snapshot to stdout (a folder as a tar stream).
    Dump(DumpArgs),
    /// Copy snapshots to another repository, moving only data it lacks.
    Copy(CopyArgs),
}

#[derive(Debug, Args)]
#[command(
    long_about = "List the entries of a snapshot: type and mode, size, modification \
    time and path, recursively (PATH itself included).\n\n\
    Paths are relative to the data directory that was snapshotted: `logs/sub/a.log` is \
    `sub/a.log` in index `logs`, and global-state entries go by their own names. With \
    --index I, PATH is relative to index I (`_global_state` for the global state). \
    A PATH the snapshot lacks exits with status 4."
)]
pub struct LsArgs {
    /// Repository location.
    pub repo: String,
    /// The snapshot to list.
    pub snapshot: String,
    /// Where to start: `index/sub/path` (default: the whole snapshot).
    pub path: Option<String>,
    /// PATH is relative to this index.
    #[arg(long, value_name = "INDEX")]
    pub index: Option<String>,
    /// Print JSON ({"snapshot", "path", "entries": [...]}) instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(
    long_about = "Write a file of a snapshot to stdout, every chunk checked against \
    its SHA-256 before it is written, e.g. `snapkeep snapshot dump REPO nightly-2 \
    logs/app.log > app.log`. A folder (or an index, or the global state) is written as a \
    tar stream holding it and everything below. PATH is named as `snapshot ls` prints it, \
    or relative to --index. A PATH the snapshot lacks exits with status 4."
)]
pub struct DumpArgs {
    /// Repository location.
    pub repo: String,
    /// The snapshot to read from.
    pub snapshot: String,
    /// The file or folder: `index/sub/path`, or relative to --index.
    pub path: String,
    /// PATH is relative to this index.
    #[arg(long, value_name = "INDEX")]
    pub index: Option<String>,
}

#[derive(Debug, Args)]
#[command(
    long_about = "Copy snapshots to another repository (an off-site copy, like restic \
    copy): only the chunks and trees the destination's index lacks are read, checked \
    against their SHA-256, compressed with the destination's settings and uploaded; the \
    copy keeps the snapshot's name, uuid, times, state and metadata.\n\n\
    A snapshot the destination already holds under the same name and uuid (an earlier \
    copy) is skipped with a note, so a cron job can copy `nightly-*` every night; a \
    different snapshot of that name in the destination refuses the whole copy before \
    anything moves. Both repositories must cut files with the same chunker parameters \
    (create the destination with `repo init DST --copy-chunker-params-from SRC`), or \
    the copy would share no data with them."
)]
pub struct CopyArgs {
    /// The repository to copy from.
    pub source: String,
    /// The repository to copy to.
    pub destination: String,
    /// Snapshot names or wildcard patterns, also as comma lists (`a,b-*`).
    #[arg(required = true)]
    pub names: Vec<String>,
    /// The source repository's password is this command's output, when it
    /// differs from the destination's (also SNAPKEEP_FROM_PASSWORD or
    /// SNAPKEEP_FROM_PASSWORD_FILE). Without any, both open with the
    /// password of --password-command, SNAPKEEP_PASSWORD_FILE,
    /// SNAPKEEP_PASSWORD or the prompt.
    #[arg(long, value_name = "COMMAND")]
    pub from_password_command: Option<String>,
    /// The source repository's password is this file's content.
    #[arg(long, value_name = "FILE")]
    pub from_password_file: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Repository location (see REPO in `snapkeep --help`).
    pub repo: String,
    /// Snapshot name (lowercase; no spaces or \ / * ? " < > | , #; must not start with _ - +).
    pub name: String,
    /// The data directory: its subfolders are indices, the rest is global state.
    #[arg(long)]
    pub source: PathBuf,
    /// Indices to include: comma list with * wildcards and -exclusions (default: all); a
    /// list that matches no index is an error.
    #[arg(long, allow_hyphen_values = true)]
    pub indices: Option<String>,
    /// Add a folder outside --source as an index (repeatable).
    #[arg(long = "index", value_name = "NAME=PATH", value_parser = parse_pair::<PathBuf>)]
    pub extra: Vec<(String, PathBuf)>,
    /// Leave the global state out.
    #[arg(long)]
    pub no_global_state: bool,
    /// Leave out paths matching this gitignore-style glob, relative to --source
    /// (repeatable): `*.tmp` matches at any depth, `/MyIndex` or `logs-1/tmp/*` from
    /// the source, `cache/` folders only, `**` any number of folders.
    #[arg(long, value_name = "PATTERN")]
    pub exclude: Vec<String>,
    /// Read exclude patterns from FILE, one a line (`#` comments; repeatable).
    #[arg(long, value_name = "FILE")]
    pub exclude_file: Vec<PathBuf>,
    /// Do not descend into folders on another file system than their index folder
    /// (or the source, for global state); they are kept empty.
    #[arg(long)]
    pub one_file_system: bool,
    /// Commit files that could be read as a PARTIAL snapshot instead of failing.
    #[arg(long)]
    pub partial: bool,
    /// Upload at most this many bytes per second (e.g. 20MiB); overrides the
    /// repository's setting.
    #[arg(long, value_parser = parse_limit)]
    pub max_snapshot_bytes_per_sec: Option<u64>,
    /// User metadata to record (repeatable).
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_pair::<String>)]
    pub metadata: Vec<(String, String)>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Repository location (see REPO in `snapkeep --help`).
    pub repo: String,
    /// Sort key: name, start_time, duration, index_count or size.
    #[arg(long, default_value = "start_time")]
    pub sort: String,
    /// Sort order: asc or desc.
    #[arg(long, default_value = "asc")]
    pub order: String,
    /// Page size (default: all).
    #[arg(long)]
    pub size: Option<String>,
    /// Cursor from a previous page's `next`.
    #[arg(long)]
    pub after: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// Repository location (see REPO in `snapkeep --help`).
    pub repo: String,
    /// The snapshot's name.
    pub name: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// Repository location (see REPO in `snapkeep --help`).
    pub repo: String,
    /// The older snapshot.
    pub from: String,
    /// The newer snapshot.
    pub to: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Repository location (see REPO in `snapkeep --help`).
    pub repo: String,
    /// Snapshot names or wildcard patterns, also as comma lists (`a,b-*`).
    #[arg(required = true)]
    pub names: Vec<String>,
    /// Say what would be deleted and freed, changing nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Delete without asking when the patterns select every snapshot of the
    /// repository (otherwise asked on a terminal, refused elsewhere).
    #[arg(long)]
    pub yes: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// Repository location (see REPO in `snapkeep --help`).
    pub repo: String,
    /// The snapshot to restore from.
    pub snapshot: String,
    /// Folder to restore into (index folders are created inside it).
    #[arg(long)]
    pub target: PathBuf,
    /// Indices to restore: comma list with * wildcards and -exclusions (default: all); a
    /// list that matches no index of the snapshot is an error.
    #[arg(long, allow_hyphen_values = true)]
    pub indices: Option<String>,
    /// Regex applied to index names (use with --rename-replacement).
    #[arg(long, requires = "rename_replacement")]
    pub rename_pattern: Option<String>,
    /// Replacement for --rename-pattern; $1 refers to a group.
    #[arg(long, requires = "rename_pattern")]
    pub rename_replacement: Option<String>,
    /// Also restore the global state (top-level files) into the target.
    #[arg(long)]
    pub include_global_state: bool,
    /// Restore only paths matching this glob (repeatable), named as
    /// `snapshot ls` prints them (`logs/**/*.json`, `logs/sub`); a matching
    /// folder brings everything in it, and the folders leading to a match
    /// are created. With --overwrite only what the globs cover is removed.
    #[arg(long, value_name = "PATH_GLOB")]
    pub include: Vec<String>,
    /// Parallel range reads from the repository (default: four per core, at least 8).
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// Restore into existing index folders: files that already match are
    /// kept, chunks found in the folder are reused instead of fetched, and
    /// files the snapshot does not have are removed. A changed file with one
    /// link that still holds at least 1 MiB of its chunks at their places is
    /// updated in place: only its changed chunks are written. Other changed
    /// files are written anew and renamed over the old ones.
    #[arg(long)]
    pub overwrite: bool,
    /// With --overwrite: never update a file in place; write every changed
    /// file anew and rename it over the old one, so that a reader sees
    /// either the old file or the restored one, never a mix (slower: the
    /// unchanged parts are copied too).
    #[arg(long, requires = "overwrite")]
    pub replace_files: bool,
    /// Take chunks from this chunk cache folder (a mount's `--cache`) instead of
    /// fetching them; each is checked against its id, and a missing or corrupt one
    /// is fetched [default: the mounts' default cache of the repository, when it
    /// exists].
    #[arg(long, value_name = "DIR", conflicts_with = "no_cache")]
    pub cache: Option<PathBuf>,
    /// Fetch every chunk from the repository, even those a mount's cache holds.
    #[arg(long)]
    pub no_cache: bool,
    /// Only compute the restore plan: files, bytes to fetch, requests and
    /// conflicts; nothing is written.
    #[arg(long)]
    pub dry_run: bool,
    /// Write the full restore plan (every folder, file and pack range) as JSON.
    #[arg(long, value_name = "FILE")]
    pub plan_out: Option<PathBuf>,
    /// Download at most this many bytes per second (e.g. 50MiB); overrides
    /// the repository's setting.
    #[arg(long, value_parser = parse_limit)]
    pub max_restore_bytes_per_sec: Option<u64>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Folder for the sample data, repository and restore (default: a new temporary folder).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// Parses sizes like `4096`, `512KiB`, `1MiB`, `8M`.
fn parse_chunking_rule(s: &str) -> Result<crate::core::chunking::rules::ChunkingRule, String> {
    crate::core::chunking::rules::ChunkingRule::parse(s).map_err(|e| e.to_string())
}

fn parse_chunking(s: &str) -> Result<crate::core::chunking::Chunking, String> {
    crate::core::chunking::Chunking::parse(s).map_err(|e| e.to_string())
}

pub fn parse_size(s: &str) -> Result<u32, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("invalid size {s:?}"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        _ => return Err(format!("invalid size unit in {s:?} (use B, KiB or MiB)")),
    };
    u32::try_from(n * mult).map_err(|_| format!("size {s:?} is too large"))
}

/// A rate limit: a size per second (`512KiB`, `20MiB`, `1GiB`), or `none`
/// (returned as 0).
pub fn parse_limit(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_lowercase();
    if t == "none" || t == "0" {
        return Ok(0);
    }
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("invalid rate {s:?}"))?;
    let mult: u64 = match unit.trim().trim_end_matches("/s") {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => {
            return Err(format!(
                "invalid rate unit in {s:?} (use B, KiB, MiB or GiB)"
            ))
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("rate {s:?} is too large"))
}

fn parse_pair<T: From<String>>(s: &str) -> Result<(String, T), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), T::from(v.to_string()))),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

/// `10%` or `10` → 0.1; accepts (0, 100].
fn parse_percent(s: &str) -> Result<f64, String> {
    let n: f64 = s
        .trim()
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("{s:?} is not a percentage (e.g. 10%)"))?;
    if !(n > 0.0 && n <= 100.0) {
        return Err(format!("{s:?} is not between 0% and 100%"));
    }
    Ok(n / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `repo init` without chunk options records the core's defaults.
    #[test]
    fn init_defaults_are_the_core_defaults() {
        use clap::Parser;
        let cli = Cli::try_parse_from(["snapkeep", "repo", "init", "/r"]).unwrap();
        let Command::Repo(RepoCommand::Init(a)) = cli.command else {
            panic!("not repo init")
        };
        let d = crate::core::chunker::ChunkerParams::default();
        assert_eq!(
            (a.chunk_min, a.chunk_avg, a.chunk_max, a.chunk_normalization),
            (d.min, d.avg, d.max, d.normalization)
        );
    }

    #[test]
    fn limits() {
        assert_eq!(parse_limit("20MiB").unwrap(), 20 << 20);
        assert_eq!(parse_limit("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_limit("none").unwrap(), 0);
        assert!(parse_limit("fast").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("512KiB").unwrap(), 512 * 1024);
        assert_eq!(parse_size("8M").unwrap(), 8 << 20);
        assert!(parse_size("1GiB").is_err());
        assert!(parse_size("x").is_err());
    }

    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
