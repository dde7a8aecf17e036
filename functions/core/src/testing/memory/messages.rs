//! [`MessageStore`] in memory: claims (first attempt wins, leases, done marks), messages and the mailbox.

use super::MemoryStore;
use crate::{
    frames::Target,
    ids::{MessageId, UserId},
    jobs::IndexJob,
    model::{Claim, ClaimKey, Delivered, FoundDirect, StoredMessage},
    ports::{MessageStore, Res},
};

impl MemoryStore {
    /// The index jobs of the one-on-one messages stored since the last call, oldest insert first: what the
    /// index function gets from the Messages table's stream.
    pub fn take_stream(&self) -> Vec<IndexJob> {
        std::mem::take(&mut self.state.lock().unwrap().stream)
    }
}

impl MessageStore for MemoryStore {
    async fn claim(&self, key: &ClaimKey, fresh: &Claim, _expires_at: i64) -> Res<Option<Claim>> {
        self.faults.check("claim")?;
        let mut s = self.state.lock().unwrap();
        if let Some(existing) = s.claims.get(key) {
            return Ok(Some(existing.clone()));
        }
        s.claims.insert(key.clone(), fresh.clone());
        Ok(None)
    }

    async fn read_claim(&self, key: &ClaimKey) -> Res<Option<Claim>> {
        self.faults.check("read_claim")?;
        Ok(self.state.lock().unwrap().claims.get(key).cloned())
    }

    async fn take_over(&self, key: &ClaimKey, seen: &Claim, lease_until: i64) -> Res<bool> {
        self.faults.check("take_over")?;
        let mut s = self.state.lock().unwrap();
        match s.claims.get_mut(key) {
            Some(c) if c.lease_until == seen.lease_until && !c.done => {
                c.lease_until = lease_until;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn release(&self, key: &ClaimKey, lease_until: i64) -> Res<()> {
        self.faults.check("release")?;
        let mut s = self.state.lock().unwrap();
        if let Some(c) = s
            .claims
            .get_mut(key)
            .filter(|c| c.lease_until == lease_until && !c.done)
        {
            c.lease_until = 0;
        }
        Ok(())
    }

    async fn get_message(&self, id: &MessageId) -> Res<Option<StoredMessage>> {
        self.faults.check("get_message")?;
        Ok(self.state.lock().unwrap().messages.get(id).cloned())
    }

    async fn forget(&self, key: &ClaimKey, claim: &Claim) -> Res<()> {
        self.faults.check("forget")?;
        let mut s = self.state.lock().unwrap();
        if s.claims.get(key).is_some_and(|c| c.message_id == claim.message_id) {
            s.claims.remove(key);
        }
        Ok(())
    }

    async fn put_message(&self, m: &StoredMessage) -> Res<Option<StoredMessage>> {
        self.faults.check("put_message")?;
        let mut s = self.state.lock().unwrap();
        if let Some(existing) = s.messages.get(&m.id) {
            return Ok(Some(existing.clone()));
        }
        s.messages.insert(m.id, m.clone());
        if let Target::To(to) = &m.target {
            s.stream.push(IndexJob::new(m, to));
            // As on DynamoDB, the mailbox entry is a write of its own: it can fail with the message stored.
            self.faults.check("mailbox_put")?;
            s.inbox.entry(to.clone()).or_default().insert(m.id);
        }
        Ok(None)
    }

    async fn stored_direct(&self, id: &MessageId, to: &UserId) -> Res<Option<FoundDirect>> {
        self.faults.check("stored_direct")?;
        let mut s = self.state.lock().unwrap();
        let Some(m) = s.messages.get(id).cloned() else {
            return Ok(None);
        };
        // Acknowledged (the fake keeps the mark on the message): never back in the mailbox.
        let put_back = m.delivered_at.is_none() && s.inbox.entry(to.clone()).or_default().insert(*id);
        Ok(Some(FoundDirect { message: m, put_back }))
    }

    async fn mark_delivered(&self, acker: &UserId, ids: &[MessageId], now: i64) -> Res<Vec<Delivered>> {
        self.faults.check("mark_delivered")?;
        let mut s = self.state.lock().unwrap();
        let mut out = Vec::new();
        for id in ids {
            let Some(m) = s.messages.get_mut(id) else { continue };
            if m.target != Target::To(acker.clone()) {
                continue;
            }
            out.push(Delivered {
                id: *id,
                from: m.from.clone(),
                delivered_at: *m.delivered_at.get_or_insert(now),
            });
            if let Some(inbox) = s.inbox.get_mut(acker) {
                inbox.remove(id);
            }
        }
        Ok(out)
    }
}
