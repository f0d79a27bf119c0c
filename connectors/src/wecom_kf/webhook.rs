//! Verifying WeCom's callbacks: the encrypted URL check (`GET … echostr`)
//! and the encrypted event POSTs, both signed in the query string.

use http::HeaderMap;

use super::crypto;
use super::{mapping, WecomKf};
use crate::model::SourceRecord;
use crate::payload::invalid;
use crate::poll::{PollingSource, Resource};
use crate::webhook::{
    Connector, DecodeContext, DecodeError, Intake, VerifyError, WebhookRequest, WebhookSource,
};

// The Token (signs) and the EncodingAESKey (encrypts) secrets.
pub(super) use super::crypto::{AES_KEY_SECRET, TOKEN_SECRET};
/// The customer-service app's Secret, for `gettoken`.
pub(super) const APP_SECRET: &str = "secret";
/// The company's CorpID: the receiveid of every callback, and `gettoken`'s
/// `corpid`.
pub(super) const CORP_ID_SETTING: &str = "corp_id";
/// Optional: the one customer-service account to read.
pub(super) const OPEN_KFID_SETTING: &str = "open_kfid";

impl Connector for WecomKf {
    fn platform(&self) -> &'static str {
        "wecom_kf"
    }

    fn required_settings(&self) -> &'static [&'static str] {
        &[CORP_ID_SETTING]
    }

    fn required_secrets(&self) -> &'static [&'static str] {
        &[TOKEN_SECRET, AES_KEY_SECRET, APP_SECRET]
    }

    fn webhooks(&self) -> Option<&dyn WebhookSource> {
        Some(self)
    }

    fn polling(&self) -> Option<&dyn PollingSource> {
        Some(self)
    }
}

impl WebhookSource for WecomKf {
    fn secret_keys(&self) -> &'static [&'static str] {
        &[TOKEN_SECRET]
    }

    fn verify_request(&self, request: &WebhookRequest<'_>) -> Result<Intake, VerifyError> {
        let token = crypto::token(request)?;
        let msg_signature = crypto::required_param(request, "msg_signature")?;
        let timestamp = crypto::required_param(request, "timestamp")?;
        let nonce = crypto::required_param(request, "nonce")?;
        let envelope: mapping::Envelope = mapping::parse_xml(request.body)
            .ok_or_else(|| crypto::malformed("body is not WeCom's encrypted XML envelope"))?;
        let encrypted = envelope
            .encrypt
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .ok_or_else(|| crypto::malformed("missing Encrypt element"))?;
        if !crypto::signature_matches(&[token, &timestamp, &nonce, encrypted], &msg_signature) {
            return Err(VerifyError::BadSignature);
        }
        let plaintext = crypto::open(request, CORP_ID_SETTING, encrypted, "Encrypt")?;
        let (dedupe_key, topic) = mapping::stamp(&plaintext)
            .ok_or_else(|| crypto::malformed("decrypted Encrypt is not WeCom callback XML"))?;
        Ok(Intake::Unwrapped {
            dedupe_key,
            topic,
            body: plaintext,
        })
    }

    /// The URL check: `msg_signature` over `[token, timestamp, nonce,
    /// echostr]`, and the answer is the decrypted `echostr`.
    fn handshake(&self, request: &WebhookRequest<'_>) -> Option<Result<String, VerifyError>> {
        Some(answer_handshake(request))
    }

    /// WeCom takes an empty 200 as "received" (it then does not retry).
    fn acknowledgement(&self) -> Option<&'static str> {
        Some("")
    }

    /// `kf_msg_or_event` says only that the `messages` stream has news.
    fn triggers_sync(&self, topic: &str, _body: &[u8]) -> Option<Resource> {
        (topic == mapping::KF_MSG_OR_EVENT).then_some(Resource::Messages)
    }

    /// WeCom signs in the query string, which only
    /// [`WebhookSource::verify_request`] sees: without it nothing verifies.
    fn verify(
        &self,
        _secrets: &[&[u8]],
        _headers: &HeaderMap,
        _body: &[u8],
    ) -> Result<Intake, VerifyError> {
        Err(VerifyError::MissingSignature("msg_signature"))
    }

    /// Callbacks carry no messages (they are read through `sync_msg`), so
    /// every stored callback decodes to nothing; the body is still checked
    /// to be WeCom callback XML.
    fn decode(
        &self,
        topic: &str,
        body: &[u8],
        _ctx: &DecodeContext,
    ) -> Result<Vec<SourceRecord>, DecodeError> {
        mapping::parse_xml::<mapping::Callback>(body)
            .ok_or_else(|| invalid(topic, "body is not WeCom callback XML"))?;
        Ok(Vec::new())
    }
}

fn answer_handshake(request: &WebhookRequest<'_>) -> Result<String, VerifyError> {
    let token = crypto::token(request)?;
    let msg_signature = crypto::required_param(request, "msg_signature")?;
    let timestamp = crypto::required_param(request, "timestamp")?;
    let nonce = crypto::required_param(request, "nonce")?;
    let echostr = request
        .query_param("echostr")
        .filter(|e| !e.is_empty())
        .ok_or_else(|| crypto::malformed("missing echostr query parameter"))?;
    // A base64 `echostr` sent without percent-encoding has its `+` turned
    // into spaces by query decoding; the signature tells which reading
    // WeCom signed.
    let mut candidates = vec![echostr.clone()];
    if echostr.contains(' ') {
        candidates.push(echostr.replace(' ', "+"));
    }
    let signed = candidates
        .into_iter()
        .find(|c| crypto::signature_matches(&[token, &timestamp, &nonce, c], &msg_signature))
        .ok_or(VerifyError::BadSignature)?;
    let plaintext = crypto::open(request, CORP_ID_SETTING, &signed, "echostr")?;
    String::from_utf8(plaintext).map_err(|_| crypto::malformed("decrypted echostr is not UTF-8"))
}
