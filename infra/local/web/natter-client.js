// natter-client.js: the client side of natter's protocol (docs/protocol.md) in one small, dependency-free module.
// Copy it into a client; the UI in app.js only renders what it emits.
//
// The client's duties, all here:
// - every request carries a requestId and is matched to its reply; a send that gets no ack within ackTimeoutMs is
//   sent again with the same clientMsgId (the server acks a retry with the same messageId and delivers it once);
// - pushes are deduplicated by messageId (a redelivered queue job may push again);
// - conversations keep their messages ordered: groups by server seq; one-on-one by each sending device's own
//   seq (kept across reloads), between devices by server time, with the gaps still open (order.js);
// - one-on-one messages are acknowledged by id within 100 ms; group messages with one batched `upToSeq` ack per
//   group once it has been quiet for groupAckQuietMs, or once its oldest unacknowledged message is groupAckMaxMs
//   old while it stays busy, and before a close (a group ack only moves where the next sync starts);
// - on (re)connect it pulls every missed message with `sync` (all pages) and acknowledges them;
// - it heartbeats while connected and reconnects with capped, jittered backoff when the connection drops.
//
// Events (EventTarget, each a CustomEvent with `detail`): `status` {state}, `conversations` {list},
// `message` {conversation, message}, `update` {conversation, message} (ack, receipts), `presence`
// {user, status, lastSeen}, `friend` {user, state} (a request arrived, was accepted or withdrawn), `invite`
// {group: {id, name}, by} (an invitation to a group), `typing` {from, to | group, state}, `servererror`
// {code, message, requestId, clientMsgId}. Edits, deletes and reactions of a held message arrive as `update`
// (the message carries `editedAt`, `deleted`, `reactions` {emoji: count} and `myReaction`).

import { arrange, compareMessages, deviceId, gapsOf, takeSeq } from "./order.js";

export { compareMessages };

/** The key of a conversation: "u:<user>" or "g:<group>". */
export function conversationKey(c) {
  return c.group ? `g:${c.group}` : `u:${c.with}`;
}

