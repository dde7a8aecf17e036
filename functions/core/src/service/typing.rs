//! `typing`: forwarded to the peer's (or the group's other members') connections, never stored, and no write on
//! its path: the frame is not even counted against the rate limit (that is a write), and the one-`start`-a-second
//! rule is kept in the function instance's memory.
//!
//! Only to a peer who is a friend or with whom a message was exchanged (the peer's Friends row or its session
//! with the sender: a strong GetItem each, no more), or to a group's members; anything else is dropped silently,
//! as is a peer who blocked the sender. Groups over [`TYPING_GROUP_MAX`] members get no typing at all: each frame
//! would read every member's presence (Zulip and Slack stop typing notices in large channels too).

use super::{App, Caller, delivery::connections_of};
use crate::{
    error::Failure,
    frames::{ServerFrame, Target, TypingFrame, TypingPush, TypingState},
    ids::UserId,
    model::FriendState,
    ports::{FriendStore, GroupStore, JobQueue, PresenceStore, PullStore, Pusher},
};
use std::{collections::HashMap, sync::Mutex};
use tracing::debug;

/// Groups larger than this forward no typing.
pub const TYPING_GROUP_MAX: usize = 100;
/// One `start` per sender and conversation per this many milliseconds.
const START_EVERY_MS: i64 = 1_000;
/// Entries the gate keeps before it forgets the stale ones.
const GATE_ENTRIES: usize = 10_000;

/// When each (sender, conversation) last had a `start` forwarded by this instance. Another instance has its own:
/// with N instances warm a sender could get N a second through, which the clients' own once-a-second sending and
/// the stage's throttling bound.
#[derive(Debug, Default)]
pub struct TypingGate(Mutex<HashMap<(UserId, Target), i64>>);

impl TypingGate {
    /// Whether a `start` at `now` may go (and, if so, remembers it).
    fn admit(&self, sender: &UserId, target: &Target, now: i64) -> bool {
        let mut seen = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= GATE_ENTRIES {
            seen.retain(|_, at| now - *at < START_EVERY_MS);
        }
        let key = (sender.clone(), target.clone());
        match seen.get(&key) {
            Some(at) if now - at < START_EVERY_MS => false,
            _ => {
                seen.insert(key, now);
                true
            }
        }
    }
}

impl<S, P, Q> App<S, P, Q>
where
    S: FriendStore + PullStore + GroupStore + PresenceStore,
    P: Pusher,
    Q: JobQueue,
{
    /// Forwards a `typing` frame if it may go; never an error for one that may not (dropped silently).
    pub async fn typing(&self, caller: &Caller, frame: &TypingFrame, now: i64) -> Result<(), Failure> {
        if frame.state == TypingState::Start && !self.typing_gate.admit(&caller.user, &frame.target, now) {
            debug!("typing start within a second of the last: not forwarded");
            return Ok(());
        }
        let (receivers, push) = match &frame.target {
            Target::To(peer) => {
                if peer == &caller.user || !self.may_tell_typing(&caller.user, peer).await? {
                    return Ok(());
                }
                let push = TypingPush {
                    from: caller.user.clone(),
                    to: Some(peer.clone()),
                    group: None,
                    state: frame.state,
                };
                (vec![peer.clone()], push)
            }
            Target::Group(group) => {
                let (g, me) = self.store.membership(group, &caller.user).await?;
                if g.is_none() || me.is_none() {
                    return Ok(());
                }
                let members = self.store.members(group).await?;
                if members.len() > TYPING_GROUP_MAX {
                    return Ok(());
                }
                let others = members
                    .into_iter()
                    .map(|m| m.user)
                    .filter(|u| u != &caller.user)
                    .collect();
                let push = TypingPush {
                    from: caller.user.clone(),
                    to: None,
                    group: Some(group.clone()),
                    state: frame.state,
                };
                (others, push)
            }
        };
        let presence = self.store.presence(&receivers).await?;
        let targets = connections_of(&presence, &receivers.iter().collect::<Vec<_>>(), None, now);
        self.deliver(&targets, &ServerFrame::Typing(push).to_json(), now).await;
        Ok(())
    }

    /// Whether `peer` may be told `sender` is typing: it is the sender's friend, or they exchanged a message, and
    /// it did not block the sender.
    async fn may_tell_typing(&self, sender: &UserId, peer: &UserId) -> Result<bool, Failure> {
        let (standing, session) =
            futures::try_join!(self.store.standing(peer, sender), self.store.session(peer, sender))?;
        Ok(match standing {
            Some(FriendState::Blocked) => false,
            Some(FriendState::Friend) => true,
            _ => session.is_some(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::user;

    #[test]
    fn one_start_a_second_per_sender_and_conversation() {
        let gate = TypingGate::default();
        let (bob, carol) = (Target::To(user("bob")), Target::To(user("carol")));
        assert!(gate.admit(&user("alice"), &bob, 10_000));
        assert!(!gate.admit(&user("alice"), &bob, 10_999), "within the second");
        assert!(gate.admit(&user("alice"), &carol, 10_500), "another conversation");
        assert!(gate.admit(&user("dave"), &bob, 10_500), "another sender");
        assert!(gate.admit(&user("alice"), &bob, 11_000), "a second later");
    }
}
