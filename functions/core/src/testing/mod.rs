//! Test support, public behind the `testing` feature: the in-memory fakes of every port ([`memory`]), one
//! builder for an app on them ([`TestApp`]), short constructors for ids, and the contract suite ([`contract`])
//! that runs the same cases against the fakes and against the DynamoDB store.

pub mod contract;
pub mod memory;

use crate::{
    config::Settings,
    frames::{SendFrame, Target},
    ids::{Body, ClientMsgId, ConnectionId, GroupId, MessageId, UserId},
    service::{App, Caller},
};
pub use memory::{Faults, MemoryPusher, MemoryQueue, MemoryStore};

/// The rules on the in-memory fakes.
pub type TestApp = App<MemoryStore, MemoryPusher, MemoryQueue>;

/// Builds a [`TestApp`]: `TestApp::with_users(&["alice", "bob"])`, or with settings of its own.
pub struct TestAppBuilder {
    users: Vec<UserId>,
    all_friends: bool,
    settings: Settings,
}

impl TestApp {
    /// An app whose directory knows `users`, with the default settings but a short claim lease (a takeover
    /// after a failed attempt happens within a test's patience).
    pub fn with_users(users: &[&str]) -> Self {
        Self::builder().users(users).build()
    }

    pub fn builder() -> TestAppBuilder {
        TestAppBuilder {
            users: Vec::new(),
            all_friends: false,
            settings: Settings {
                claim_lease_ms: 300,
                // Tests of the rules send hundreds of messages at once; the rate limit has its own tests.
                frame_limit: 0,
                ..Settings::default()
            },
        }
    }
}

impl TestAppBuilder {
    pub fn users(mut self, users: &[&str]) -> Self {
        self.users.extend(users.iter().map(|u| user(u)));
        self
    }

    /// Makes every user friends with every other (so a group's creator adds them at once, without invitations).
    pub fn all_friends(mut self) -> Self {
        self.all_friends = true;
        self
    }

    /// Changes the settings (starting from the builder's).
    pub fn settings(mut self, change: impl FnOnce(&mut Settings)) -> Self {
        change(&mut self.settings);
        self
    }

    pub fn build(self) -> TestApp {
        let store = MemoryStore::default();
        {
            let mut s = store.state.lock().unwrap();
            if self.all_friends {
                for a in &self.users {
                    for b in self.users.iter().filter(|b| *b != a) {
                        let row = crate::model::FriendRow::new(b.clone(), crate::model::FriendState::Friend);
                        s.friends.insert((a.clone(), b.clone()), row);
                    }
                }
            }
            s.users.extend(self.users.into_iter().map(|u| (u, 0)));
        }
        App::new(store, MemoryPusher::default(), MemoryQueue::default(), self.settings)
    }
}

/// A user id from a literal.
pub fn user(s: &str) -> UserId {
    UserId::parse(s).expect("a valid user id")
}

/// A connection id from a literal.
pub fn conn(s: &str) -> ConnectionId {
    ConnectionId::parse(s).expect("a valid connection id")
}

pub fn group(s: &str) -> GroupId {
    GroupId::parse(s).expect("a valid group id")
}

/// The caller `user` on `connection`.
pub fn caller(user_id: &str, connection: &str) -> Caller {
    Caller {
        user: user(user_id),
        connection: conn(connection),
    }
}

/// A one-on-one `send` of `body` to `to` with the client message id `cmid`.
pub fn send_frame(cmid: &str, to: &str, body: &str) -> SendFrame {
    SendFrame {
        client_msg_id: ClientMsgId::parse(cmid).unwrap(),
        target: Target::To(user(to)),
        body: Body::parse(body).unwrap(),
        seq: None,
        device: None,
        attachments: Vec::new(),
    }
}

/// A fresh message id at `at` (epoch ms).
pub fn message_id(at: i64) -> MessageId {
    MessageId::generate(at)
}
