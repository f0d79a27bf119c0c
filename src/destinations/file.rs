//! Files: changes appended to JSON Lines or CSV files in
//! `settings.directory`, a new file when the current one reaches
//! `settings.rotate_bytes` (default 10 MiB) or `settings.rotate_seconds`
//! (default an hour); and full snapshots on demand.
//!
//! Incremental files are `changes-<start ms>.<ext>`; snapshots are written
//! to a temporary name and renamed, so a reader never sees half of one.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use shophub_connectors::destinations::{
    Change, Contact, Destination, DestinationError, PushResult, Rate,
};

use super::webhook;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    Csv,
}

impl Format {
    fn ext(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
        }
    }
}

const CSV_HEADER: &[&str] = &[
    "id",
    "type",
    "timestamp",
    "op",
    "profile_id",
    "email",
    "phone",
    "first_name",
    "last_name",
    "properties",
    "tags",
    "email_marketing",
    "sms",
    "absorbed_profile_id",
];

pub struct FileDestination {
    directory: PathBuf,
    format: Format,
    rotate_bytes: u64,
    rotate_ms: i64,
}

impl FileDestination {
    pub fn new(settings: &Map<String, Value>) -> Result<FileDestination, DestinationError> {
        let directory = settings
            .get("directory")
            .and_then(Value::as_str)
            .ok_or_else(|| DestinationError::Permanent("settings.directory is required".into()))?;
        let format = match settings.get("format").and_then(Value::as_str) {
            Some("csv") => Format::Csv,
            _ => Format::Jsonl,
        };
        let number =
            |key: &str, default: u64| settings.get(key).and_then(Value::as_u64).unwrap_or(default);
        Ok(FileDestination {
            directory: PathBuf::from(directory),
            format,
            rotate_bytes: number("rotate_bytes", 10 * 1024 * 1024),
            rotate_ms: i64::try_from(number("rotate_seconds", 3600).saturating_mul(1000))
                .unwrap_or(i64::MAX),
        })
    }

    /// The file to append to now: the newest incremental file unless it is
    /// full or old, else a new one.
    fn current_file(&self, now_ms: i64) -> std::io::Result<(PathBuf, bool)> {
        std::fs::create_dir_all(&self.directory)?;
        let ext = self.format.ext();
        let mut newest: Option<(i64, PathBuf)> = None;
        for entry in std::fs::read_dir(&self.directory)? {
            let path = entry?.path();
            let started = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix("changes-"))
                .and_then(|n| n.strip_suffix(&format!(".{ext}")))
                .and_then(|n| n.parse::<i64>().ok());
            if let Some(started) = started {
                if !matches!(&newest, Some((s, _)) if *s >= started) {
                    newest = Some((started, path));
                }
            }
        }
        if let Some((started, path)) = newest {
            let size = std::fs::metadata(&path)?.len();
            if size < self.rotate_bytes && now_ms - started < self.rotate_ms {
                return Ok((path, false));
            }
        }
        Ok((
            self.directory.join(format!("changes-{now_ms:013}.{ext}")),
            true,
        ))
    }

    fn append(&self, changes: &[Change]) -> std::io::Result<()> {
        let now = chrono::Utc::now().timestamp_millis();
        let (path, new) = self.current_file(now)?;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        let mut out = Vec::new();
        write_rows(self.format, new, changes.iter().map(message_of), &mut out)?;
        file.write_all(&out)?;
        file.sync_data()
    }
}

fn message_of(change: &Change) -> Value {
    let (id, _, mut body) = webhook::message(change);
    body["id"] = Value::String(id);
    body
}

/// Writes messages (`{"id","type","timestamp","data"}`) as lines or CSV rows.
pub fn write_rows(
    format: Format,
    header: bool,
    messages: impl Iterator<Item = Value>,
    out: &mut Vec<u8>,
) -> std::io::Result<()> {
    match format {
        Format::Jsonl => {
            for message in messages {
                serde_json::to_writer(&mut *out, &message)?;
                out.push(b'\n');
            }
        }
        Format::Csv => {
            let mut writer = csv::Writer::from_writer(&mut *out);
            if header {
                writer.write_record(CSV_HEADER)?;
            }
            for message in messages {
                writer.write_record(csv_row(&message))?;
            }
            writer.flush()?;
        }
    }
    Ok(())
}

