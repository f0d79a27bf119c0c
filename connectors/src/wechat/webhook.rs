//! Verifying WeChat's pushes: the URL check (`GET … echostr`) and message
//! POSTs, both signed in the query string, in plain or safe (AES) mode.

use http::HeaderMap;

use super::crypto;
use super::{mapping, Wechat};
use crate::model::SourceRecord;
use crate::webhook::{
    Connector, DecodeContext, DecodeError, Intake, VerifyError, WebhookRequest, WebhookSource,
};

// The Token secret (signs); the EncodingAESKey is read by `crypto::open`.
pub(super) use super::crypto::TOKEN_SECRET;
/// The official account's AppID, which every safe-mode plaintext ends with.
pub(super) const APP_ID_SETTING: &str = "app_id";

impl Connector for Wechat {
    fn platform(&self) -> &'static str {
        "wechat"
    }

    fn required_settings(&self) -> &'static [&'static str] {
        &[APP_ID_SETTING]
    }

    /// Safe mode additionally needs `secrets.encoding_aes_key`; without it
    /// encrypted pushes are refused as malformed, naming the key.
    fn required_secrets(&self) -> &'static [&'static str] {
        &[TOKEN_SECRET]
    }

    fn webhooks(&self) -> Option<&dyn WebhookSource> {
        Some(self)
    }
}

impl WebhookSource for Wechat {
    fn secret_keys(&self) -> &'static [&'static str] {
        &[TOKEN_SECRET]
    }

    fn verify_request(&self, request: &WebhookRequest<'_>) -> Result<Intake, VerifyError> {
        let token = crypto::token(request)?;
        let timestamp = crypto::required_param(request, "timestamp")?;
        let nonce = crypto::required_param(request, "nonce")?;
        if is_safe_mode(request) {
            let msg_signature = crypto::required_param(request, "msg_signature")?;
            let envelope: mapping::Envelope = mapping::parse_xml(request.body)
                .ok_or_else(|| crypto::malformed("body is not WeChat's encrypted XML envelope"))?;
            let encrypted = envelope
                .encrypt
                .as_deref()
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .ok_or_else(|| crypto::malformed("missing Encrypt element"))?;
            if !crypto::signature_matches(&[token, &timestamp, &nonce, encrypted], &msg_signature) {
                return Err(VerifyError::BadSignature);
            }
            let plaintext = crypto::open(request, APP_ID_SETTING, encrypted, "Encrypt")?;
            let (dedupe_key, topic) = mapping::stamp(&plaintext)
                .ok_or_else(|| crypto::malformed("decrypted Encrypt is not WeChat message XML"))?;
            Ok(Intake::Unwrapped {
                dedupe_key,
                topic,
                body: plaintext,
            })
        } else {
            // Plain mode signs only the token, timestamp and nonce, never
            // the body: see the module documentation.
            let signature = crypto::required_param(request, "signature")?;
            if !crypto::signature_matches(&[token, &timestamp, &nonce], &signature) {
                return Err(VerifyError::BadSignature);
            }
            let (dedupe_key, topic) = mapping::stamp(request.body)
                .ok_or_else(|| crypto::malformed("body is not WeChat message XML"))?;
            Ok(Intake::Delivery { dedupe_key, topic })
        }
    }

    /// The URL check. Plain: `signature` over `[token, timestamp, nonce]`,
    /// answered with `echostr` verbatim. Safe (`msg_signature` present):
    /// `msg_signature` over `[token, timestamp, nonce, echostr]`, and
    /// `echostr` is a ciphertext whose decrypted message is the answer.
    fn handshake(&self, request: &WebhookRequest<'_>) -> Option<Result<String, VerifyError>> {
        Some(answer_handshake(request))
    }

    /// WeChat takes anything but `success` (or an empty body) as a reply
    /// to show the user, and otherwise shows "该公众号暂时无法提供服务".
    fn acknowledgement(&self) -> Option<&'static str> {
        Some("success")
    }

    /// WeChat signs in the query string, which only
    /// [`WebhookSource::verify_request`] sees: without it nothing verifies.
    fn verify(
        &self,
        _secrets: &[&[u8]],
        _headers: &HeaderMap,
        _body: &[u8],
    ) -> Result<Intake, VerifyError> {
        Err(VerifyError::MissingSignature("signature"))
    }

    fn decode(
        &self,
        topic: &str,
        body: &[u8],
        ctx: &DecodeContext,
    ) -> Result<Vec<SourceRecord>, DecodeError> {
        mapping::decode(topic, body, ctx)
    }
}

fn answer_handshake(request: &WebhookRequest<'_>) -> Result<String, VerifyError> {
    let token = crypto::token(request)?;
    let timestamp = crypto::required_param(request, "timestamp")?;
    let nonce = crypto::required_param(request, "nonce")?;
    let echostr = request
        .query_param("echostr")
        .filter(|e| !e.is_empty())
        .ok_or_else(|| crypto::malformed("missing echostr query parameter"))?;
    match request.query_param("msg_signature") {
        Some(msg_signature) => {
            // A base64 `echostr` sent without percent-encoding has its `+`
            // turned into spaces by query decoding; the signature tells
            // which reading WeChat signed.
            let mut candidates = vec![echostr.clone()];
            if echostr.contains(' ') {
                candidates.push(echostr.replace(' ', "+"));
            }
            let signed = candidates
                .into_iter()
                .find(|c| {
                    crypto::signature_matches(&[token, &timestamp, &nonce, c], &msg_signature)
                })
                .ok_or(VerifyError::BadSignature)?;
            let plaintext = crypto::open(request, APP_ID_SETTING, &signed, "echostr")?;
            String::from_utf8(plaintext)
                .map_err(|_| crypto::malformed("decrypted echostr is not UTF-8"))
        }
        None => {
            // The Official Account's URL check stays plain even when its
            // messages are encrypted, so `encrypt_type` alone does not
            // make a handshake "safe".
            let signature = crypto::required_param(request, "signature")?;
            if crypto::signature_matches(&[token, &timestamp, &nonce], &signature) {
                Ok(echostr)
            } else {
                Err(VerifyError::BadSignature)
            }
        }
    }
}

/// Safe (or compatible) mode: WeChat adds `encrypt_type=aes` and
/// `msg_signature` to the query.
fn is_safe_mode(request: &WebhookRequest<'_>) -> bool {
    request
        .query_param("encrypt_type")
        .is_some_and(|t| t.eq_ignore_ascii_case("aes"))
        || request.query_param("msg_signature").is_some()
}
