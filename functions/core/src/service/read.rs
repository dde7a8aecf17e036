//! `read` of a one-on-one conversation: unread becomes 0 and the peer gets a `read` receipt. Group reads move a
//! mark (see `group.rs`).

use super::{App, delivery::connections_of};
use crate::{
    error::Failure,
    frames::{ReceiptPush, ReceiptStatus, ServerFrame},
    ids::UserId,
    ports::{IndexStore, JobQueue, PresenceStore, Pusher},
};

/// How long a read mark of a conversation with no message yet waits for one (a read that overtook indexing)
/// before it lapses.
const PENDING_READ_SECONDS: i64 = 3_600;

impl<S, P, Q> App<S, P, Q>
where
    S: PresenceStore + IndexStore,
    P: Pusher,
    Q: JobQueue,
{
    /// `reader` read its conversation with `peer`: unread 0, and `peer`'s connections get a `read` receipt up to
    /// the newest message `reader` received from `peer` at or before `up_to` (the newest message the client
    /// showed, never later than now) or, without it, the newest received; none if no received message became
    /// read. A mark ahead of indexing is honoured when the message is indexed ([`App::read_receipt`]).
    pub async fn read_direct(
        &self,
        reader: &UserId,
        peer: &UserId,
        up_to: Option<i64>,
        now: i64,
    ) -> Result<(), Failure> {
        let pending_expires_at = now / 1000 + PENDING_READ_SECONDS;
        let marked = self
            .store
            .read_direct(reader, peer, up_to.map(|t| t.min(now)), pending_expires_at);
        let Some(up_to) = marked.await? else {
            return Ok(());
        };
        self.read_receipt(reader, peer, up_to, now).await
    }

    /// Tells `peer`'s connections that `reader` read what it received from `peer` up to `up_to`.
    pub async fn read_receipt(&self, reader: &UserId, peer: &UserId, up_to: i64, now: i64) -> Result<(), Failure> {
        let presence = self.store.presence_latest(std::slice::from_ref(peer)).await?;
        let frame = ServerFrame::Receipt(ReceiptPush {
            status: ReceiptStatus::Read,
            by: reader.clone(),
            message_ids: None,
            with: Some(reader.clone()),
            up_to: Some(up_to),
        })
        .to_json();
        self.deliver(&connections_of(&presence, &[peer], None, now), &frame, now)
            .await;
        Ok(())
    }
}