fn csv_row(message: &Value) -> Vec<String> {
    let data = &message["data"];
    let contact: Option<Contact> = data
        .get("contact")
        .or_else(|| data.get("into"))
        .and_then(|c| serde_json::from_value(c.clone()).ok());
    let text = |v: &Value| v.as_str().map(str::to_string).unwrap_or_default();
    let flag = |v: Option<bool>| v.map(|b| b.to_string()).unwrap_or_default();
    let c = contact.unwrap_or_default();
    let profile_id = match c.profile_id.is_empty() {
        true => text(&data["profile_id"]),
        false => c.profile_id.clone(),
    };
    vec![
        text(&message["id"]),
        text(&message["type"]),
        text(&message["timestamp"]),
        text(&data["op"]),
        profile_id,
        c.email
            .clone()
            .or_else(|| data["email"].as_str().map(str::to_string))
            .unwrap_or_default(),
        c.phone.unwrap_or_default(),
        c.first_name.unwrap_or_default(),
        c.last_name.unwrap_or_default(),
        Value::Object(c.properties).to_string(),
        c.tags.join(";"),
        flag(c.consent.email_marketing),
        flag(c.consent.sms),
        text(&data["absorbed_profile_id"]),
    ]
}

/// Writes a full snapshot file atomically; its path.
pub fn write_snapshot(
    settings: &Map<String, Value>,
    contacts: &[Contact],
    now_ms: i64,
) -> std::io::Result<PathBuf> {
    let destination =
        FileDestination::new(settings).map_err(|e| std::io::Error::other(e.to_string()))?;
    std::fs::create_dir_all(&destination.directory)?;
    let ext = destination.format.ext();
    let timestamp = now_ms / 1000;
    let messages = contacts.iter().map(|contact| {
        let change = Change::Event {
            id: format!("snapshot_{now_ms}_{}", contact.profile_id),
            kind: "profile.snapshot".into(),
            timestamp,
            payload: serde_json::to_value(Change::Upsert {
                contact: contact.clone(),
            })
            .expect("serialises"),
        };
        message_of(&change)
    });
    let mut out = Vec::new();
    write_rows(destination.format, true, messages, &mut out)?;
    let path = destination
        .directory
        .join(format!("snapshot-{now_ms:013}.{ext}"));
    let partial = destination
        .directory
        .join(format!(".snapshot-{now_ms:013}.{ext}.partial"));
    write_new(&partial, &out)?;
    std::fs::rename(&partial, &path)?;
    Ok(path)
}

fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[async_trait::async_trait]
impl Destination for FileDestination {
    fn kind(&self) -> &'static str {
        "file"
    }

    fn max_batch(&self) -> usize {
        500
    }

    fn max_rate(&self) -> Rate {
        Rate {
            requests: 1000,
            per: std::time::Duration::from_secs(1),
        }
    }

    async fn push(&self, changes: &[Change]) -> PushResult {
        // A full disk or a missing permission may be fixed: retried.
        self.append(changes)
            .map_err(|e| DestinationError::Transient(format!("writing the file failed: {e}")))?;
        Ok(changes.iter().map(|_| Ok(())).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn upsert(email: &str) -> Change {
        Change::Event {
            id: "msg_1".into(),
            kind: "profile.updated".into(),
            timestamp: 0,
            payload: serde_json::to_value(Change::Upsert {
                contact: Contact {
                    profile_id: "prf_1".into(),
                    email: Some(email.into()),
                    ..Contact::default()
                },
            })
            .unwrap(),
        }
    }

    #[test]
    fn rotates_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let settings = json!({"directory": dir.path(), "rotate_bytes": 10, "format": "csv"});
        let destination = FileDestination::new(settings.as_object().unwrap()).unwrap();
        destination.append(&[upsert("a@example.com")]).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
        destination.append(&[upsert("b@example.com")]).unwrap();
        let mut files: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert_eq!(files.len(), 2);
        let first = std::fs::read_to_string(&files[0]).unwrap();
        assert!(
            first.starts_with("id,type,timestamp,op,profile_id,email"),
            "{first}"
        );
        assert!(first.contains("upsert,prf_1,a@example.com"), "{first}");
    }
}
