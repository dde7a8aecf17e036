//! The wire contract (docs/protocol.md): client frames in, replies and pushes out.
//!
//! Client frames are one enum tagged by `action` ([`ClientFrame`]); each action has its own file with its parse.
//! Parsing is by hand over the JSON object rather than derived, so that every refusal names the field and gets the
//! error code the protocol promises (`bad_request`, `unknown_action`, `too_large`). The enum also derives
//! `Serialize`, which is what clients (tests, natter-loadgen) send; a round-trip test keeps both sides equal.

mod ack;
mod attach;
mod change;
mod device;
mod fields;
mod friends;
mod group;
mod history;
mod read;
mod send;
mod server;
mod sync;
mod typing;

pub use ack::{AckFrame, MAX_ACK_IDS, MAX_SEQ};
pub use attach::{AttachFrame, MAX_ATTACHMENT_BYTES, MAX_ATTACHMENTS};
pub use change::{DeleteFrame, EditFrame, Emoji, ReactFrame};
pub use device::DeviceOp;
pub use fields::MAX_CURSOR_BYTES;
pub use friends::FriendsOp;
pub use group::{GroupOp, MAX_CREATE_MEMBERS};
pub use history::{Conversation, HistoryFrame};
pub use read::ReadFrame;
pub use send::{MAX_CLIENT_SEQ, SendFrame, Target};
pub use server::*;
pub use sync::SyncFrame;
pub use typing::{TypingFrame, TypingState};

use crate::ids::FieldError;
use fields::Fields;
use serde::{Deserialize, Serialize};

/// A client's correlation id, echoed on every direct reply: at most 64 characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RequestId(String);

impl RequestId {
    pub const MAX_CHARS: usize = 64;

    pub fn parse(s: &str) -> Result<Self, FieldError> {
        if s.chars().count() <= Self::MAX_CHARS {
            Ok(Self(s.to_owned()))
        } else {
            Err(FieldError::Invalid("a string of at most 64 characters"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One client frame, tagged by `action` (the API Gateway route key).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "camelCase")]
pub enum ClientFrame {
    Send(SendFrame),
    Ack(AckFrame),
    Read(ReadFrame),
    Sync(SyncFrame),
    History(HistoryFrame),
    Heartbeat,
    Friends(FriendsOp),
    Group(GroupOp),
    Typing(TypingFrame),
    Edit(EditFrame),
    Delete(DeleteFrame),
    React(ReactFrame),
    Device(DeviceOp),
    Attach(AttachFrame),
}

impl ClientFrame {
    /// The route key API Gateway selects for this frame.
    pub fn action(&self) -> &'static str {
        match self {
            Self::Send(_) => "send",
            Self::Ack(_) => "ack",
            Self::Read(_) => "read",
            Self::Sync(_) => "sync",
            Self::History(_) => "history",
            Self::Heartbeat => "heartbeat",
            Self::Friends(_) => "friends",
            Self::Group(_) => "group",
            Self::Typing(_) => "typing",
            Self::Edit(_) => "edit",
            Self::Delete(_) => "delete",
            Self::React(_) => "react",
            Self::Device(_) => "device",
            Self::Attach(_) => "attach",
        }
    }

    /// The kind of work the frame asks for, as the metrics name it: the action, and for `send` which kind of
    /// message (one-on-one and group sends cost very different amounts).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Send(SendFrame {
                target: Target::To(_), ..
            }) => "send.direct",
            Self::Send(SendFrame {
                target: Target::Group(_),
                ..
            }) => "send.group",
            other => other.action(),
        }
    }

    /// How the frame is counted against the user's rate limit (see `service::limits`).
    pub fn rate_count(&self) -> RateCount {
        match self {
            Self::Send(_) => RateCount::InItsFirstStep,
            Self::Ack(_) | Self::Read(ReadFrame::Group { .. }) => RateCount::ByProgress,
            Self::Typing(_) | Self::Heartbeat => RateCount::Never,
            _ => RateCount::Before,
        }
    }
}

/// When a frame is counted against the user's rate limit. Counting is one DynamoDB write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateCount {
    /// Before any of its work: most frames.
    Before,
    /// By its own first step, alongside the work that step does (`send`: with its claim and lookup, one round trip
    /// fewer before its ack; `service/send.rs`).
    InItsFirstStep,
    /// After its work, and only when it moved nothing (an ack, a group read: it only moves the caller's own marks
    /// forward, and how far is bounded by what others sent, each counted against its sender).
    ByProgress,
    /// Not at all: the count's write would cost more than the frame's own work, so it would only make a flood of
    /// them dearer (`typing` writes nothing and has its own once-a-second rule; a heartbeat reads last seen and
    /// writes it at most once per 30 minutes). The stage's route throttling bounds their rate.
    Never,
}

