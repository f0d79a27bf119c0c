//! A real IMAP server for the tests: Debian's dovecot, started in a
//! temporary directory by `scripts/imap-test-server.sh`, IMAPS only, on a
//! free port of 127.0.0.1, stopped and removed on drop.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub(super) const DOVECOT: &str = "/usr/sbin/dovecot";
const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../scripts/imap-test-server.sh"
);
/// The script and openssl together take well under a second.
const SCRIPT_TIME: Duration = Duration::from_secs(30);

pub(super) struct TestServer {
    pub dir: PathBuf,
    pub port: u16,
    pub ca_pem: String,
    pub maildir: PathBuf,
    pub user: String,
    pub password: String,
}

/// Runs the script with a time limit; its standard output. Output goes to
/// files, not pipes: a daemon that kept a pipe open would block the reader.
fn run_script(args: &[&str]) -> Result<String, String> {
    let base = unique_dir();
    let out_path = base.with_extension("out");
    let err_path = base.with_extension("err");
    let files = std::fs::File::create(&out_path).and_then(|out| {
        let err = std::fs::File::create(&err_path)?;
        Ok((out, err))
    });
    let (out_file, err_file) = files.map_err(|e| format!("cannot create output files: {e}"))?;
    let result = (|| {
        let mut child = Command::new("bash")
            .arg(SCRIPT)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out_file)
            .stderr(err_file)
            .spawn()
            .map_err(|e| format!("cannot run {SCRIPT}: {e}"))?;
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                break status;
            }
            if started.elapsed() > SCRIPT_TIME {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{SCRIPT} {args:?} took longer than {SCRIPT_TIME:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let out = std::fs::read_to_string(&out_path).unwrap_or_default();
        if status.success() {
            Ok(out)
        } else {
            let err = std::fs::read_to_string(&err_path).unwrap_or_default();
            Err(format!("{SCRIPT} {args:?} failed ({status}): {err}"))
        }
    })();
    let _ = std::fs::remove_file(&out_path);
    let _ = std::fs::remove_file(&err_path);
    result
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}

fn unique_dir() -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    std::env::temp_dir().join(format!(
        "shophub-imap-test-{}-{n}-{nanos}",
        std::process::id()
    ))
}

impl TestServer {
    /// A running server, or `None` (with a message saying why the test is
    /// skipped) when dovecot is not installed.
    pub fn start() -> Option<TestServer> {
        if !Path::new(DOVECOT).exists() {
            eprintln!(
                "SKIPPED: {DOVECOT} is not installed (apt-get install dovecot-imapd); \
                 this IMAP test needs a real server and did not run"
            );
            return None;
        }
        let mut last_error = String::new();
        // A free port can be taken by someone else before dovecot binds it.
        for _ in 0..3 {
            let dir = unique_dir();
            let port = free_port();
            let dir_arg = dir.to_string_lossy().into_owned();
            // The script stops dovecot by itself should this process die
            // before `Drop` runs (a test run killed on a time-out).
            let owner = std::process::id().to_string();
            match run_script(&["start", &dir_arg, &port.to_string(), &owner]) {
                Ok(out) => return Some(Self::from_output(dir, &out)),
                Err(e) => {
                    let _ = run_script(&["stop", &dir_arg]);
                    let _ = std::fs::remove_dir_all(&dir);
                    last_error = e;
                }
            }
        }
        panic!("the IMAP test server did not start: {last_error}");
    }

    fn from_output(dir: PathBuf, out: &str) -> TestServer {
        let value = |key: &str| {
            out.lines()
                .find_map(|line| line.strip_prefix(&format!("{key}=")))
                .unwrap_or_else(|| panic!("the script printed no {key}: {out}"))
                .to_owned()
        };
        let ca = value("ca");
        TestServer {
            ca_pem: std::fs::read_to_string(&ca).expect("the CA certificate"),
            port: value("port").parse().expect("a port"),
            maildir: PathBuf::from(value("maildir")),
            user: value("user"),
            password: value("password"),
            dir,
        }
    }

    /// The maildir folder of a mailbox (`INBOX` or a Maildir++ `.Name`).
    fn folder(&self, mailbox: &str) -> PathBuf {
        if mailbox.eq_ignore_ascii_case("INBOX") {
            self.maildir.clone()
        } else {
            self.maildir.join(format!(".{mailbox}"))
        }
    }

    /// Delivers a mail the way an MTA does: written to `tmp/`, then moved
    /// to `new/`. Files are delivered in name order.
    pub fn deliver(&self, mailbox: &str, name: &str, mail: &[u8]) {
        let folder = self.folder(mailbox);
        let tmp = folder.join("tmp").join(name);
        std::fs::write(&tmp, mail).expect("write the mail to tmp/");
        std::fs::rename(&tmp, folder.join("new").join(name)).expect("move the mail to new/");
    }

    /// The server's log (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("dovecot.log")).unwrap_or_default()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let dir = self.dir.to_string_lossy().into_owned();
        if let Err(e) = run_script(&["stop", &dir]) {
            eprintln!("stopping the IMAP test server: {e}");
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
