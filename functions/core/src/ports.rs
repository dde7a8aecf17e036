//! The small async traits the rules need. `aws` implements them with DynamoDB, SQS and the @connections API;
//! `testing::memory` implements them in memory, and `testing::contract` holds both to the same behaviour. Each
//! trait is what one group of callers needs, no more; [`Store`] is all of the store traits together.

use crate::{
    error::BackendError,
    frames::LastMessage,
    frames::{Emoji, Status},
    ids::{Body, ConnectionId, GroupId, MessageId, UserId},
    jobs::{IndexJob, Job},
    model::{
        Added, Claim, ClaimKey, ConversationPage, Delivered, FoundDirect, FriendRow, FriendState, Group, GroupEntry,
        Invite, Mark, Marked, Member, NewConnection, Opened, Presence, RowChange, Session, StoredMessage, Transition,
    },
    notify::{Device, DeviceToken},
};
use std::{
    collections::{HashMap, HashSet},
    future::Future,
};

pub type Res<T> = Result<T, BackendError>;

/// Every store port: what `DynamoStore` and the in-memory `MemoryStore` implement, and what handlers ask of
/// their app's store.
pub trait Store:
    Directory
    + PresenceStore
    + FriendStore
    + PullStore
    + MessageStore
    + GroupStore
    + InviteStore
    + IndexStore
    + ChangeStore
    + DeviceStore
    + FrameCounter
{
}

impl<T> Store for T where
    T: Directory
        + PresenceStore
        + FriendStore
        + PullStore
        + MessageStore
        + GroupStore
        + InviteStore
        + IndexStore
        + ChangeStore
        + DeviceStore
        + FrameCounter
{
}

/// Users: registration and lookup.
pub trait Directory: Send + Sync {
    /// Registers the user on first sight (joined_at); later calls change nothing.
    fn register(&self, user: &UserId, now: i64) -> impl Future<Output = Res<()>> + Send;

    /// The users among `users` that exist, each with its presence (empty if it has none), plus the presence of
    /// `known` (users known to exist, such as the caller: their existence is not read again). One read for
    /// "does the recipient exist" and "where are the participants connected".
    fn lookup(&self, users: &[UserId], known: &[UserId])
    -> impl Future<Output = Res<HashMap<UserId, Presence>>> + Send;

    /// The users among `users` that exist (their Users rows alone, read strongly: a user who connected a moment
    /// ago is found).
    fn existing(&self, users: &[UserId]) -> impl Future<Output = Res<std::collections::HashSet<UserId>>> + Send;

    /// Whether `user` exists, read strongly (a friend request to someone who connected a moment ago finds them).
    fn exists(&self, user: &UserId) -> impl Future<Output = Res<bool>> + Send;
}

/// Connections and presence.
pub trait PresenceStore: Send + Sync {
    /// Records a connection (registry item with TTL) and adds it to the user's presence, unless the user holds
    /// `max_live` live connections already (expired ones do not count; 0: no limit). Atomic: concurrent opens
    /// never take the user past the limit.
    fn open(&self, connection: &NewConnection, max_live: usize) -> impl Future<Output = Res<Opened>> + Send;

    /// Removes a connection from the registry and the user's presence, recording last_seen.
    fn close(&self, user: &UserId, connection: &ConnectionId, now: i64)
    -> impl Future<Output = Res<Transition>> + Send;

    /// Like `close`, for a connection a push found gone (410), but only if its recorded expiry is below
    /// `max_expiry`: a connection still inside `$connect` answers 410 too, and must stay.
    fn close_gone(
        &self,
        user: &UserId,
        connection: &ConnectionId,
        now: i64,
        max_expiry: i64,
    ) -> impl Future<Output = Res<Transition>> + Send;

    /// Presence of the given users; users without a presence item are left out. May lag the last connect or
    /// disconnect by a moment (an eventually consistent read).
    fn presence(&self, users: &[UserId]) -> impl Future<Output = Res<HashMap<UserId, Presence>>> + Send;

    /// As [`PresenceStore::presence`], seeing every connect and disconnect acknowledged before it (strongly
    /// consistent, twice the price): for a decision a connection opened an instant ago must not miss.
    fn presence_latest(&self, users: &[UserId]) -> impl Future<Output = Res<HashMap<UserId, Presence>>> + Send;

    /// A heartbeat: the user was seen now.
    fn touch(&self, user: &UserId, now: i64) -> impl Future<Output = Res<()>> + Send;

    /// Records the status last pushed to the user's friends (and clears `exposed`).
    fn set_announced(&self, user: &UserId, status: Status) -> impl Future<Output = Res<()>> + Send;

