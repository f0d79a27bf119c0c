//! Layered configuration: built-in defaults, then a TOML file, then
//! `SHOPHUB_*` environment variables, then command-line flags. Every
//! subcommand loads it the same way, so `serve`, `migrate` and
//! `workspace create` always act on the same database.

use std::fmt;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// Keys read from `SHOPHUB_*` variables; others (such as `SHOPHUB_CONFIG`) are not config values.
const CONFIG_KEYS: &[&str] = &[
    "listen",
    "data_dir",
    "database_url",
    "body_limit_bytes",
    "workers",
    "master_key",
    "log_format",
    "sync_interval_seconds",
    "public_url",
    "profile_refresh_interval_seconds",
];

/// The file read when neither `--config` nor `SHOPHUB_CONFIG` names one.
pub const DEFAULT_CONFIG_FILE: &str = "shophub.toml";

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server binds (`host:port`; port 0 picks a free one).
    pub listen: String,
    /// Where the embedded database and the generated master key live.
    pub data_dir: PathBuf,
    /// `sqlite://...` or `postgres://...`; empty means SQLite in `data_dir`.
    pub database_url: Option<String>,
    /// Largest webhook body accepted, in bytes; larger ones get 413.
    pub body_limit_bytes: usize,
    /// How many background workers process the inbox.
    pub workers: usize,
    /// Base64 of 32 bytes used to encrypt connection secrets. When unset, a key
    /// file is created in `data_dir`. Several hubs on one PostgreSQL must share it.
    pub master_key: Option<String>,
    /// `text` for people, `json` for log collectors.
    pub log_format: LogFormat,
    /// The address platforms reach this hub at (`https://hub.example.com`):
    /// webhook subscriptions and OAuth redirects point there. Unset, the hub
    /// registers no webhooks and offers no OAuth installs.
    pub public_url: Option<String>,
    /// What counts as a complaint (`[complaints]` in the file).
    pub complaints: crate::complaints::ComplaintRules,
    /// Seconds between reconciliation sweeps of each pollable connection;
    /// 0 turns scheduled polling off (backfills still run on request).
    pub sync_interval_seconds: u64,
    /// Care triggers (`[triggers]` in the file).
    pub triggers: crate::triggers::TriggerConfig,
    /// The destinations sync engine's timing (`[destinations]` in the file).
    pub destinations: crate::destinations::EngineSettings,
    /// Seconds between refreshes of time-dependent profile traits (and the
    /// workspace RFM boundaries); 0 turns them off.
    pub profile_refresh_interval_seconds: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./shophub-data"),
            database_url: None,
            body_limit_bytes: 2 * 1024 * 1024,
            workers: 2,
            master_key: None,
            log_format: LogFormat::Text,
            sync_interval_seconds: 300,
            public_url: None,
            complaints: crate::complaints::ComplaintRules::default(),
            triggers: crate::triggers::TriggerConfig::default(),
            destinations: crate::destinations::EngineSettings::default(),
            profile_refresh_interval_seconds: 3600,
        }
    }
}

// Secrets and credentials stay out of logs and panics.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &self.database_url.as_deref().map(redact_url),
            )
            .field("body_limit_bytes", &self.body_limit_bytes)
            .field("workers", &self.workers)
            .field(
                "master_key",
                &self.master_key.as_ref().map(|_| "<redacted>"),
            )
            .field("log_format", &self.log_format)
            .field("sync_interval_seconds", &self.sync_interval_seconds)
            .field("public_url", &self.public_url)
            .field("complaints", &self.complaints)
            .field("triggers", &self.triggers)
            .field("destinations", &self.destinations)
            .field(
                "profile_refresh_interval_seconds",
                &self.profile_refresh_interval_seconds,
            )
            .finish()
    }
}

/// Overrides given on the command line; only the flags that were set count.
#[derive(Debug, Default, Serialize)]
pub struct FlagOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_limit_bytes: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workers: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync_interval_seconds: Option<u64>,
}

impl Config {
    /// Loads the layers in order; `file` is read if it exists (an explicitly
    /// named file must exist).
    pub fn load(file: Option<&Path>, flags: &FlagOverrides) -> anyhow::Result<Config> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) if !path.exists() => {
                anyhow::bail!("config file {} does not exist", path.display())
            }
            Some(path) => figment = figment.merge(Toml::file(path)),
            None => figment = figment.merge(Toml::file(DEFAULT_CONFIG_FILE)),
        }
        let config: Config = figment
            .merge(Env::prefixed("SHOPHUB_").only(CONFIG_KEYS))
            .merge(Serialized::globals(flags))
            .extract()?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.body_limit_bytes > 0,
            "body_limit_bytes must be above 0"
        );
        if let Some(url) = &self.public_url {
            let ok = url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
            anyhow::ensure!(ok, "public_url must be an http or https URL");
        }
        if let Some(url) = &self.database_url {
            anyhow::ensure!(
                url.starts_with("sqlite:")
                    || url.starts_with("postgres:")
                    || url.starts_with("postgresql:"),
                "database_url must start with sqlite: or postgres:"
            );
        }
        self.triggers.validate().map_err(anyhow::Error::msg)?;
        Ok(())
    }

    /// The database to use: the configured URL, or SQLite in the data directory.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) if !url.is_empty() => url.clone(),
            _ => format!("sqlite://{}", self.data_dir.join("shophub.db").display()),
        }
    }
}

/// Hides the password in a database URL.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("redacted"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_file_and_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hub.toml");
        std::fs::write(&file, "listen = \"0.0.0.0:9000\"\nworkers = 7\n").unwrap();
        let flags = FlagOverrides {
            workers: Some(3),
            ..Default::default()
        };
        let config = Config::load(Some(&file), &flags).unwrap();
        assert_eq!(config.listen, "0.0.0.0:9000");
        assert_eq!(config.workers, 3);
        assert_eq!(config.body_limit_bytes, 2 * 1024 * 1024);
    }

    #[test]
    fn complaint_rules_come_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hub.toml");
        std::fs::write(
            &file,
            "[complaints]\nreview_score_at_most = 0.6\nterms_low = [\"慢\"]\n",
        )
        .unwrap();
        let config = Config::load(Some(&file), &FlagOverrides::default()).unwrap();
        assert_eq!(config.complaints.review_score_at_most, 0.6);
        assert_eq!(config.complaints.terms_low, vec!["慢".to_string()]);
        assert!(
            !config.complaints.terms_high.is_empty(),
            "unset lists keep their defaults"
        );
    }

    #[test]
    fn debug_hides_secrets() {
        let config = Config {
            database_url: Some("postgres://hub:hunter2@db/hub".into()),
            master_key: Some("c2VjcmV0".into()),
            ..Config::default()
        };
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("c2VjcmV0"),
            "{shown}"
        );
    }

    #[test]
    fn rejects_unknown_database_scheme() {
        let flags = FlagOverrides {
            database_url: Some("mysql://x".into()),
            ..Default::default()
        };
        assert!(Config::load(None, &flags).is_err());
    }
}
