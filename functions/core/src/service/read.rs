//! `read` of a one-on-one conversation: unread becomes 0 and the peer gets a `read` receipt. Group reads move a
//! mark (see `group.rs`).

use super::{App, delivery::connections_of};
use crate::{
    error::Failure,
    frames::{ReceiptPush, ReceiptStatus, ServerFrame},
    ids::UserId,
    ports::{IndexStore, JobQueue, PresenceStore, Pusher},
};

impl<S, P, Q> App<S, P, Q>
where
    S: PresenceStore + IndexStore,
    P: Pusher,
    Q: JobQueue,
{
    /// `reader` read its conversation with `peer`: unread 0, and `peer`'s connections get a `read` receipt up to
    /// `up_to` (the newest message the client showed, never later than now) or, without it, the newest message
    /// indexed for `reader` from `peer`; none if the read mark did not move.
    pub async fn read_direct(
        &self,
        reader: &UserId,
        peer: &UserId,
        up_to: Option<i64>,
        now: i64,
    ) -> Result<(), Failure> {
        let Some(up_to) = self.store.read_direct(reader, peer, up_to.map(|t| t.min(now))).await? else {
            return Ok(());
        };
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
