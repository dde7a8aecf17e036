//! `ack` of one-on-one messages: delivered (out of the recipient's mailbox), and `delivered` receipts to the
//! senders. Group acks move a mark (see `group.rs`).

use super::{App, delivery::connections_of};
use crate::{
    error::Failure,
    frames::{ReceiptPush, ReceiptStatus, ServerFrame},
    ids::{MessageId, UserId},
    ports::{FrameCounter, JobQueue, MessageStore, PresenceStore, Pusher},
};
use std::collections::BTreeMap;

impl<S, P, Q> App<S, P, Q>
where
    S: PresenceStore + MessageStore + FrameCounter,
    P: Pusher,
    Q: JobQueue,
{
    /// Acknowledges receipt of `ids` by `acker`. Ids of messages not addressed to `acker` are ignored; acking again
    /// is harmless and sends the receipt again (the sender may have missed it). The frame, which arrived at
    /// `arrived_ms`, pays by progress: it is counted against the rate limit only when it delivered nothing new.
    pub async fn ack_direct(
        &self,
        acker: &UserId,
        ids: &[MessageId],
        now: i64,
        arrived_ms: i64,
    ) -> Result<(), Failure> {
        let acked = self.store.mark_delivered(acker, ids, now).await;
        // A message delivered by this ack carries its time: the store keeps the first ack's.
        let moved = acked.as_ref().is_ok_and(|a| a.iter().any(|m| m.delivered_at == now));
        self.pay_unless_moved(acker, arrived_ms, moved).await?;
        let acked = acked?;
        let mut by_sender: BTreeMap<UserId, Vec<MessageId>> = BTreeMap::new();
        for m in acked {
            by_sender.entry(m.from).or_default().push(m.id);
        }
        if by_sender.is_empty() {
            return Ok(());
        }
        let senders: Vec<UserId> = by_sender.keys().cloned().collect();
        // Strong: a sender who connected a moment ago gets its receipt.
        let presence = self.store.presence_latest(&senders).await?;
        let deliveries = by_sender.into_iter().map(|(sender, mut message_ids)| {
            message_ids.sort();
            let frame = ServerFrame::Receipt(ReceiptPush {
                status: ReceiptStatus::Delivered,
                by: acker.clone(),
                message_ids: Some(message_ids),
                with: None,
                up_to: None,
            })
            .to_json();
            let targets = connections_of(&presence, &[&sender], None, now);
            async move { self.deliver(&targets, &frame, now).await }
        });
        futures::future::join_all(deliveries).await;
        Ok(())
    }
}