function newId() {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export class NatterClient extends EventTarget {
  /**
   * @param {object} o
   * @param {string} o.url        the WebSocket API, e.g. ws://127.0.0.1:3001
   * @param {() => Promise<string>} o.token  returns a fresh token for the user
   * @param {string} o.user       the signed-in user
   */
  constructor({
    url,
    token,
    user,
    device,
    ackTimeoutMs = 5000,
    maxSendAttempts = 6,
    groupAckQuietMs = 2000,
    groupAckMaxMs = 30000,
    heartbeatMs = 240000,
  }) {
    super();
    Object.assign(this, { url, token, user, ackTimeoutMs, maxSendAttempts, groupAckQuietMs, groupAckMaxMs, heartbeatMs });
    this.device = device ?? deviceId(user); // numbers this client's one-on-one messages (order.js)
    this.ws = null;
    this.state = "offline";
    this.pending = new Map(); // requestId -> {resolve, timer}
    this.seen = new Set(); // messageIds received or sent
    this.conversations = new Map(); // key -> {key, with?, group?, name?, unread, last, messages: []}
    this.directAcks = [];
    this.groupAcks = new Map(); // group -> {seq: highest received, since: oldest unacked arrival, last: newest}
    this.backoff = 500;
    this.closedByUser = false;
    this.outbox = new Map(); // clientMsgId -> message waiting for its ack
    this.typingSent = new Map(); // conversation key -> when this client last sent a typing start
    // Receipts can overtake the ack of the message they are about: kept until the ack names the message.
    this.deliveredIds = new Set();
    this.readUpTo = new Map(); // peer -> newest timestamp it read
  }

  // ------------------------------------------------------------------ connection

  async connect() {
    this.closedByUser = false;
    clearTimeout(this.reconnectTimer);
    let token;
    try {
      token = await this.token();
    } catch (e) {
      this.#reconnectLater();
      throw e;
    }
    const ws = new WebSocket(`${this.url}/?token=${encodeURIComponent(token)}`);
    this.ws = ws;
    this.#status("connecting");
    ws.onopen = () => {
      this.backoff = 500;
      this.#status("online");
      this.#startTimers();
      this.#afterConnect().catch((e) => this.#error("internal", String(e)));
    };
    ws.onmessage = (e) => this.#onFrame(e.data);
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.#stopTimers();
      for (const [, p] of this.pending) p.resolve(null);
      this.pending.clear();
      this.#status("offline");
      this.#reconnectLater();
    };
  }

  /** Reconnects after a capped, jittered, growing pause (unless the user closed the client). */
  #reconnectLater() {
    if (this.closedByUser) return;
    const wait = Math.min(this.backoff, 15000) * (0.5 + Math.random());
    this.backoff *= 2;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => this.connect().catch(() => {}), wait);
  }

  close() {
    this.#flushAcks(true);
    this.closedByUser = true;
    clearTimeout(this.reconnectTimer);
    this.#stopTimers();
    this.ws?.close();
  }

  #status(state) {
    this.state = state;
    this.dispatchEvent(new CustomEvent("status", { detail: { state } }));
  }

  #startTimers() {
    this.#stopTimers();
    this.ackTimer = setInterval(() => this.#flushAcks(false), 100);
    this.heartbeatTimer = setInterval(() => this.#raw({ action: "heartbeat" }), this.heartbeatMs);
  }

  #stopTimers() {
    clearInterval(this.ackTimer);
    clearInterval(this.heartbeatTimer);
  }

  /** After every (re)connect: pull what was missed, then resend what still waits for an ack. */
  async #afterConnect() {
    await this.syncAll();
    // Every page of the group list (100 groups a page).
    let cursor = null;
    do {
      const page = await this.request(cursor ? { action: "group", op: "list", cursor } : { action: "group", op: "list" });
      for (const g of page?.groups ?? []) {
        const c = this.conversation({ group: g.id });
        c.name = g.name;
        c.unread = g.unread;
      }
      cursor = page?.next ?? null;
    } while (cursor);
    this.#emitConversations();
    for (const m of this.outbox.values()) this.#trySend(m);
  }

  // ------------------------------------------------------------------ requests

  /** Tells the peer (`{to}`) or the group (`{group}`) this user is typing: at most one `start` a second, and a
   *  `stop` only after a `start`. */
  typing(target, state = "start") {
    if (this.state !== "online") return;
    const key = target.group ? `g:${target.group}` : `u:${target.to}`;
    const now = Date.now();
    if (state === "start") {
      if (now - (this.typingSent.get(key) ?? 0) < 1000) return;
      this.typingSent.set(key, now);
    } else {
      if (!this.typingSent.has(key)) return;
      this.typingSent.delete(key);
    }
    this.#raw({ action: "typing", ...target, state });
  }

  #raw(frame) {
    if (this.ws?.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  /** Sends a frame with a fresh requestId; resolves with its direct reply, or null (timeout or disconnect). */
  request(frame, timeoutMs = 10000) {
    const requestId = newId();
    return new Promise((resolve) => {
      if (!this.#raw({ ...frame, requestId })) return resolve(null);
      const timer = setTimeout(() => {
        this.pending.delete(requestId);
        resolve(null);
      }, timeoutMs);
      this.pending.set(requestId, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
      });
    }).then((reply) => {
      if (reply?.type === "error") this.#error(reply.code, reply.message, reply);
      return reply;
    });
  }

  #error(code, message, extra = {}) {
    this.dispatchEvent(new CustomEvent("servererror", { detail: { ...extra, code, message } }));
  }

  // ------------------------------------------------------------------ conversations

  /** The conversation with a user ({with}) or a group ({group}), created empty if new. */
  conversation(c) {
    const key = conversationKey(c);
    let conv = this.conversations.get(key);
    if (!conv) {
      conv = { key, with: c.with, group: c.group, name: c.group ? c.group : c.with, unread: 0, last: null, messages: [] };
      this.conversations.set(key, conv);
    }
    return conv;
  }

  #emitConversations() {
    const list = [...this.conversations.values()].sort(
      (a, b) => (b.last?.timestamp ?? 0) - (a.last?.timestamp ?? 0) || a.key.localeCompare(b.key),
    );
    this.dispatchEvent(new CustomEvent("conversations", { detail: { list } }));
  }

  /** Inserts a message in order, or merges it into the copy already there (same messageId or clientMsgId). */
  #place(conv, m) {
    const i = conv.messages.findIndex(
      (x) => (m.messageId && x.messageId === m.messageId) || (x.from === m.from && x.clientMsgId === m.clientMsgId),
    );
    if (i >= 0) {
      Object.assign(conv.messages[i], m, { status: better(conv.messages[i].status, m.status) });
      this.#arrange(conv);
      return conv.messages[i];
    }
    conv.messages.push(m);
    this.#arrange(conv);
    return m;
  }

  /** Orders the conversation and finds its open gaps (order.js). */
  #arrange(conv) {
    arrange(conv.messages);
    conv.gaps = gapsOf(conv.messages, this.user);
  }

  #received(m, { fromSync = false } = {}) {
    const mine = m.from === this.user;
    if (m.messageId && this.seen.has(m.messageId)) {
      // A repeat: shown already. One that sync returns was not acknowledged yet (history showed it first).
      if (fromSync && !mine && !m.group) this.directAcks.push(m.messageId);
      return;
    }
    if (m.messageId) this.seen.add(m.messageId);
    const conv = this.conversation(m.group ? { group: m.group } : { with: mine ? m.to : m.from });
    if (conv.group && conv.name === conv.group && !conv.naming) {
      // A group this client has not listed yet (added to it since): learn its name.
      conv.naming = true;
      this.request({ action: "group", op: "members", group: conv.group }).then((r) => {
        if (r?.type === "group") conv.name = r.group.name;
        this.#emitConversations();
      });
    }
    const placed = this.#place(conv, { ...m, mine, status: mine ? m.status ?? "sent" : undefined });
    if (!conv.last || (m.timestamp ?? 0) >= (conv.last.timestamp ?? 0)) {
      conv.last = lastOf(m);
    }
    if (!mine) {
      if (!(this.activeKey === conv.key && this.visible)) conv.unread += fromSync ? 0 : 1;
      if (m.group) this.#pendGroupAck(m.group, m.seq ?? 0);
      else this.directAcks.push(m.messageId);
    }
    this.dispatchEvent(new CustomEvent("message", { detail: { conversation: conv, message: placed } }));
    this.#emitConversations();
    if (!mine && this.activeKey === conv.key && this.visible) this.markRead(conv);
  }

  #pendGroupAck(group, seq) {
    const now = Date.now();
    const p = this.groupAcks.get(group) ?? { seq, since: now, last: now };
    this.groupAcks.set(group, { ...p, seq: Math.max(p.seq, seq), last: now });
  }

  /** Direct acks at once; group acks that are due, or all of them with `allGroups`. */
  #flushAcks(allGroups) {
    if (this.ws?.readyState !== WebSocket.OPEN) return;
    while (this.directAcks.length) this.#raw({ action: "ack", messageIds: this.directAcks.splice(0, 100) });
    const now = Date.now();
    for (const [group, p] of this.groupAcks) {
      const due = allGroups || now - p.last >= this.groupAckQuietMs || now - p.since >= this.groupAckMaxMs;
      if (!due) continue;
      this.#raw({ action: "ack", group, upToSeq: p.seq });
      this.groupAcks.delete(group);
    }
  }

  /** Every missed message, all pages; unread counts and previews from the first page. */
  async syncAll() {
    let cursor = null;
    let first = true;
    do {
      const page = await this.request(cursor ? { action: "sync", cursor } : { action: "sync" }, 30000);
      if (!page || page.type !== "sync") return;
      if (first) {
        for (const s of page.conversations ?? []) {
          const conv = this.conversation(s);
          conv.unread = s.unread;
          conv.last = s.last ?? conv.last;
        }
        first = false;
      }
      for (const m of page.messages ?? []) this.#received(m, { fromSync: true });
      cursor = page.next;
    } while (cursor);
    this.#flushAcks(true);
    this.#emitConversations();
  }

  // ------------------------------------------------------------------ sending

  /** Sends a file (a picture) with an optional caption: `attach` signs an upload, the bytes go straight to
   *  storage, then the message names the attachment. The picture shows at once from the file itself. Resolves to
   *  the message, or null if the upload was refused (the error line says why). */
  async sendFile(target, file, caption = "") {
    const up = await this.request({ action: "attach", contentType: file.type || "application/octet-stream", size: file.size });
    if (up?.type !== "upload") return null;
    const put = await fetch(up.url, { method: up.method, headers: up.headers, body: file }).catch((e) => ({ ok: false, statusText: String(e) }));
    if (!put.ok) {
      this.#error("upload", `the upload failed: ${put.status ?? ""} ${put.statusText}`);
      return null;
    }
    const local = { id: up.attachmentId, contentType: file.type, size: file.size, url: URL.createObjectURL(file) };
    return this.send(target, caption, [local]);
  }

  /** Sends `body` to a conversation ({with} or {group}); the message shows at once as pending. */
  send(target, body, attachments = []) {
    const conv = this.conversation(target);
    const m = {
      clientMsgId: newId(),
      from: this.user,
      body,
      ...(attachments.length ? { attachments } : {}),
      mine: true,
      status: "pending",
      timestamp: Date.now(),
      attempts: 0,
      ...(target.group ? { group: target.group } : { to: target.with }),
    };
    if (!target.group) Object.assign(m, { seq: takeSeq(this.user, this.device, target.with), device: this.device });
    this.#place(conv, m);
    this.outbox.set(m.clientMsgId, m);
    this.dispatchEvent(new CustomEvent("message", { detail: { conversation: conv, message: m } }));
    this.#trySend(m);
    return m;
  }

  async #trySend(m) {
    if (m.inFlight) return;
    m.inFlight = true;
    const conv = this.conversation(m.group ? { group: m.group } : { with: m.to });
    while (this.outbox.has(m.clientMsgId) && m.attempts < this.maxSendAttempts && this.state === "online") {
      m.attempts++;
      const frame = { action: "send", clientMsgId: m.clientMsgId, body: m.body };
      if (m.attachments) frame.attachments = m.attachments.map((a) => a.id);
      if (m.group) frame.group = m.group;
      else Object.assign(frame, { to: m.to, seq: m.seq, device: m.device });
      const reply = await this.request(frame, this.ackTimeoutMs);
      if (reply?.type === "ack") {
        this.outbox.delete(m.clientMsgId);
        Object.assign(m, { messageId: reply.messageId, timestamp: reply.timestamp, seq: reply.seq ?? m.seq, status: better(m.status, "sent") });
        // A friend with no live connection: the message waits for their next sync.
        if (reply.recipient) m.recipient = reply.recipient;
        if (this.deliveredIds.delete(m.messageId)) m.status = better(m.status, "delivered");
        if (m.to && m.timestamp <= (this.readUpTo.get(m.to) ?? -1)) m.status = "read";
        this.seen.add(reply.messageId);
        conv.messages.splice(conv.messages.indexOf(m), 1);
        this.#place(conv, m);
        conv.last = lastOf(m);
        this.dispatchEvent(new CustomEvent("update", { detail: { conversation: conv, message: m } }));
        this.#emitConversations();
        break;
      }
      if (reply?.type === "error" && reply.code !== "unavailable" && reply.code !== "rate_limited" && reply.code !== "internal") {
        this.outbox.delete(m.clientMsgId);
        m.status = "failed";
        this.dispatchEvent(new CustomEvent("update", { detail: { conversation: conv, message: m } }));
        break;
      }
      // No ack in time, or a failure worth retrying: back off, then the same clientMsgId again.
      await new Promise((r) => setTimeout(r, Math.min(500 * 2 ** m.attempts, 8000)));
    }
    m.inFlight = false;
    if (this.outbox.has(m.clientMsgId) && m.attempts >= this.maxSendAttempts) {
      m.status = "failed";
      this.dispatchEvent(new CustomEvent("update", { detail: { conversation: conv, message: m } }));
    }
  }

  // ------------------------------------------------------------------ reading

  /** The conversation on screen: its new messages count as read. */
  setActive(key, visible = true) {
    this.activeKey = key;
    this.visible = visible;
    const conv = this.conversations.get(key);
    if (conv && visible) this.markRead(conv);
  }

  markRead(conv) {
    const had = conv.unread;
    conv.unread = 0;
    if (conv.group) {
      const seq = Math.max(0, ...conv.messages.filter((m) => m.seq != null && m.messageId).map((m) => m.seq));
      if (seq > 0) this.#raw({ action: "read", group: conv.group, upToSeq: seq });
    } else {
      // upTo names the newest message shown: the read counts even if the server has not indexed it yet.
      const upTo = Math.max(0, ...conv.messages.filter((m) => !m.mine && m.messageId).map((m) => m.timestamp ?? 0));
      if (upTo > (conv.readUpTo ?? 0)) {
        conv.readUpTo = upTo;
        this.#raw({ action: "read", with: conv.with, upTo });
      } else if (had > 0) {
        this.#raw({ action: "read", with: conv.with });
      }
    }
    this.#emitConversations();
  }

  /** One page of older messages; returns whether there are more. */
  async loadOlder(conv) {
    const frame = conv.group ? { action: "history", group: conv.group } : { action: "history", with: conv.with };
    if (conv.historyNext) frame.before = conv.historyNext;
    else if (conv.historyDone) return false;
    const page = await this.request(frame);
    if (!page || page.type !== "history") return false;
    for (const m of page.messages) {
      if (m.messageId) this.seen.add(m.messageId);
      this.#place(conv, { ...m, mine: m.from === this.user });
    }
    conv.historyNext = page.next;
    conv.historyDone = !page.next;
    this.dispatchEvent(new CustomEvent("update", { detail: { conversation: conv } }));
    return !!page.next;
  }

  // ------------------------------------------------------------------ pushes

  #onFrame(text) {
    let v;
    try {
      v = JSON.parse(text);
    } catch {
      return;
    }
    if (v.requestId && this.pending.has(v.requestId)) {
      const p = this.pending.get(v.requestId);
      this.pending.delete(v.requestId);
      p.resolve(v);
      return;
    }
    switch (v.type) {
      case "message":
        this.#received(v);
        break;
      case "receipt":
        this.#receipt(v);
        break;
      case "presence":
        this.dispatchEvent(new CustomEvent("presence", { detail: v }));
        break;
      case "friend":
        // A request arrived, was accepted, or was withdrawn: the friends list changed.
        this.dispatchEvent(new CustomEvent("friend", { detail: v }));
        break;
      case "typing":
        this.dispatchEvent(new CustomEvent("typing", { detail: v }));
        break;
      case "edit":
      case "delete":
      case "reaction":
        this.#changed(v);
        break;
      case "invite":
        // Someone who is not this user's friend named it in a group: it joins only if it says so.
        this.dispatchEvent(new CustomEvent("invite", { detail: v }));
        break;
      case "error":
        this.#error(v.code, v.message, v);
        break;
      default:
        if (v.message) this.#error("gateway", v.message, v); // e.g. API Gateway's "Too Many Requests"
    }
  }

  // ------------------------------------------------------------------ edits, deletes, reactions

  /** Edits the body of one's own message (within 15 minutes of sending). Resolves to the reply. */
  async edit(m, body) {
    const reply = await this.request({ action: "edit", messageId: m.messageId, body });
    // The connection that edits gets no push of its own edit: show it from the reply (the server's editedAt
    // comes with the next history).
    if (reply?.type === "ok") this.#changed({ type: "edit", messageId: m.messageId, body, editedAt: m.editedAt ?? Date.now() });
    return reply;
  }

  /** Deletes one's own message for everyone (within 48 hours). */
  async deleteForEveryone(m) {
    const reply = await this.request({ action: "delete", messageId: m.messageId });
    if (reply?.type === "ok") this.#changed({ type: "delete", messageId: m.messageId });
    return reply;
  }

  /** Sets this user's one reaction to a message; "" removes it. */
  react(m, emoji) {
    return this.request({ action: "react", messageId: m.messageId, emoji });
  }

  /** The conversation and message with `messageId`, if this client holds it. */
  #find(messageId) {
    for (const conv of this.conversations.values()) {
      const m = conv.messages.find((x) => x.messageId === messageId);
      if (m) return { conv, m };
    }
    return null;
  }

  /** Applies an `edit`, `delete` or `reaction` push. Each can repeat: applying one again changes nothing. */
  #changed(v) {
    const found = this.#find(v.messageId);
    if (!found) return; // not loaded here: history shows it as it is now
    const { conv, m } = found;
    if (v.type === "edit" && !m.deleted && (m.editedAt ?? 0) <= v.editedAt) Object.assign(m, { body: v.body, editedAt: v.editedAt });
    if (v.type === "delete") {
      Object.assign(m, { deleted: true, reactions: undefined, myReaction: undefined, editedAt: undefined });
      delete m.body;
    }
    if (v.type === "reaction") applyReaction(m, v.by, v.emoji, this.user);
    if (conv.last?.messageId === m.messageId) {
      conv.last = lastOf(m);
      this.#emitConversations();
    }
    this.dispatchEvent(new CustomEvent("update", { detail: { conversation: conv, message: m } }));
  }

  #receipt(r) {
    if (r.status === "delivered") for (const id of r.messageIds ?? []) this.deliveredIds.add(id);
    if (r.status === "read") this.readUpTo.set(r.by, Math.max(this.readUpTo.get(r.by) ?? 0, r.upTo ?? 0));
    const conv = this.conversations.get(`u:${r.by}`);
    if (!conv) return;
    for (const m of conv.messages) {
      if (!m.mine || !m.messageId) continue;
      if (r.status === "delivered" && this.deliveredIds.delete(m.messageId)) m.status = better(m.status, "delivered");
      if (r.status === "read" && m.timestamp <= r.upTo) m.status = "read";
    }
    this.dispatchEvent(new CustomEvent("update", { detail: { conversation: conv } }));
  }
}

