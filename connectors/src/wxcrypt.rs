//! WeChat's two signatures and the safe-mode cipher.
//!
//! - Signatures are the lower-case hex SHA-1 of the byte-wise sorted
//!   concatenation of their inputs: `[token, timestamp, nonce]` for the plain
//!   `signature`, plus the ciphertext (`Encrypt`, or the encrypted `echostr`)
//!   for `msg_signature`. They are compared as 20-byte digests in constant
//!   time.
//! - Safe mode encrypts with AES-256-CBC. The key is
//!   `base64(EncodingAESKey + "=")` (43 characters, 32 bytes), the IV is the
//!   key's first 16 bytes, and the plaintext, padded PKCS#7-style to a
//!   **32-byte** block (pad values 1..=32), is
//!   `random(16) ‖ msg_len(4, big-endian) ‖ msg ‖ appid`.
//!
//! Nothing here reports the plaintext or the key in an error.

use aes::Aes256;
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use cbc::cipher::block_padding::NoPadding;
use cbc::cipher::{BlockDecryptMut, KeyIvInit};
use sha1::{Digest, Sha1};

/// The block WeChat pads its plaintext to (twice AES's own).
const PAD_BLOCK: usize = 32;
/// Length of the random prefix of every plaintext.
const RANDOM_LEN: usize = 16;
/// Length of the big-endian message length after the random prefix.
const LEN_LEN: usize = 4;
/// Characters in an EncodingAESKey.
pub(super) const ENCODING_AES_KEY_LEN: usize = 43;

/// `EncodingAESKey` characters are random letters and digits, so the last
/// one usually leaves non-zero bits past the 32nd byte: the decoder must
/// ignore them, as the official samples' decoders do.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Hex SHA-1 of the sorted concatenation of `parts`, as WeChat signs:
/// what tests sign with (verification compares digests).
#[cfg(test)]
pub(super) fn signature(parts: &[&str]) -> String {
    hex::encode(digest(parts))
}

fn digest(parts: &[&str]) -> [u8; 20] {
    let mut sorted = parts.to_vec();
    sorted.sort_unstable();
    let mut hasher = Sha1::new();
    for part in sorted {
        hasher.update(part.as_bytes());
    }
    hasher.finalize().into()
}

/// Whether `given` (hex, either case) is the signature of `parts`, compared
/// in constant time. Anything that is not 40 hex digits is a mismatch.
pub(super) fn signature_matches(parts: &[&str], given: &str) -> bool {
    match hex::decode(given.trim()) {
        Ok(given) => constant_time_eq(&digest(parts), &given),
        Err(_) => false,
    }
}

pub(crate) use crate::signature::constant_time_eq;

/// Why a ciphertext did not open. Deliberately coarse: the caller reports
/// these without any value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CryptoError {
    /// The ciphertext is not base64.
    NotBase64,
    /// Empty or not a whole number of AES blocks.
    BadLength,
    /// The last byte is not a pad value 1..=32 repeated that many times.
    BadPadding,
    /// Too short for the random prefix and length, or the length runs past
    /// the end.
    BadLayout,
}

impl CryptoError {
    pub(super) fn reason(self) -> &'static str {
        match self {
            CryptoError::NotBase64 => "is not base64",
            CryptoError::BadLength => "is not a whole number of AES blocks",
            CryptoError::BadPadding => "does not decrypt under encoding_aes_key (bad padding)",
            CryptoError::BadLayout => "does not decrypt under encoding_aes_key (bad layout)",
        }
    }
}

/// The 32-byte AES key of a connection.
pub(super) struct AesKey([u8; 32]);

impl AesKey {
    /// Reads an `EncodingAESKey`: 43 base64 characters without the final
    /// `=`. `None` when it is anything else.
    pub(super) fn from_encoding_aes_key(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        if raw.len() != ENCODING_AES_KEY_LEN {
            return None;
        }
        let bytes = LENIENT.decode(format!("{raw}=")).ok()?;
        Some(Self(bytes.try_into().ok()?))
    }

    fn iv(&self) -> &[u8] {
        &self.0[..16]
    }

    /// Decrypts a base64 ciphertext into its message and trailing appid.
    pub(super) fn decrypt(&self, ciphertext_b64: &str) -> Result<Plaintext, CryptoError> {
        let mut buf = STANDARD
            .decode(ciphertext_b64.trim())
            .map_err(|_| CryptoError::NotBase64)?;
        if buf.is_empty() || buf.len() % 16 != 0 {
            return Err(CryptoError::BadLength);
        }
        let decryptor = cbc::Decryptor::<Aes256>::new_from_slices(&self.0, self.iv())
            .map_err(|_| CryptoError::BadLength)?;
        let len = decryptor
            .decrypt_padded_mut::<NoPadding>(&mut buf)
            .map_err(|_| CryptoError::BadLength)?
            .len();
        buf.truncate(len);
        let unpadded = unpad(&buf)?;
        let body = unpadded
            .get(RANDOM_LEN..)
            .filter(|rest| rest.len() >= LEN_LEN)
            .ok_or(CryptoError::BadLayout)?;
        let (len_bytes, rest) = body.split_at(LEN_LEN);
        let msg_len =
            u32::from_be_bytes(len_bytes.try_into().map_err(|_| CryptoError::BadLayout)?) as usize;
        if msg_len > rest.len() {
            return Err(CryptoError::BadLayout);
        }
        let (msg, app_id) = rest.split_at(msg_len);
        Ok(Plaintext {
            msg: msg.to_vec(),
            app_id: app_id.to_vec(),
        })
    }

