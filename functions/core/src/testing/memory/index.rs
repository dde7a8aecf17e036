//! [`IndexStore`] in memory: the unread counting and read marks that `aws::dynamo::index` writes as condition
//! expressions, as plain rules. The contract suite holds the two to the same answers.

use super::MemoryStore;
use crate::{
    ids::UserId,
    jobs::IndexJob,
    ports::{IndexStore, Indexed, Res},
};

impl IndexStore for MemoryStore {
    async fn index_direct(&self, job: &IndexJob, _expires_at: Option<i64>) -> Res<Indexed> {
        self.faults.check("index_direct")?;
        let mut s = self.state.lock().unwrap();
        let ts = job.timestamp();
        let mut outcome = Indexed::Done;
        s.index.insert((job.from.clone(), job.message_id));
        if s.index.insert((job.to.clone(), job.message_id)) {
            let r = s.sessions.entry((job.to.clone(), job.from.clone())).or_default();
            if r.last_read_ts.is_none_or(|t| t < ts) {
                r.unread += 1;
            } else {
                outcome = Indexed::ReadAhead;
            }
            if r.last_ts.is_none_or(|t| t < ts) {
                r.last_ts = Some(ts);
                r.last = Some((job.message_id, job.from.clone(), Some(job.preview.clone())));
            }
            if r.last_recv_ts.is_none_or(|t| t < ts) {
                r.last_recv_ts = Some(ts);
            }
        }
        let w = s.sessions.entry((job.from.clone(), job.to.clone())).or_default();
        if w.last_ts.is_none_or(|t| t < ts) {
            w.last_ts = Some(ts);
            w.last = Some((job.message_id, job.from.clone(), Some(job.preview.clone())));
        }
        Ok(outcome)
    }

    async fn indexed(&self, job: &IndexJob) -> Res<bool> {
        self.faults.check("indexed")?;
        Ok(self
            .state
            .lock()
            .unwrap()
            .index
            .contains(&(job.to.clone(), job.message_id)))
    }

    async fn read_direct(
        &self,
        reader: &UserId,
        peer: &UserId,
        up_to: Option<i64>,
        _pending_expires_at: i64,
    ) -> Res<Option<i64>> {
        self.faults.check("read_direct")?;
        let mut s = self.state.lock().unwrap();
        let session = s.sessions.entry((reader.clone(), peer.clone())).or_default();
        let before = session.last_read_ts;
        let Some(mark) = up_to.or(session.last_recv_ts) else {
            return Ok(None);
        };
        if before.is_some_and(|r| r >= mark) {
            return Ok(None);
        }
        // A mark with no conversation is the hidden pending one (`sessions` lists only conversations).
        session.unread = 0;
        session.last_read_ts = Some(mark);
        let receipt = session.last_recv_ts.map(|recv| recv.min(mark));
        Ok(receipt.filter(|r| before.is_none_or(|b| b < *r)))
    }
}