    /// Records that a `friends` reply showed the user's status before it was announced.
    fn mark_exposed(&self, user: &UserId) -> impl Future<Output = Res<()>> + Send;

    /// Records whether the user has a device registered ([`Presence::devices`]). `false` is recorded only while
    /// nothing is (a registration racing a notification that found none wins); `true` always. A user with no
    /// presence item (never connected) gets none.
    fn mark_devices(&self, user: &UserId, devices: bool) -> impl Future<Output = Res<()>> + Send;
}

/// A page of a user's groups, each with the user's membership, and the last group id read when more may follow.
pub type GroupsPage = (Vec<(Group, Member)>, Option<GroupId>);

/// Friendships, requests and blocks: one row per direction, each as its owner sees the other.
pub trait FriendStore: Send + Sync {
    /// `a`'s row about `b` and `b`'s row about `a`, read strongly.
    fn relation(
        &self,
        a: &UserId,
        b: &UserId,
    ) -> impl Future<Output = Res<(Option<FriendRow>, Option<FriendRow>)>> + Send;
    /// Changes `a`'s row about `b` and `b`'s row about `a`: both or neither.
    fn set_relation(
        &self,
        a: &UserId,
        b: &UserId,
        a_row: RowChange,
        b_row: RowChange,
        now: i64,
    ) -> impl Future<Output = Res<()>> + Send;
    /// `owner`'s standing toward `other` (friend, blocked, ...), if any (read strongly: a block holds from the
    /// moment it is answered).
    fn standing(&self, owner: &UserId, other: &UserId) -> impl Future<Output = Res<Option<FriendState>>> + Send;
    /// Each owner's standing toward `other`, for the owners that have one (read strongly).
    fn standings(
        &self,
        owners: &[UserId],
        other: &UserId,
    ) -> impl Future<Output = Res<HashMap<UserId, FriendState>>> + Send;
    /// Every row of the user (friends, requests both ways, blocks), in user id order.
    fn friends_of(&self, user: &UserId) -> impl Future<Output = Res<Vec<FriendRow>>> + Send;
}

/// The reads behind `sync` and `history`.
pub trait PullStore: Send + Sync {
    /// The user's one-on-one conversations, most recently active first, at most `limit`.
    fn sessions(&self, user: &UserId, limit: usize) -> impl Future<Output = Res<Vec<Session>>> + Send;

    /// One session's marks and newest message, if the conversation exists; `unread` is 0 (counting it costs a
    /// query, and only `sessions` shows it).
    fn session(&self, user: &UserId, peer: &UserId) -> impl Future<Output = Res<Option<Session>>> + Send;

    /// Unacknowledged one-on-one messages to `user` after `after`, oldest first; `true` if there may be more.
    fn inbox(
        &self,
        user: &UserId,
        after: Option<&MessageId>,
        limit: usize,
    ) -> impl Future<Output = Res<(Vec<StoredMessage>, bool)>> + Send;

    /// Of `ids` (messages to `recipient`, and maybe others), those `recipient` has not acknowledged (read
    /// strongly): what history shows as sent rather than delivered.
    fn undelivered(
        &self,
        recipient: &UserId,
        ids: &[MessageId],
    ) -> impl Future<Output = Res<HashSet<MessageId>>> + Send;

    /// A group's history between two sequence numbers (`after` exclusive, `up_to` inclusive), oldest first.
    fn group_entries(
        &self,
        group: &GroupId,
        after: u64,
        up_to: u64,
        limit: usize,
    ) -> impl Future<Output = Res<Vec<GroupEntry>>> + Send;

    /// A group's history before `before` (exclusive), newest first, never at or below `floor`.
    fn group_entries_before(
        &self,
        group: &GroupId,
        before: u64,
        floor: u64,
        limit: usize,
    ) -> impl Future<Output = Res<Vec<GroupEntry>>> + Send;

    /// A page of `owner`'s conversation with `peer`, newest first, before `before` (a message id) if given.
    fn conversation(
        &self,
        owner: &UserId,
        peer: &UserId,
        before: Option<&MessageId>,
        limit: usize,
    ) -> impl Future<Output = Res<ConversationPage>> + Send;

    /// Messages by id (their keys follow from the ids).
    fn messages(&self, ids: &[MessageId]) -> impl Future<Output = Res<HashMap<MessageId, StoredMessage>>> + Send;

    /// `user`'s memberships among `groups` (those it is not a member of are left out).
    fn memberships(
        &self,
        user: &UserId,
        groups: &[GroupId],
    ) -> impl Future<Output = Res<HashMap<GroupId, Member>>> + Send;
}