    /// Encrypts like WeChat does, with a chosen random prefix: for tests.
    #[cfg(test)]
    pub(super) fn encrypt(&self, random: [u8; 16], msg: &[u8], app_id: &str) -> String {
        let mut plain = random.to_vec();
        plain.extend_from_slice(&u32::try_from(msg.len()).unwrap().to_be_bytes());
        plain.extend_from_slice(msg);
        plain.extend_from_slice(app_id.as_bytes());
        let pad = PAD_BLOCK - plain.len() % PAD_BLOCK;
        plain.extend(vec![pad as u8; pad]);
        self.encrypt_raw(&plain)
    }

    /// Encrypts whole AES blocks as they are, with no padding of its own:
    /// for tests that need malformed plaintexts.
    #[cfg(test)]
    pub(super) fn encrypt_raw(&self, blocks: &[u8]) -> String {
        use cbc::cipher::BlockEncryptMut;

        let encryptor = cbc::Encryptor::<Aes256>::new_from_slices(&self.0, self.iv()).unwrap();
        STANDARD.encode(encryptor.encrypt_padded_vec_mut::<NoPadding>(blocks))
    }
}

/// A decrypted message and the appid it was encrypted for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Plaintext {
    pub(super) msg: Vec<u8>,
    pub(super) app_id: Vec<u8>,
}

/// Strips WeChat's 32-byte-block PKCS#7 padding.
fn unpad(buf: &[u8]) -> Result<&[u8], CryptoError> {
    let pad = usize::from(*buf.last().ok_or(CryptoError::BadPadding)?);
    if pad == 0 || pad > PAD_BLOCK || pad > buf.len() {
        return Err(CryptoError::BadPadding);
    }
    let (kept, padding) = buf.split_at(buf.len() - pad);
    if padding.iter().any(|&b| usize::from(b) != pad) {
        return Err(CryptoError::BadPadding);
    }
    Ok(kept)
}

// --- request-level helpers shared by both WeChat platforms -------------------

use crate::webhook::{VerifyError, WebhookRequest};

/// The secret holding the Token both platforms sign with.
pub const TOKEN_SECRET: &str = "token";
/// The secret holding the 43-character EncodingAESKey.
pub const AES_KEY_SECRET: &str = "encoding_aes_key";

/// Decrypts an already signature-checked ciphertext with the connection's
/// EncodingAESKey, and checks it was encrypted for this connection: the
/// trailing receiver id must equal the setting named `receiver_setting`
/// (the Official Account's app id, the WeCom corp id).
pub fn open(
    request: &WebhookRequest<'_>,
    receiver_setting: &str,
    ciphertext: &str,
    what: &str,
) -> Result<Vec<u8>, VerifyError> {
    let raw_key = request
        .secret(AES_KEY_SECRET)
        .ok_or_else(|| malformed(format!("the connection has no {AES_KEY_SECRET} secret")))?;
    let key = AesKey::from_encoding_aes_key(raw_key).ok_or_else(|| {
        malformed(format!(
            "the {AES_KEY_SECRET} secret is not {ENCODING_AES_KEY_LEN} base64 characters"
        ))
    })?;
    let receiver = request
        .setting(receiver_setting)
        .ok_or_else(|| malformed(format!("the connection has no {receiver_setting} setting")))?;
    let plaintext = key
        .decrypt(ciphertext)
        .map_err(|e| malformed(format!("{what} {}", e.reason())))?;
    // The receiver id is public, so a plain comparison leaks nothing.
    if plaintext.app_id != receiver.trim().as_bytes() {
        return Err(VerifyError::BadSignature);
    }
    Ok(plaintext.msg)
}

pub fn token<'a>(request: &'a WebhookRequest<'_>) -> Result<&'a str, VerifyError> {
    request
        .secret(TOKEN_SECRET)
        .ok_or_else(|| malformed(format!("the connection has no {TOKEN_SECRET} secret")))
}

/// A signature input from the query; missing or empty counts as missing.
pub fn required_param(
    request: &WebhookRequest<'_>,
    name: &'static str,
) -> Result<String, VerifyError> {
    request
        .query_param(name)
        .filter(|v| !v.is_empty())
        .ok_or(VerifyError::MissingSignature(name))
}

pub fn malformed(reason: impl Into<String>) -> VerifyError {
    VerifyError::Malformed(reason.into())
}
