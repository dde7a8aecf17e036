// The reference web client's UI: renders what natter-client.js emits. The protocol's duties live there.
import { NatterClient, conversationKey } from "/_natter/web/natter-client.js";

const $ = (sel) => document.querySelector(sel);
const wsUrl = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}`;
let client = null;
let active = null; // the open conversation's key
const friends = new Map(); // user -> {state, status, lastSeen}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v != null) e.setAttribute(k, v);
  }
  e.append(...children.filter((c) => c != null));
  return e;
}

function time(ts) {
  if (!ts) return "";
  const d = new Date(ts);
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function showError(text) {
  const line = $("#error-line");
  line.textContent = text;
  line.hidden = !text;
}

async function fetchToken(user) {
  const r = await fetch(`/_natter/token?user=${encodeURIComponent(user)}`);
  const body = await r.json();
  if (!r.ok) throw new Error(body.message ?? `token: HTTP ${r.status}`);
  return body.token;
}

async function signIn(user) {
  await fetchToken(user); // fail early on a bad user id
  sessionStorage.setItem("natter.user", user);
  $("#signin").hidden = true;
  $("#app").hidden = false;
  $("#me").textContent = user;
  client = new NatterClient({ url: wsUrl, user, token: () => fetchToken(user) });
  window.natter = client; // for the browser console (and the browser test)
  client.addEventListener("status", (e) => {
    $("#conn").textContent = e.detail.state;
    $("#conn").dataset.state = e.detail.state;
    if (e.detail.state === "online") {
      refreshFriends();
      refreshInvites();
    }
  });
  client.addEventListener("conversations", (e) => renderConversations(e.detail.list));
  client.addEventListener("message", (e) => {
    if (e.detail.conversation.key !== active) return;
    if (!e.detail.message.mine) $("#typing").hidden = true;
    renderMessages();
  });
  client.addEventListener("update", (e) => {
    if (!e.detail.conversation || e.detail.conversation.key === active) renderMessages();
  });
  client.addEventListener("presence", (e) => {
    const f = friends.get(e.detail.user);
    if (f?.state !== "friend") return;
    friends.set(e.detail.user, { ...f, status: e.detail.status, lastSeen: e.detail.lastSeen });
    renderFriends();
  });
  client.addEventListener("friend", () => refreshFriends());
  client.addEventListener("invite", () => refreshInvites());
  client.addEventListener("typing", (e) => showTyping(e.detail));
  client.addEventListener("servererror", (e) => {
    const d = e.detail;
    showError(`${d.code}: ${d.message}${d.clientMsgId ? ` (message ${d.clientMsgId})` : ""}`);
  });
  document.addEventListener("visibilitychange", () => client.setActive(active, !document.hidden));
  await client.connect();
}

async function refreshFriends() {
  showFriends(await client.request({ action: "friends", op: "list" }));
}

// A friends reply (every op answers the whole list) replaces what is shown.
function showFriends(r) {
  if (r?.type !== "friends") return false;
  friends.clear();
  for (const f of r.friends) friends.set(f.user, { state: f.state, status: f.status, lastSeen: f.lastSeen });
  renderFriends();
  return true;
}

async function friendsOp(op, user) {
  showFriends(await client.request({ action: "friends", op, user }));
}

function button(label, op, user) {
  return el("button", { class: op, onclick: (e) => { e.stopPropagation(); friendsOp(op, user); } }, label);
}

const STATE_TEXT = { requested: "request sent", incoming: "wants to be friends", blocked: "blocked" };

function renderFriends() {
  const list = $("#friends");
  list.replaceChildren(
    ...[...friends.entries()].map(([user, f]) => {
      const seen = f.state !== "friend" ? STATE_TEXT[f.state]
        : f.status === "online" ? "online" : f.lastSeen ? `last seen ${time(f.lastSeen)}` : "offline";
      const actions = f.state === "incoming" ? [button("Accept", "add", user), button("Decline", "remove", user), button("Block", "block", user)]
        : f.state === "blocked" ? [button("Unblock", "unblock", user)]
        : f.state === "requested" ? [button("Cancel", "remove", user)]
        : [button("Block", "block", user)];
      return el(
        "li",
        { "data-user": user, "data-state": f.state, "data-status": f.status ?? null, onclick: () => f.state === "friend" && open({ with: user }) },
        el("span", { class: `dot ${f.status ?? "none"}`, title: f.status ?? f.state }),
        el("span", { class: "name" }, user),
        el("span", { class: "seen" }, seen),
        el("span", { class: "actions" }, ...actions),
      );
    }),
  );
}

// Invitations to groups: each with Join and Decline. Both answer with what to show next.
async function refreshInvites() {
  showInvites(await client.request({ action: "group", op: "invites" }));
}

function showInvites(r) {
  if (r?.type !== "invites") return;
  $("#invites").replaceChildren(
    ...r.invites.map((i) =>
      el(
        "li",
        { "data-group": i.group.id },
        el("span", { class: "name" }, `# ${i.group.name}`),
        el("span", { class: "seen" }, `from ${i.by}`),
        el(
          "span",
          { class: "actions" },
          el("button", { class: "join", onclick: () => joinGroup(i.group) }, "Join"),
          el("button", { class: "decline", onclick: async () => showInvites(await client.request({ action: "group", op: "decline", group: i.group.id })) }, "Decline"),
        ),
      ),
    ),
  );
  $("#invites-title").hidden = r.invites.length === 0;
}

