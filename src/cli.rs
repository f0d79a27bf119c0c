//! The command line: one binary, subcommands that share one configuration.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::FlagOverrides;

#[derive(Debug, Parser)]
#[command(
    name = "shophub",
    version,
    about = "Self-hosted customer hub: store webhooks in, unified customer profiles out"
)]
pub struct Cli {
    /// TOML configuration file [default: ./shophub.toml if it exists]
    #[arg(long, global = true, env = "SHOPHUB_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub flags: Flags,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Flags {
    /// Address to listen on [default: 127.0.0.1:8080]
    #[arg(long, global = true)]
    pub listen: Option<String>,
    /// Data directory [default: ./shophub-data]
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// sqlite://... or postgres://... [default: SQLite in the data directory]
    #[arg(long, global = true)]
    pub database_url: Option<String>,
    /// Largest webhook body in bytes [default: 2097152]
    #[arg(long, global = true)]
    pub body_limit_bytes: Option<usize>,
    /// Background workers [default: 2]
    #[arg(long, global = true)]
    pub workers: Option<usize>,
    /// Seconds between reconciliation sweeps; 0 turns them off [default: 300]
    #[arg(long, global = true)]
    pub sync_interval_seconds: Option<u64>,
}

impl Flags {
    pub fn overrides(&self) -> FlagOverrides {
        FlagOverrides {
            listen: self.listen.clone(),
            data_dir: self.data_dir.clone(),
            database_url: self.database_url.clone(),
            body_limit_bytes: self.body_limit_bytes,
            workers: self.workers,
            sync_interval_seconds: self.sync_interval_seconds,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the hub: HTTP API, webhook intake and workers
    Serve {
        /// Create a demo workspace with sample Shopify and WooCommerce data
        #[arg(long)]
        demo: bool,
    },
    /// Apply database migrations and exit
    Migrate,
    /// Load a connection's history from its platform's API (resumable)
    Backfill {
        /// The connection id
        connection: String,
        /// Start date (YYYY-MM-DD or RFC 3339) [default: the start of the shop's history]
        #[arg(long)]
        since: Option<String>,
        /// Only this resource: orders, customers or reviews
        #[arg(long)]
        resource: Option<String>,
    },
    /// Load canonical records (JSON Lines) or a CSV export into a connection
    Import {
        /// The connection the records belong to
        #[arg(long)]
        connection: String,
        /// The file: .jsonl / .ndjson (canonical records) or .csv
        file: PathBuf,
        /// CSV preset: shopify-customers or taobao-orders
        #[arg(long)]
        preset: Option<String>,
        /// CSV without a preset: the record kind (customer, order, review, message)
        #[arg(long)]
        kind: Option<String>,
        /// CSV without a preset: field=Header pairs, comma-separated
        #[arg(long)]
        map: Option<String>,
    },
    /// Identity resolution
    Resolve {
        #[command(subcommand)]
        command: ResolveCommand,
    },
    /// Write data out
    Export {
        #[command(subcommand)]
        command: ExportCommand,
    },
    /// Unified profiles
    Profiles {
        #[command(subcommand)]
        command: ProfilesCommand,
    },
    /// Manage workspaces
    Workspace {
        #[command(subcommand)]
        command: WorkspaceCommand,
    },
    /// Profile search index
    Search {
        #[command(subcommand)]
        command: SearchCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum WorkspaceCommand {
    /// Create a workspace and print its id and a new API key (shown once)
    Create {
        name: String,
        /// Print {"id": ..., "api_key": ...}
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ResolveCommand {
    /// Recompute the workspace's profiles from its records, links and decisions
    Rebuild {
        /// The workspace id
        #[arg(long)]
        workspace: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// One line per profile: golden fields, identities, traits, source records
    Profiles {
        /// The workspace id
        #[arg(long)]
        workspace: String,
        /// Output format (jsonl is the one there is)
        #[arg(long, default_value = "jsonl", value_parser = ["jsonl"])]
        format: String,
        /// File to write [default: standard output]
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProfilesCommand {
    /// Recompute the workspace's trait statistics and every profile (time-dependent
    /// traits, changed settings); prints how many profiles changed
    Refresh {
        /// The workspace id
        #[arg(long)]
        workspace: String,
    },
}


#[derive(Debug, Subcommand)]
pub enum SearchCommand {
    /// Index every profile of the workspace again (data from before the index)
    Reindex {
        /// The workspace id
        #[arg(long)]
        workspace: String,
    },
}