/// Idempotency claims and messages.
pub trait MessageStore: Send + Sync {
    /// Claims `key` for `fresh` unless it is claimed already. `None`: this attempt won; `Some`: the existing claim.
    fn claim(&self, key: &ClaimKey, fresh: &Claim, expires_at: i64) -> impl Future<Output = Res<Option<Claim>>> + Send;

    /// The current claim, read consistently.
    fn read_claim(&self, key: &ClaimKey) -> impl Future<Output = Res<Option<Claim>>> + Send;

    /// Takes over an unfinished claim whose lease ran out, if nobody changed it since `seen`.
    fn take_over(&self, key: &ClaimKey, seen: &Claim, lease_until: i64) -> impl Future<Output = Res<bool>> + Send;

    /// Ends this attempt's lease early so a retry can resume at once (after a failure).
    fn release(&self, key: &ClaimKey, lease_until: i64) -> impl Future<Output = Res<()>> + Send;

    /// Drops a claim that led to no message (the send was refused).
    fn forget(&self, key: &ClaimKey, claim: &Claim) -> impl Future<Output = Res<()>> + Send;

    /// Stores a message unless it exists; returns the existing one if it does (the first attempt wins). A
    /// one-on-one message also enters its recipient's mailbox, unless it was there before (pending or
    /// acknowledged): when this fails, the message may be stored all the same.
    fn put_message(&self, message: &StoredMessage) -> impl Future<Output = Res<Option<StoredMessage>>> + Send;

    /// The stored one-on-one message `id` to `to` (read strongly), for a retry of its send that found the claim.
    /// If the first attempt stored the message but not its mailbox entry (`put_message` can half-fail), the
    /// entry is put now, unless the message was in the mailbox before (pending, or acknowledged within the
    /// claim's lifetime); `put_back` says whether this call put it (of concurrent calls, one does).
    fn stored_direct(&self, id: &MessageId, to: &UserId) -> impl Future<Output = Res<Option<FoundDirect>>> + Send;

    /// A stored message, read consistently.
    fn get_message(&self, id: &MessageId) -> impl Future<Output = Res<Option<StoredMessage>>> + Send;

    /// Marks one-on-one messages addressed to `acker` delivered and takes them out of its mailbox. Returns those
    /// that were addressed to `acker` (acked now or before); others are ignored. A message this call delivered
    /// carries `delivered_at == now`; one delivered before keeps its first time (the ack's rate-limit count
    /// tells the two apart by it).
    fn mark_delivered(
        &self,
        acker: &UserId,
        ids: &[MessageId],
        now: i64,
    ) -> impl Future<Output = Res<Vec<Delivered>>> + Send;
}

/// Changes to a stored message after it was sent (edit, delete for everyone, reactions) and the conversation
/// previews that show it. Each returns the message as it is after the call (`None`: there is no such message), so
/// the rules see what won when two changes raced.
pub trait ChangeStore: Send + Sync {
    /// Replaces the body, unless the message was deleted or an edit of `at` or later was written.
    fn edit_message(
        &self,
        id: &MessageId,
        body: &Body,
        at: i64,
    ) -> impl Future<Output = Res<Option<StoredMessage>>> + Send;

    /// Removes the body, its edit mark and the reactions, for good.
    fn delete_message(&self, id: &MessageId) -> impl Future<Output = Res<Option<StoredMessage>>> + Send;

    /// Sets (`Some`) or removes `user`'s one reaction, unless the message was deleted, or `max` others reacted
    /// already and `user` had not. `seen_none`: the caller's read of the message showed no reaction (a hint for
    /// the cheaper first write; any answer is right either way).
    fn react(
        &self,
        id: &MessageId,
        user: &UserId,
        emoji: Option<&Emoji>,
        max: usize,
        seen_none: bool,
    ) -> impl Future<Output = Res<Option<StoredMessage>>> + Send;

    /// Makes every preview that shows `message` (its conversation's sessions, or its group) show it as it is
    /// now: the edited body, or nothing once deleted. A preview of another message, or of a later edit, stays.
    fn follow_previews(&self, message: &StoredMessage) -> impl Future<Output = Res<()>> + Send;
}

/// Groups, their members and their history.
pub trait GroupStore: Send + Sync {
    /// Creates a group with its members (the owner among them). Up to 99 members it is one transaction; beyond,
    /// the members are written first and the group item last, so a failure leaves no visible group.
    fn create_group(&self, group: &Group, members: &[Member]) -> impl Future<Output = Res<()>> + Send;

