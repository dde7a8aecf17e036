//! Push notifications to devices whose app is closed: the platforms, a registered device, what a notification
//! says, and the port that sends them ([`Notifier`]: SNS mobile push on AWS, `aws::sns`; a recorder in tests).
//!
//! The port is object-safe (boxed futures) so that [`crate::service::App`] can hold one without another type
//! parameter: only `device` and the notify consumer use it.

use crate::{
    error::BackendError,
    ids::{GroupId, UserId},
};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

/// A push platform: an SNS platform application each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    Fcm,
    Apns,
    Webpush,
}

impl Platform {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "fcm" => Some(Self::Fcm),
            "apns" => Some(Self::Apns),
            "webpush" => Some(Self::Webpush),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Fcm => "fcm",
            Self::Apns => "apns",
            Self::Webpush => "webpush",
        }
    }
}

/// A platform's device token: 1-1000 printable ASCII characters, no spaces (FCM registration tokens, APNs device
/// tokens and Web Push subscription endpoints all are).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DeviceToken(String);

impl DeviceToken {
    /// DynamoDB sort keys hold at most 1,024 bytes; the token is part of one.
    pub const MAX_BYTES: usize = 1000;

    pub fn parse(s: &str) -> Result<Self, crate::ids::FieldError> {
        Self::try_from(s.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for DeviceToken {
    type Error = crate::ids::FieldError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        if !s.is_empty() && s.len() <= Self::MAX_BYTES && s.bytes().all(|b| b.is_ascii_graphic()) {
            Ok(Self(s))
        } else {
            Err(crate::ids::FieldError::Invalid(
                "1-1000 printable ASCII characters without spaces",
            ))
        }
    }
}

impl From<DeviceToken> for String {
    fn from(t: DeviceToken) -> String {
        t.0
    }
}

/// One registered device of a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub token: DeviceToken,
    pub platform: Platform,
    /// The SNS platform endpoint notifications are published to.
    pub endpoint: String,
    pub created_at: i64,
}

/// The conversation a user is notified about: one peer, or one group. Notifications coalesce per topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Topic {
    Peer(UserId),
    Group(GroupId),
}

impl Topic {
    /// The topic as a storage key: the peer's id, or `g#{group}` (`#` is in no user id, so the two never meet).
    pub fn key(&self) -> String {
        match self {
            Self::Peer(u) => u.to_string(),
            Self::Group(g) => format!("g#{g}"),
        }
    }
}

/// What a notification says: who wrote (or which group) and how many messages, never a body (it may be ciphertext).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// The user notified.
    pub user: UserId,
    pub title: String,
    pub text: String,
    /// The conversation to open: the peer's id, or the group's.
    pub conversation: String,
    /// Set when the conversation is a group.
    pub group: bool,
}

impl Notification {
    /// "alice" / "3 new messages" for `count` messages from `from`.
    pub fn of(user: &UserId, from: &UserId, count: u64) -> Self {
        Self {
            user: user.clone(),
            title: from.to_string(),
            text: Self::count(count),
            conversation: from.to_string(),
            group: false,
        }
    }

    /// "book club" / "3 new messages" for `count` messages in a group.
    pub fn of_group(user: &UserId, group: &GroupId, name: &str, count: u64) -> Self {
        Self {
            user: user.clone(),
            title: name.to_owned(),
            text: Self::count(count),
            conversation: group.to_string(),
            group: true,
        }
    }

    fn count(n: u64) -> String {
        match n {
            0 | 1 => "1 new message".into(),
            n => format!("{n} new messages"),
        }
    }
}

/// How a publish ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    Sent,
    /// The platform reported the token dead (the app was uninstalled): the device should be forgotten.
    Disabled,
}

pub type Res<T> = Result<T, BackendError>;

/// Sends notifications through the platforms this deployment has.
pub trait Notifier: Send + Sync {
    /// Whether this deployment can notify devices of `platform`.
    fn supports(&self, platform: Platform) -> bool;
    /// Registers `token` with the platform; the endpoint to publish to.
    fn create_endpoint<'a>(&'a self, platform: Platform, token: &'a DeviceToken) -> BoxFuture<'a, Res<String>>;
    /// Forgets an endpoint (best effort: a stale one only costs a failed publish).
    fn delete_endpoint<'a>(&'a self, endpoint: &'a str) -> BoxFuture<'a, Res<()>>;
    fn publish<'a>(&'a self, device: &'a Device, n: &'a Notification) -> BoxFuture<'a, Res<Published>>;
}

/// A deployment without push platforms: `device register` is refused, nothing is sent.
#[derive(Debug, Default)]
pub struct NoNotifier;

impl Notifier for NoNotifier {
    fn supports(&self, _: Platform) -> bool {
        false
    }

    fn create_endpoint<'a>(&'a self, _: Platform, _: &'a DeviceToken) -> BoxFuture<'a, Res<String>> {
        Box::pin(async { Err(BackendError::corrupt("notifier", "no push platform is configured")) })
    }

    fn delete_endpoint<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Res<()>> {
        Box::pin(async { Ok(()) })
    }

    fn publish<'a>(&'a self, _: &'a Device, _: &'a Notification) -> BoxFuture<'a, Res<Published>> {
        Box::pin(async { Ok(Published::Sent) })
    }
}
