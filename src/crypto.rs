//! Secrets at rest and API keys.
//!
//! Connection secrets are sealed with AES-256-GCM under one master key; the
//! connection id is bound in as associated data, so a ciphertext copied onto
//! another row does not decrypt. API keys are random 256-bit tokens, so a
//! plain SHA-256 is enough to store them (a slow password hash guards
//! low-entropy secrets, which these are not).

use std::io::Write;
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use anyhow::Context;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

const NONCE_LEN: usize = 12;
const KEY_FILE: &str = "master.key";
const API_KEY_PREFIX: &str = "shk_";

#[derive(Clone)]
pub struct MasterKey(Aes256Gcm);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl MasterKey {
    pub fn from_base64(encoded: &str) -> anyhow::Result<MasterKey> {
        let bytes = STANDARD
            .decode(encoded.trim())
            .context("master key is not base64")?;
        anyhow::ensure!(
            bytes.len() == 32,
            "master key must be 32 bytes, got {}",
            bytes.len()
        );
        Ok(MasterKey(
            Aes256Gcm::new_from_slice(&bytes).expect("length checked"),
        ))
    }

    /// The configured key, or the key file in `data_dir`, created (mode 0600)
    /// on first use.
    pub fn load_or_create(configured: Option<&str>, data_dir: &Path) -> anyhow::Result<MasterKey> {
        if let Some(encoded) = configured {
            return MasterKey::from_base64(encoded);
        }
        let path = data_dir.join(KEY_FILE);
        if path.exists() {
            let encoded = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            return MasterKey::from_base64(&encoded);
        }
        std::fs::create_dir_all(data_dir)?;
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let encoded = STANDARD.encode(bytes);
        write_private(&path, encoded.as_bytes())?;
        MasterKey::from_base64(&encoded)
    }

    pub fn seal(&self, plaintext: &[u8], bound_to: &str) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let payload = Payload {
            msg: plaintext,
            aad: bound_to.as_bytes(),
        };
        let sealed = self
            .0
            .encrypt(Nonce::from_slice(&nonce), payload)
            .expect("AES-GCM encrypts");
        [nonce.as_slice(), &sealed].concat()
    }

    pub fn open(&self, sealed: &[u8], bound_to: &str) -> anyhow::Result<Vec<u8>> {
        anyhow::ensure!(sealed.len() > NONCE_LEN, "sealed secret is truncated");
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let payload = Payload {
            msg: ciphertext,
            aad: bound_to.as_bytes(),
        };
        self.0
            .decrypt(Nonce::from_slice(nonce), payload)
            .map_err(|_| anyhow::anyhow!("secret does not decrypt with this master key"))
    }
}

fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents)?;
    file.sync_all()?;
    Ok(())
}

/// A new API key, shown to its owner once.
pub fn new_api_key() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{API_KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// What the database stores in place of an API key.
pub fn hash_api_key(key: &str) -> String {
    hex_lower(&Sha256::digest(key.as_bytes()))
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secret_opens_only_on_its_row() {
        let key = MasterKey::from_base64(&STANDARD.encode([7u8; 32])).unwrap();
        let sealed = key.seal(b"s3cr3t", "con_1");
        assert!(!sealed.windows(6).any(|w| w == b"s3cr3t"));
        assert_eq!(key.open(&sealed, "con_1").unwrap(), b"s3cr3t");
        assert!(key.open(&sealed, "con_2").is_err());
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = MasterKey::load_or_create(None, dir.path()).unwrap();
        let sealed = first.seal(b"x", "a");
        let again = MasterKey::load_or_create(None, dir.path()).unwrap();
        assert_eq!(again.open(&sealed, "a").unwrap(), b"x");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn api_keys_are_unique_and_hashed() {
        let (a, b) = (new_api_key(), new_api_key());
        assert_ne!(a, b);
        assert!(a.starts_with(API_KEY_PREFIX));
        assert_eq!(hash_api_key(&a).len(), 64);
        assert_ne!(hash_api_key(&a), hash_api_key(&b));
    }
}