    /// The group and `user`'s membership, in one read.
    fn membership(
        &self,
        group: &GroupId,
        user: &UserId,
    ) -> impl Future<Output = Res<(Option<Group>, Option<Member>)>> + Send;

    /// Every member with its marks, in user id order.
    fn members(&self, group: &GroupId) -> impl Future<Output = Res<Vec<Member>>> + Send;

    /// The ids of the members who joined before the message of sequence `seq`: whom fan-out pushes it to (a
    /// member added since sees nothing from before it joined).
    fn recipients(&self, group: &GroupId, seq: u64) -> impl Future<Output = Res<Vec<UserId>>> + Send;

    /// Adds a member and counts it on the group, atomically; at most `max_members`.
    fn add_member(&self, group: &GroupId, member: &Member, max_members: u64)
    -> impl Future<Output = Res<Added>> + Send;

    /// Removes a member and uncounts it; `false` if it was not a member.
    fn remove_member(&self, group: &GroupId, user: &UserId) -> impl Future<Output = Res<bool>> + Send;

    /// Hands ownership from `from` to `to`, if `from` still owns the group.
    fn transfer(&self, group: &GroupId, from: &UserId, to: &UserId) -> impl Future<Output = Res<bool>> + Send;

    fn delete_group(&self, group: &GroupId) -> impl Future<Output = Res<()>> + Send;

    /// The groups `user` belongs to, each with the user's membership.
    fn groups_of(&self, user: &UserId) -> impl Future<Output = Res<Vec<(Group, Member)>>> + Send;

    /// At most `limit` of the groups `user` belongs to, in group id order, after `after`; and the last group id
    /// read when more may follow (a page can hold fewer than `limit`: groups that ended are left out).
    fn groups_page(
        &self,
        user: &UserId,
        after: Option<&GroupId>,
        limit: usize,
    ) -> impl Future<Output = Res<GroupsPage>> + Send;

    /// Takes the group's next sequence number (an atomic `ADD`) and makes `last` its preview. `None`: no group.
    fn next_seq(&self, group: &GroupId, last: &LastMessage) -> impl Future<Output = Res<Option<u64>>> + Send;

    /// How many groups `user` belongs to, counting no further than `cap`.
    fn group_count(&self, user: &UserId, cap: u64) -> impl Future<Output = Res<u64>> + Send;

    /// Writes a group message's GroupHistory row.
    fn record_group_message(&self, message: &StoredMessage) -> impl Future<Output = Res<()>> + Send;

    /// The id of the message the group's history holds at `seq`, read strongly. A group send writes that row
    /// last, so a retry reads it as the send's done mark.
    fn recorded_at(&self, group: &GroupId, seq: u64) -> impl Future<Output = Res<Option<MessageId>>> + Send;

    /// Moves a member's mark forward to `seq` (never backwards).
    fn mark(&self, group: &GroupId, user: &UserId, mark: Mark, seq: u64) -> impl Future<Output = Res<Marked>> + Send;
}

/// Invitations to groups, held per invited user.
pub trait InviteStore: Send + Sync {
    /// Records (or renews) an invitation; it lapses at `expires_at` (epoch seconds).
    fn invite(&self, invite: &Invite, expires_at: i64) -> impl Future<Output = Res<()>> + Send;

    /// `user`'s invitation to `group`, if it holds one among its newest `keep` (older ones have lapsed).
    fn invitation(
        &self,
        user: &UserId,
        group: &GroupId,
        keep: usize,
    ) -> impl Future<Output = Res<Option<Invite>>> + Send;

    /// `user`'s newest invitations, newest first, at most `limit`.
    fn invites(&self, user: &UserId, limit: usize) -> impl Future<Output = Res<Vec<Invite>>> + Send;

    /// Forgets `user`'s invitation to `group` (joined, declined, or the group is gone); nothing if none.
    fn drop_invite(&self, user: &UserId, group: &GroupId) -> impl Future<Output = Res<()>> + Send;
}

/// The history index and conversation sessions.
pub trait IndexStore: Send + Sync {
    /// Indexes a one-on-one message for both participants and updates both sessions, with the same effect
    /// however often it is called: the message counts as unread for the recipient (unless it already read past
    /// it), preview and time of the newest message for both. [`Indexed::ReadAhead`] when the recipient had read
    /// past the message before it was first indexed (its read receipt is still owed to the sender).
    fn index_direct(&self, job: &IndexJob, expires_at: Option<i64>) -> impl Future<Output = Res<Indexed>> + Send;

