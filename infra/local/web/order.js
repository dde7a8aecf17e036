// order.js: how natter-client.js orders a conversation and finds the gaps in it (docs/protocol.md, "Order").
//
// One-on-one, each sending device numbers its messages to a peer 1, 2, 3, ... (`seq`, with `device`). The server
// stamps each message with its arrival time, and arrival can differ from the order of writing: two sends in
// flight at once, a retry that lands after later messages, two devices of one sender. So a conversation is laid
// out by server time, and then each chain (one sender's device) is put back in its own seq order within the
// places its messages hold: the writing order per device, the server's order between devices and people.
// A chain with 2 and 4 but no 3 has a gap: something written between them has not arrived yet. It stays open
// until 3 comes (by push, sync or history), or until SETTLE_MS after 4 was stored: the sender's client retries a
// send for less than that, so by then 3 was never stored (its send failed for good) and the gap is closed.

/** A gap older than this (after the message that follows it was stored) is given up. */
export const SETTLE_MS = 120_000;

/** Orders two messages by the server: group messages by seq, others by timestamp then messageId. */
export function compareMessages(a, b) {
  if (a.seq != null && b.seq != null && a.group) return a.seq - b.seq;
  if ((a.timestamp ?? Infinity) !== (b.timestamp ?? Infinity)) return (a.timestamp ?? Infinity) - (b.timestamp ?? Infinity);
  return String(a.messageId ?? a.clientMsgId).localeCompare(String(b.messageId ?? b.clientMsgId));
}

/** The chain a one-on-one message belongs to, or null (groups, and messages sent without a seq). */
function chainOf(m) {
  if (m.group || m.seq == null) return null;
  return `${m.from}\u0000${m.device ?? ""}`;
}

/** Lays `messages` out in place: server order, then each chain in its own seq order within its places. */
export function arrange(messages) {
  messages.sort(compareMessages);
  const chains = new Map();
  messages.forEach((m, i) => {
    const key = chainOf(m);
    if (key == null) return;
    if (!chains.has(key)) chains.set(key, []);
    chains.get(key).push(i);
  });
  for (const places of chains.values()) {
    const inSeq = places.map((i) => messages[i]).sort((a, b) => a.seq - b.seq);
    places.forEach((p, k) => (messages[p] = inSeq[k]));
  }
  return messages;
}

/**
 * The open gaps of a conversation's chains from others than `me`: `{after, from, device, missing}` where `after`
 * is the messageId the gap follows and `missing` how many messages are not there.
 */
export function gapsOf(messages, me, now = Date.now()) {
  const chains = new Map();
  for (const m of messages) {
    const key = chainOf(m);
    if (key == null || m.from === me) continue;
    if (!chains.has(key)) chains.set(key, []);
    chains.get(key).push(m);
  }
  const gaps = [];
  for (const chain of chains.values()) {
    chain.sort((a, b) => a.seq - b.seq);
    for (let i = 1; i < chain.length; i++) {
      const [a, b] = [chain[i - 1], chain[i]];
      if (b.seq > a.seq + 1 && now - (b.timestamp ?? now) < SETTLE_MS) {
        gaps.push({ after: a.messageId, from: a.from, device: a.device, missing: b.seq - a.seq - 1 });
      }
    }
  }
  return gaps;
}

/** The next seq this device gives a message to `peer`, kept in localStorage so that it survives a reload. */
export function takeSeq(user, device, peer) {
  const key = `natter:seq:${user}:${device}:${peer}`;
  const store = globalThis.localStorage;
  const next = Number(store?.getItem(key) ?? 1);
  store?.setItem(key, String(next + 1));
  return next;
}

/**
 * This tab's device id: kept in sessionStorage, so a reload keeps it (and its counters) and another tab or browser
 * gets its own (two tabs numbering the same chain would collide).
 */
export function deviceId(user) {
  const key = `natter:device:${user}`;
  const store = globalThis.sessionStorage;
  let id = store?.getItem(key);
  if (!id) {
    const bytes = new Uint8Array(8);
    crypto.getRandomValues(bytes);
    id = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    store?.setItem(key, id);
  }
  return id;
}