async function joinGroup(group) {
  const r = await client.request({ action: "group", op: "join", group: group.id });
  if (r?.type === "group") {
    client.conversation({ group: r.group.id }).name = r.group.name;
    open({ group: r.group.id });
  }
  refreshInvites();
}

// "alice is typing...": for the open conversation, until a stop, a message from them, or 4 s of silence.
let typingTimer = null;
function showTyping(t) {
  const key = t.group ? `g:${t.group}` : `u:${t.from}`;
  if (key !== active) return;
  clearTimeout(typingTimer);
  const line = $("#typing");
  line.textContent = t.state === "start" ? `${t.from} is typing...` : "";
  line.hidden = t.state !== "start";
  if (t.state === "start") typingTimer = setTimeout(() => (line.hidden = true), 4000);
}

function activeTarget() {
  if (!active) return null;
  return active.startsWith("g:") ? { group: active.slice(2) } : { to: active.slice(2) };
}

function renderConversations(list) {
  $("#conversations").replaceChildren(
    ...list.map((c) =>
      el(
        "li",
        { "data-key": c.key, class: c.key === active ? "active" : "", onclick: () => open(c.group ? { group: c.group } : { with: c.with }) },
        el("span", { class: "name" }, c.group ? `# ${c.name}` : c.with),
        c.unread > 0 ? el("span", { class: "unread" }, String(c.unread)) : null,
        el("span", { class: "preview" }, c.last ? `${c.last.from === client.user ? "you: " : ""}${c.last.preview}` : ""),
      ),
    ),
  );
}

const TICKS = { pending: "🕓", sent: "✓", delivered: "✓✓", read: "✓✓", failed: "⚠" };

function renderMessages() {
  const conv = client.conversations.get(active);
  if (!conv) return;
  const box = $("#messages");
  const atBottom = box.scrollTop + box.clientHeight >= box.scrollHeight - 20;
  // A gap: the sender's device wrote a message between two shown here that has not arrived yet.
  const gapAfter = new Map((conv.gaps ?? []).map((g) => [g.after, g]));
  const gapLine = (g) =>
    el("li", { class: "gap", "data-from": g.from }, `${g.missing} message${g.missing > 1 ? "s" : ""} from ${g.from} on the way...`);
  box.replaceChildren(
    ...conv.messages.flatMap((m) => [
      el(
        "li",
        { class: m.mine ? "mine" : "theirs", "data-status": m.mine ? m.status : null, "data-message-id": m.messageId },
        conv.group && !m.mine ? el("span", { class: "from" }, m.from) : null,
        m.deleted ? el("span", { class: "body deleted" }, "message deleted") : el("span", { class: "body" }, m.body),
        m.deleted ? null : attachmentsOf(m),
        el(
          "span",
          { class: "meta" },
          time(m.timestamp),
          m.editedAt && !m.deleted ? el("span", { class: "edited" }, " (edited)") : null,
          m.mine ? el("span", { class: `tick ${m.status}` }, TICKS[m.status] ?? "") : null,
        ),
        m.reactions
          ? el(
              "span",
              { class: "reactions" },
              ...Object.entries(m.reactions).map(([e, n]) => el("span", { class: e === m.myReaction ? "reaction mine" : "reaction" }, `${e} ${n}`)),
            )
          : null,
        m.messageId && !m.deleted ? actions(m) : null,
        m.mine && m.recipient && m.status !== "delivered" && m.status !== "read"
          ? el("span", { class: "offline-note" }, `delivered when ${m.to} is back${m.recipient.lastSeen ? `, last seen ${time(m.recipient.lastSeen)}` : ""}`)
          : null,
      ),
      gapAfter.has(m.messageId) ? gapLine(gapAfter.get(m.messageId)) : null,
    ]).filter(Boolean),
  );
  if (atBottom) box.scrollTop = box.scrollHeight;
  $("#older").hidden = conv.historyDone === true;
}

// Pictures inline, other files as a link with their size. The URLs are short-lived: history gives fresh ones.
function attachmentsOf(m) {
  if (!m.attachments?.length) return null;
  return el(
    "span",
    { class: "attachments" },
    ...m.attachments.map((a) =>
      a.contentType?.startsWith("image/")
        ? el("img", { class: "attachment", src: a.url, alt: "picture", "data-attachment-id": a.id })
        : el("a", { class: "attachment", href: a.url, target: "_blank", "data-attachment-id": a.id }, `📎 ${a.contentType} (${Math.ceil(a.size / 1024)} KB)`),
    ),
  );
}

