//! The Messages table's stream as the index function receives it (a DynamoDB event source): which records are
//! one-on-one messages just stored, and the index job of each. The event source's filter passes only those, but a
//! record of anything else is skipped here too, since a filter is configuration and this is the contract.

use super::items::MessageItem;
use crate::{frames::Target, jobs::IndexJob, model::StoredMessage};
use serde::Deserialize;

/// A batch of stream records (Lambda's DynamoDB event; only what the index reads).
#[derive(Debug, Deserialize)]
pub struct StreamEvent {
    #[serde(rename = "Records", default)]
    pub records: Vec<StreamRecord>,
}

#[derive(Debug, Deserialize)]
pub struct StreamRecord {
    #[serde(rename = "eventName", default)]
    event_name: String,
    dynamodb: StreamChange,
}

#[derive(Debug, Deserialize)]
struct StreamChange {
    #[serde(rename = "SequenceNumber", default)]
    sequence_number: String,
    /// The item as written (the stream's view type is NEW_IMAGE); absent from removals.
    #[serde(rename = "NewImage", default)]
    new_image: Option<serde_dynamo::Item>,
}

impl StreamRecord {
    /// What Lambda expects back to retry from this record (ReportBatchItemFailures on a stream).
    pub fn sequence_number(&self) -> &str {
        &self.dynamodb.sequence_number
    }

    /// The index job of the one-on-one message this record inserted; `None` for an edit, a removal or a group
    /// message; an error for an insert whose image is not a message.
    pub fn into_index_job(self) -> Result<Option<IndexJob>, String> {
        if self.event_name != "INSERT" {
            return Ok(None);
        }
        let image = self.dynamodb.new_image.ok_or("an insert without its new image")?;
        let item: MessageItem = serde_dynamo::from_item(image).map_err(|e| format!("not a message: {e}"))?;
        let message = StoredMessage::try_from(item).map_err(|e| format!("not a message: {e}"))?;
        Ok(match &message.target {
            Target::To(to) => Some(IndexJob::new(&message, to)),
            Target::Group(_) => None,
        })
    }
}