/**
 * Moves `by`'s reaction on `m` to `emoji` ("" removes): the counts come from history or sync, the reactors from
 * the pushes seen since, so a reactor whose earlier reaction this client never saw is counted from its next one.
 */
export function applyReaction(m, by, emoji, me) {
  m.reactors ??= {};
  const before = by === me ? m.myReaction : m.reactors[by];
  if (before === (emoji || undefined)) return;
  const counts = { ...(m.reactions ?? {}) };
  if (before && counts[before]) {
    counts[before] -= 1;
    if (counts[before] === 0) delete counts[before];
  }
  if (emoji) counts[emoji] = (counts[emoji] ?? 0) + 1;
  m.reactions = Object.keys(counts).length ? counts : undefined;
  if (emoji) m.reactors[by] = emoji;
  else delete m.reactors[by];
  if (by === me) m.myReaction = emoji || undefined;
}

/** A conversation's `last` as sync gives it: the preview, or `deleted` and none. */
function lastOf(m) {
  const { messageId, from, timestamp } = m;
  if (m.deleted) return { messageId, from, timestamp, deleted: true };
  // A picture sent without words is previewed as the server previews it.
  const kind = m.attachments?.[0]?.contentType?.split("/")[0];
  const preview = m.body || !kind ? String(m.body).slice(0, 64) : { image: "📷 Photo", video: "🎥 Video", audio: "🎤 Audio" }[kind] ?? "📎 File";
  return { messageId, from, timestamp, preview };
}

const RANK = { failed: -1, pending: 0, sent: 1, delivered: 2, read: 3 };

/** The further of two statuses (receipts can overtake acks; statuses never go back). */
function better(a, b) {
  if (a == null) return b;
  if (b == null) return a;
  return (RANK[b] ?? 0) > (RANK[a] ?? 0) ? b : a;
}