/// Every action the protocol defines: the route keys of the WebSocket API besides `$connect`, `$disconnect`
/// and `$default`.
pub const ACTIONS: [&str; 14] = [
    "send",
    "ack",
    "read",
    "sync",
    "history",
    "heartbeat",
    "friends",
    "group",
    "typing",
    "edit",
    "delete",
    "react",
    "device",
    "attach",
];

/// A frame with its optional correlation id, as a client sends it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Request {
    #[serde(rename = "requestId", skip_serializing_if = "Option::is_none")]
    pub request_id: Option<RequestId>,
    #[serde(flatten)]
    pub frame: ClientFrame,
}

impl Request {
    pub fn new(frame: ClientFrame) -> Self {
        Self {
            request_id: None,
            frame,
        }
    }

    pub fn with_request_id(mut self, id: &str) -> Self {
        self.request_id = RequestId::parse(id).ok();
        self
    }

    pub fn to_json(&self) -> String {
        // Serializing plain structs of strings and numbers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A frame the server refuses: the error reply it gets, with what of the frame could be echoed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: String,
    pub request_id: Option<RequestId>,
    pub client_msg_id: Option<crate::ids::ClientMsgId>,
}

impl Refusal {
    /// The error reply the client gets.
    pub fn into_reply(self) -> Reply {
        Reply {
            request_id: self.request_id,
            frame: ServerFrame::Error(ErrorReply {
                code: self.code,
                message: self.message,
                client_msg_id: self.client_msg_id,
            }),
        }
    }
}

/// Why a field of a frame was refused, before the echo fields are attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub code: ErrorCode,
    pub message: String,
}

impl Problem {
    pub(crate) fn bad(message: impl Into<String>) -> Self {
        Self {
            code: ErrorCode::BadRequest,
            message: message.into(),
        }
    }

    pub(crate) fn field(name: &str, e: FieldError) -> Self {
        match e {
            FieldError::Invalid(rule) => Self::bad(format!("`{name}` must be {rule}")),
            FieldError::TooLarge { limit } => Self {
                code: ErrorCode::TooLarge,
                message: format!("`{name}` is larger than {limit} bytes"),
            },
        }
    }
}

/// Parses one text frame. Never panics, whatever the input.
pub fn parse(text: &str) -> Result<Request, Refusal> {
    let refuse = |p: Problem, request_id, client_msg_id| Refusal {
        code: p.code,
        message: p.message,
        request_id,
        client_msg_id,
    };
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| refuse(Problem::bad(format!("the frame is not valid JSON: {e}")), None, None))?;
    let serde_json::Value::Object(map) = value else {
        return Err(refuse(Problem::bad("the frame must be a JSON object"), None, None));
    };
    let f = Fields(&map);
    let request_id = match map.get("requestId") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => {
            Some(RequestId::parse(s).map_err(|e| refuse(Problem::field("requestId", e), None, None))?)
        }
        Some(_) => return Err(refuse(Problem::bad("`requestId` must be a string"), None, None)),
    };
    // Echo a valid clientMsgId on errors so the sender can match the refusal to its message.
    let client_msg_id = map
        .get("clientMsgId")
        .and_then(|v| v.as_str())
        .and_then(|s| crate::ids::ClientMsgId::parse(s).ok());
    let action = match map.get("action") {
        Some(serde_json::Value::String(a)) => a.as_str(),
        Some(_) => {
            return Err(refuse(
                Problem::bad("`action` must be a string"),
                request_id,
                client_msg_id,
            ));
        }
        None => return Err(refuse(Problem::bad("`action` is required"), request_id, client_msg_id)),
    };
    let frame = match action {
        "send" => send::parse(&f).map(ClientFrame::Send),
        "ack" => ack::parse(&f).map(ClientFrame::Ack),
        "read" => read::parse(&f).map(ClientFrame::Read),
        "sync" => sync::parse(&f).map(ClientFrame::Sync),
        "history" => history::parse(&f).map(ClientFrame::History),
        "heartbeat" => Ok(ClientFrame::Heartbeat),
        "friends" => friends::parse(&f).map(ClientFrame::Friends),
        "group" => group::parse(&f).map(ClientFrame::Group),
        "typing" => typing::parse(&f).map(ClientFrame::Typing),
        "edit" => change::parse_edit(&f).map(ClientFrame::Edit),
        "delete" => change::parse_delete(&f).map(ClientFrame::Delete),
        "react" => change::parse_react(&f).map(ClientFrame::React),
        "device" => device::parse(&f).map(ClientFrame::Device),
        "attach" => attach::parse(&f).map(ClientFrame::Attach),
        other => Err(Problem {
            code: ErrorCode::UnknownAction,
            message: format!("unknown action `{}`", other.chars().take(64).collect::<String>()),
        }),
    };
    frame
        .map(|frame| Request {
            request_id: request_id.clone(),
            frame,
        })
        .map_err(|p| refuse(p, request_id, client_msg_id))
}

#[cfg(test)]
mod tests;