    /// Whether the recipient's index row of the job's message exists (a strongly consistent read): its index job
    /// was queued and has run, at least in part; SQS redelivers it until the rest is done.
    fn indexed(&self, job: &IndexJob) -> impl Future<Output = Res<bool>> + Send;

    /// Moves `reader`'s read mark for `peer` to `up_to` (or, with `None`, to the newest message received) and
    /// zeroes unread. Returns the newest message received from `peer` that is now read and was not before (the
    /// read receipt's `upTo`), if any. A mark ahead of indexing leaves nothing up to it to count (and the history
    /// consumer owes the receipt); a conversation the reader does not have shows nowhere: at most a hidden mark that
    /// lapses at `pending_expires_at` (epoch seconds) unless a message from `peer` is indexed first.
    fn read_direct(
        &self,
        reader: &UserId,
        peer: &UserId,
        up_to: Option<i64>,
        pending_expires_at: i64,
    ) -> impl Future<Output = Res<Option<i64>>> + Send;
}

/// What indexing one message for its recipient found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Indexed {
    /// Indexed now (and unread unless read) or before.
    Done,
    /// Indexed now, not counted: the recipient had read past it already.
    ReadAhead,
}

/// The outcome of one post to a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Posted {
    Delivered,
    /// 410: the connection is gone; the caller removes it.
    Gone,
}

/// Posts frames to WebSocket connections (API Gateway's @connections API).
pub trait Pusher: Send + Sync {
    fn post(&self, connection: &ConnectionId, frame: &str) -> impl Future<Output = Res<Posted>> + Send;
}

/// Queues jobs for the asynchronous consumers.
pub trait JobQueue: Send + Sync {
    fn enqueue(&self, job: &Job) -> impl Future<Output = Res<()>> + Send;

    /// Queues several jobs of one queue (SQS takes 10 per call).
    fn enqueue_all(&self, jobs: &[Job]) -> impl Future<Output = Res<()>> + Send;
}

/// Where a user's notifications about one conversation stand: when the last went out and how many messages
/// came since.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NotifyState {
    pub last_at: Option<i64>,
    pub pending: u64,
    /// A follow-up is queued for the end of the current minute.
    pub scheduled: bool,
}

/// Registered devices and the coalescing of notifications, per user (the Devices table).
pub trait DeviceStore: Send + Sync {
    /// The user's devices, read strongly (a device registered a moment ago is notified).
    fn devices(&self, user: &UserId) -> impl Future<Output = Res<Vec<Device>>> + Send;
    /// Registers (or re-registers) a device.
    fn put_device(&self, user: &UserId, device: &Device) -> impl Future<Output = Res<()>> + Send;
    /// Forgets a device; the one forgotten, if it was there.
    fn remove_device(&self, user: &UserId, token: &DeviceToken) -> impl Future<Output = Res<Option<Device>>> + Send;
    /// Counts `messages` more about `topic` waiting to be notified (0: only reads); the state after.
    fn note_message(
        &self,
        user: &UserId,
        topic: &crate::notify::Topic,
        messages: u64,
    ) -> impl Future<Output = Res<NotifyState>> + Send;
    /// Takes the pending count for a notification at `now`, if the last one is still the one `seen` (so two
    /// consumers never both notify); the count taken.
    fn take_pending(
        &self,
        user: &UserId,
        topic: &crate::notify::Topic,
        seen: Option<i64>,
        now: i64,
    ) -> impl Future<Output = Res<Option<u64>>> + Send;
    /// Marks a follow-up queued, unless one is; whether this call marked it.
    fn schedule_follow_up(&self, user: &UserId, topic: &crate::notify::Topic)
    -> impl Future<Output = Res<bool>> + Send;
}

/// Frames per user and window, over all the user's connections: the rate limit.
pub trait FrameCounter: Send + Sync {
    /// Counts one more frame of `user` in `window` (a window number) and returns the count so far; the counter
    /// expires at `expires_at` (epoch seconds).
    fn count_frame(&self, user: &UserId, window: i64, expires_at: i64) -> impl Future<Output = Res<u64>> + Send;
    /// Counts one group created by `user` in clock hour `hour`; the count so far, this one included.
    fn count_group_create(&self, user: &UserId, hour: i64, expires_at: i64) -> impl Future<Output = Res<u64>> + Send;
    /// Adds `bytes` of attachments announced by `user` on day `day` (days since the epoch); the total so far.
    fn count_upload_bytes(
        &self,
        user: &UserId,
        day: i64,
        bytes: u64,
        expires_at: i64,
    ) -> impl Future<Output = Res<u64>> + Send;
}
