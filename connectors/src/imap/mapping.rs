//! One fetched message into a record, through the email connectors' mail
//! reading (`email::mime`) and record building (`email::thread`).

use super::client::Fetched;
use crate::email::mime::parse_mime;
use crate::email::thread::{to_record, OwnAddresses};
use crate::model::SourceRecord;
use crate::webhook::{DecodeContext, DecodeError};
use crate::ConnectorError;

/// The topic named in decoding errors.
const TOPIC: &str = "imap";

/// The record of the message with this UID, or `None` when it identifies
/// nobody (auto-reply, bounce, no customer address) or is not a mail at all.
/// INTERNALDATE stands in for a missing `Date` header.
pub(super) fn record(
    uid: u32,
    message: &Fetched,
    own: &OwnAddresses,
    ctx: &DecodeContext,
) -> Result<Option<SourceRecord>, ConnectorError> {
    let Some(email) = parse_mime(&message.body) else {
        return Ok(None);
    };
    to_record(TOPIC, &email, message.internal_date, own, ctx).map_err(|e| {
        let DecodeError::Invalid { reason, .. } = e;
        ConnectorError::Malformed(format!("message UID {uid}: {reason}"))
    })
}