// Edit and delete for one's own messages, a 👍 for anyone's (pressed again, it is taken back). A refusal (too
// late to edit, say) shows on the error line like every error reply.
let editing = null;
function actions(m) {
  const react = () => client.react(m, m.myReaction === "👍" ? "" : "👍");
  return el(
    "span",
    { class: "actions" },
    el("button", { class: "react", title: "react", onclick: react }, "👍"),
    m.mine
      ? el("button", { class: "edit", title: "edit", onclick: () => {
          editing = m;
          $("#body").value = m.body;
          $("#composer").dataset.editing = "true";
          $("#body").focus();
        } }, "edit")
      : null,
    m.mine ? el("button", { class: "delete", title: "delete for everyone", onclick: () => client.deleteForEveryone(m) }, "delete") : null,
  );
}

async function open(target) {
  const key = conversationKey(target);
  active = key;
  showError("");
  $("#chat").hidden = false;
  const conv = client.conversations.get(key);
  $("#chat-title").textContent = target.group ? `# ${conv?.name ?? target.group}` : target.with;
  client.setActive(key, !document.hidden);
  const c = client.conversation(target);
  if (!c.historyNext && !c.historyDone) await client.loadOlder(c);
  renderMessages();
  renderConversations([...client.conversations.values()]);
  $("#body").focus();
}

$("#signin-form").addEventListener("submit", (e) => {
  e.preventDefault();
  signIn($("#user").value.trim()).catch((err) => showError(String(err.message ?? err)));
});

// Typing: a start while keys come (the client sends at most one a second), a stop when the message goes.
$("#body").addEventListener("input", () => {
  const target = activeTarget();
  if (target && $("#body").value) client.typing(target, "start");
});

// A picture goes with what is typed as its caption.
$("#picture").addEventListener("change", async () => {
  const file = $("#picture").files[0];
  const target = activeTarget();
  $("#picture").value = "";
  if (!file || !target) return;
  const caption = $("#body").value;
  $("#body").value = "";
  await client.sendFile(target.group ? { group: target.group } : { with: target.to }, file, caption);
  renderMessages();
});

$("#composer").addEventListener("submit", (e) => {
  e.preventDefault();
  const body = $("#body").value;
  if (!body || !active) return;
  const conv = client.conversations.get(active);
  client.typing(activeTarget(), "stop");
  if (editing) {
    client.edit(editing, body);
    editing = null;
    delete $("#composer").dataset.editing;
  } else {
    client.send(conv.group ? { group: conv.group } : { with: conv.with }, body);
  }
  $("#body").value = "";
  renderMessages();
});

async function older() {
  const conv = client.conversations.get(active);
  if (!conv || conv.historyDone || conv.loading) return;
  conv.loading = true;
  const box = $("#messages");
  const fromBottom = box.scrollHeight - box.scrollTop;
  await client.loadOlder(conv);
  conv.loading = false;
  renderMessages();
  box.scrollTop = box.scrollHeight - fromBottom; // keep the view where it was
}

$("#older").addEventListener("click", older);
// Scrolling to the top pulls the next page of history.
$("#messages").addEventListener("scroll", () => {
  if ($("#messages").scrollTop < 40) older();
});

$("#add-friend").addEventListener("submit", async (e) => {
  e.preventDefault();
  const user = $("#friend").value.trim();
  if (showFriends(await client.request({ action: "friends", op: "add", user }))) {
    $("#friend").value = "";
    showError("");
  }
});

$("#new-chat").addEventListener("submit", (e) => {
  e.preventDefault();
  const user = $("#peer").value.trim();
  if (user) open({ with: user });
  $("#peer").value = "";
});

$("#new-group").addEventListener("submit", async (e) => {
  e.preventDefault();
  const name = $("#group-name").value.trim();
  const members = $("#group-members").value.split(",").map((s) => s.trim()).filter(Boolean);
  const r = await client.request({ action: "group", op: "create", name, members });
  if (r?.type === "group") {
    const conv = client.conversation({ group: r.group.id });
    conv.name = r.group.name;
    $("#group-name").value = "";
    $("#group-members").value = "";
    await open({ group: r.group.id });
    // Friends join at once; anyone else named is only invited.
    if (r.group.invited?.length) showError(`invited (not friends yet): ${r.group.invited.join(", ")}`);
  }
});

$("#signout").addEventListener("click", () => {
  sessionStorage.removeItem("natter.user");
  client?.close();
  location.reload();
});

const remembered = sessionStorage.getItem("natter.user");
if (remembered) signIn(remembered).catch((err) => showError(String(err.message ?? err)));
