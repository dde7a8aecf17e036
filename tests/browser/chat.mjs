// The reference web client in a real browser: alice and bob (two browser contexts) sign in, befriend, chat one
// on one and in a group, edit, delete and react, keep alice's order when frames are reordered on the way (a
// burst, a late retry, two devices, a reload), invite a stranger (carol) who declines one group and joins another, see presence change
// and the delivered and read ticks, reload and find history, and see an error frame on the error line. Usage: node chat.mjs http://127.0.0.1:PORT ARTIFACT_DIR
// Chromium: $CHROMIUM, or Debian's /usr/bin/chromium.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const [base, artifacts = "."] = process.argv.slice(2);
mkdirSync(artifacts, { recursive: true });
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const browser = await chromium.launch({ executablePath, args: ["--no-sandbox", "--disable-dev-shm-usage"] });
const T = 20000; // generous: the presence delay is 2 s locally, and CI machines are slow

let step = "start";
const started = Date.now();
// Each step's start, in seconds since the test began (printed at the end: where the time goes).
const timeline = [];
const at = (name) => {
  step = name;
  timeline.push(`${((Date.now() - started) / 1000).toFixed(1)}s ${name}`);
};
const pages = [];
function check(cond, what) {
  if (!cond) throw new Error(`${step}: ${what}`);
}

// Opens a conversation and waits until the client shows it open. Under load the list can re-render (a sync, a
// push) between Playwright finding an item and clicking it, so a click that did not open it is made again.
async function openChat(page, key) {
  const item = `#conversations li[data-key="${key}"]`;
  for (let attempt = 1; ; attempt++) {
    await page.click(item, { timeout: T });
    try {
      await page.waitForSelector(`${item}.active`, { timeout: 3000 });
      return;
    } catch (e) {
      if (attempt === 3) throw e;
    }
  }
}

// What each page's client holds, printed when a step fails: where a message that did not show went.
async function describe(page, i) {
  try {
    return await page.evaluate((i) => {
      const n = window.natter;
      if (!n) return `page ${i}: not signed in`;
      const lines = [`page ${i}: ${n.user} device=${n.device} state=${n.state} open=${n.activeKey} outbox=${n.outbox.size}`];
      for (const [key, c] of n.conversations) {
        const last = c.messages.slice(-3).map((m) => `${m.from}:${JSON.stringify(m.body)}:${m.status ?? ""}:seq=${m.seq ?? ""}`);
        lines.push(`  ${key} (${c.messages.length}): ${last.join(" | ")}`);
      }
      return lines.join("\n");
    }, i);
  } catch (e) {
    return `page ${i}: ${e.message ?? e}`;
  }
}

// Every frame a page's websockets sent and received, with when: what the client did on the wire.
const wire = new Map();
function recordFrames(page) {
  const log = [];
  wire.set(page, log);
  page.on("websocket", (ws) => {
    ws.on("framesent", (f) => log.push({ at: Date.now(), dir: "out", frame: parse(f.payload) }));
    ws.on("framereceived", (f) => log.push({ at: Date.now(), dir: "in", frame: parse(f.payload) }));
  });
}
function parse(payload) {
  try {
    return JSON.parse(payload);
  } catch {
    return {};
  }
}

async function signIn(name) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 700 } });
  const page = await context.newPage();
  page.on("pageerror", (e) => console.error(`[${name}] page error: ${e}`));
  recordFrames(page);
  await page.goto(base);
  await page.fill("#user", name);
  await page.click("#signin-form button");
  await page.waitForSelector('#conn[data-state="online"]', { timeout: T });
  pages.push(page);
  return page;
}

async function sendText(page, text) {
  await page.fill("#body", text);
  await page.press("#body", "Enter");
}

try {
  at("sign in");
  const alice = await signIn("alice");
  const bob = await signIn("bob");

  at("befriend: alice asks, bob sees the request and accepts, then bob shows online in alice's friends");
  await alice.fill("#friend", "bob");
  await alice.click("#add-friend button");
  await alice.waitForSelector('#friends li[data-user="bob"][data-state="requested"]', { timeout: T });
  check((await alice.getAttribute('#friends li[data-user="bob"]', "data-status")) === null, "no status before bob accepts");
  await bob.waitForSelector('#friends li[data-user="alice"][data-state="incoming"] button.add', { timeout: T });
  await bob.click('#friends li[data-user="alice"] button.add');
  await bob.waitForSelector('#friends li[data-user="alice"][data-state="friend"]', { timeout: T });
  await alice.waitForSelector('#friends li[data-user="bob"][data-state="friend"][data-status="online"]', { timeout: T });

  at("a stranger's request: alice declines eve's, then blocks her");
  const eve = await signIn("eve");
  await eve.fill("#friend", "alice");
  await eve.click("#add-friend button");
  await alice.waitForSelector('#friends li[data-user="eve"][data-state="incoming"] button.remove', { timeout: T });
  await alice.click('#friends li[data-user="eve"] button.remove');
  await alice.waitForSelector('#friends li[data-user="eve"]', { state: "detached", timeout: T });
  check((await eve.getAttribute('#friends li[data-user="alice"]', "data-state")) === "requested", "eve is not told of the decline");
  await eve.click('#friends li[data-user="alice"] button.remove');
  await eve.waitForSelector('#friends li[data-user="alice"]', { state: "detached", timeout: T });
  await eve.fill("#friend", "alice");
  await eve.click("#add-friend button");
  await alice.waitForSelector('#friends li[data-user="eve"][data-state="incoming"] button.block', { timeout: T });
  await alice.click('#friends li[data-user="eve"] button.block');
  await alice.waitForSelector('#friends li[data-user="eve"][data-state="blocked"] button.unblock', { timeout: T });
  check((await eve.getAttribute('#friends li[data-user="alice"]', "data-state")) === "requested", "the block is not revealed");
  await eve.context().close();

  at("one-on-one: bob gets an unread badge and the preview");
  await alice.click('#friends li[data-user="bob"]');
  await sendText(alice, "hello bob");
  await alice.waitForSelector('#messages li.mine:has-text("hello bob")', { timeout: T });
  const conv = '#conversations li[data-key="u:alice"]';
  await bob.waitForSelector(`${conv} .unread`, { timeout: T });
  check((await bob.textContent(`${conv} .unread`)) === "1", "unread badge is 1");
  check((await bob.textContent(`${conv} .preview`)).includes("hello bob"), "preview shows the message");

  at("delivered tick: bob's client acked the push");
  await alice.waitForSelector('#messages li.mine[data-status="delivered"], #messages li.mine[data-status="read"]', { timeout: T });

  at("read tick: bob opens the conversation");
  await bob.click(conv);
  await bob.waitForSelector('#messages li.theirs:has-text("hello bob")', { timeout: T });
  await alice.waitForSelector('#messages li.mine[data-status="read"]', { timeout: T });
  check((await bob.$(`${conv} .unread`)) === null, "the badge is gone once read");

  at("bob answers; alice sees it at once in the open conversation");
  await sendText(bob, "hi alice!");
  await alice.waitForSelector('#messages li.theirs:has-text("hi alice!")', { timeout: T });

  at("edit: alice corrects a message, bob sees the new text marked edited");
  await sendText(alice, "see you at 5");
  await bob.waitForSelector('#messages li.theirs:has-text("see you at 5")', { timeout: T });
  await alice.click('#messages li.mine:has-text("see you at 5") button.edit');
  check((await alice.inputValue("#body")) === "see you at 5", "the composer holds the text to edit");
  await alice.fill("#body", "see you at 6");
  await alice.press("#body", "Enter");
  await bob.waitForSelector('#messages li.theirs:has-text("see you at 6") .edited', { timeout: T });
  check((await bob.$('#messages li:has-text("see you at 5")')) === null, "the old text is gone");
  await alice.waitForSelector('#messages li.mine:has-text("see you at 6") .edited', { timeout: T });

  at("reaction: bob reacts, both see the count and bob's own marked");
  await bob.click('#messages li.theirs:has-text("see you at 6") button.react');
  await alice.waitForSelector('#messages li.mine:has-text("see you at 6") .reaction:has-text("👍 1")', { timeout: T });
  await bob.waitForSelector('#messages li.theirs:has-text("see you at 6") .reaction.mine:has-text("👍 1")', { timeout: T });

  at("delete for everyone: alice deletes a message sent to the wrong chat, bob sees only that it was deleted");
  await sendText(alice, "wrong chat, sorry");
  await bob.waitForSelector('#messages li.theirs:has-text("wrong chat, sorry")', { timeout: T });
  // Its id (and the delete button) come with alice's ack, which under read lag can follow bob's push.
  await alice.waitForSelector('#messages li.mine:has-text("wrong chat, sorry") button.delete', { timeout: T });
  const gone = await alice.getAttribute('#messages li.mine:has-text("wrong chat, sorry")', "data-message-id");
  await alice.click('#messages li.mine:has-text("wrong chat, sorry") button.delete');
  await bob.waitForSelector(`#messages li[data-message-id="${gone}"] .body.deleted`, { timeout: T });
  check((await bob.$('#messages li:has-text("wrong chat, sorry")')) === null, "the body is gone from bob's screen");
  await alice.waitForSelector(`#messages li[data-message-id="${gone}"] .body.deleted`, { timeout: T });

  at("typing: alice types, bob sees it in the open conversation until her message arrives");
  // One typing start a second per sender and conversation (docs/protocol.md): the steps above typed a moment ago.
  await alice.waitForTimeout(1100);
  await alice.fill("#body", "one more thing");
  await bob.waitForSelector('#typing:not([hidden]):has-text("alice is typing")', { timeout: T });
  await alice.press("#body", "Enter");
  await bob.waitForSelector('#messages li.theirs:has-text("one more thing")', { timeout: T });
  await bob.waitForSelector("#typing", { state: "hidden", timeout: T });

  at("group: alice creates a group with bob and both chat in it");
  await alice.fill("#group-name", "team");
  await alice.fill("#group-members", "bob");
  await alice.click("#new-group button");
  await alice.waitForSelector('#chat-title:has-text("team")', { timeout: T });
  await sendText(alice, "welcome to the team");
  await alice.waitForSelector('#messages li.mine:has-text("welcome to the team")', { timeout: T });
  const groupConv = '#conversations li[data-key^="g:"]';
  await bob.waitForSelector(`${groupConv} .unread`, { timeout: T });
  await bob.click(groupConv);
  await bob.waitForSelector('#messages li.theirs:has-text("welcome to the team")', { timeout: T });
  check((await bob.textContent("#messages li.theirs .from")) === "alice", "the sender's name shows in a group");
  await sendText(bob, "thanks!");
  await alice.waitForSelector('#messages li.theirs:has-text("thanks!")', { timeout: T });

  at("group acks: after a burst of three, bob acks the group once, for the last, once it has been quiet for 2 s");
  const bobWire = wire.get(bob);
  await bob.waitForTimeout(2500); // bob's ack of the first message goes out before the burst
  const burstStart = Date.now();
  for (const text of ["one", "two", "three"]) await sendText(alice, `burst ${text}`);
  await bob.waitForSelector('#messages li.theirs:has-text("burst three")', { timeout: T });
  const groupAcks = () => bobWire.filter((f) => f.at >= burstStart && f.dir === "out" && f.frame.action === "ack" && f.frame.group);
  for (let waited = 0; groupAcks().length === 0 && waited < T; waited += 100) await bob.waitForTimeout(100);
  await bob.waitForTimeout(2500); // room for a second ack, which must not come
  const burst = bobWire.filter((f) => f.at >= burstStart && f.dir === "in" && f.frame.type === "message" && f.frame.group);
  check(burst.length === 3, `bob received the burst's three messages (got ${burst.length})`);
  const lastPush = burst[burst.length - 1];
  const lastSeq = Math.max(...burst.map((f) => f.frame.seq));
  const acks = groupAcks();
  check(acks.length === 1, `one group ack for the burst, not one per message or per timer tick (got ${JSON.stringify(acks.map((a) => a.frame))})`);
  check(acks[0].frame.upToSeq === lastSeq, `the ack covers the burst's last message (seq ${lastSeq})`);
  check(acks[0].at - lastPush.at >= 1900, `the ack waited for the group to be quiet (${acks[0].at - lastPush.at} ms)`);

  at("invitations: bob names carol, not his friend, in two groups; she declines one and joins the other");
  const carol = await signIn("carol");
  for (const name of ["book club", "spam"]) {
    await bob.fill("#group-name", name);
    await bob.fill("#group-members", "carol");
    await bob.click("#new-group button");
    await bob.waitForSelector('#error-line:not([hidden]):has-text("invited (not friends yet): carol")', { timeout: T });
  }
  const invite = (name) => `#invites li:has-text("${name}")`;
  await carol.waitForSelector(invite("book club"), { timeout: T });
  await carol.waitForSelector(invite("spam"), { timeout: T });
  check(await carol.isVisible("#invites-title"), "the invitations show");
  check(!(await carol.isVisible('#conversations li[data-key^="g:"]')), "no group before she joins");
  await carol.click(`${invite("spam")} button.decline`);
  await carol.waitForSelector(invite("spam"), { state: "detached", timeout: T });
  await carol.click(`${invite("book club")} button.join`);
  await carol.waitForSelector('#chat-title:has-text("book club")', { timeout: T });
  await carol.waitForSelector("#invites li", { state: "detached", timeout: T });
  await bob.click('#conversations li:has-text("book club")');
  await bob.waitForSelector('#chat-title:has-text("book club")', { timeout: T });
  await sendText(bob, "chapter one tonight");
  await carol.waitForSelector('#messages li.theirs:has-text("chapter one tonight")', { timeout: T });
  await carol.context().close();

  at("error line: a message to a user who does not exist");
  await alice.fill("#peer", "nobody-here");
  await alice.click("#new-chat button");
  await sendText(alice, "anyone?");
  await alice.waitForSelector('#error-line:not([hidden]):has-text("not_found")', { timeout: T });
  await alice.waitForSelector('#messages li.mine[data-status="failed"]', { timeout: T });

  at("sync after being away: bob's client closes, alice writes, bob connects again");
  await bob.evaluate(() => window.natter.close());
  await bob.waitForSelector('#conn[data-state="offline"]', { timeout: T });
  // Once the server has him offline (alice's friends list shows it), her message says it waits for him.
  await alice.waitForSelector('#friends li[data-user="bob"][data-status="offline"]', { timeout: T });
  await openChat(alice, "u:bob");
  await sendText(alice, "while you were away");
  await alice.waitForSelector('#messages li.mine[data-status="sent"]:has-text("while you were away")', { timeout: T });
  await alice.waitForSelector('#messages li.mine:has-text("while you were away") .offline-note:has-text("delivered when bob is back, last seen")', { timeout: T });
  await bob.evaluate(() => window.natter.connect());
  await openChat(bob, "u:alice");
  await bob.waitForSelector('#messages li.theirs:has-text("while you were away")', { timeout: T });
  await alice.waitForSelector('#messages li.mine[data-status="read"]:has-text("while you were away")', { timeout: T });

  at("reconnect: the connection drops, the client comes back by itself and gets what follows");
  await bob.evaluate(() => window.natter.ws.close());
  await bob.waitForSelector('#conn[data-state="online"]', { timeout: T });
  await sendText(alice, "welcome back");
  await bob.waitForSelector('#messages li.theirs:has-text("welcome back")', { timeout: T });
  const bodies = await bob.$$eval("#messages li .body", (els) => els.map((e) => e.textContent));
  check(bodies.filter((b) => b === "while you were away").length === 1, `no duplicate after sync: ${bodies}`);

  at("presence: bob is back online for alice");
  await alice.waitForSelector('#friends li[data-user="bob"][data-status="online"]', { timeout: T });

  at("picture: alice sends one with a caption; it goes up by its presigned URL and shows inline at bob's");
  await openChat(alice, "u:bob");
  await openChat(bob, "u:alice");
  // A 1x1 PNG: what bob's browser downloads and decodes is the very file alice picked.
  const PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
  await alice.fill("#body", "the view from here");
  await alice.setInputFiles("#picture", { name: "view.png", mimeType: "image/png", buffer: Buffer.from(PNG, "base64") });
  await alice.waitForSelector('#messages li.mine:not([data-status="pending"]):not([data-status="failed"]):has-text("the view from here") img.attachment', { timeout: T });
  const picture = '#messages li.theirs:has-text("the view from here") img.attachment';
  const img = await bob.waitForSelector(picture, { timeout: T });
  await bob.waitForFunction((e) => e.complete && e.naturalWidth === 1, img, { timeout: T });
  const src = await bob.getAttribute(picture, "src");
  check(src.includes("X-Amz-Signature=") && src.includes("/a/alice/"), `a presigned download of alice's upload: ${src}`);

  at("order: with frames reordered on the way, bob sees alice's burst in the order she wrote it");
  const reorder = (maxDelayMs) =>
    fetch(`${base}/_natter/reorder`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ maxDelayMs }) });
  check((await reorder(400)).ok, "natter-local's reordering fault is on");
  await openChat(alice, "u:bob");
  await openChat(bob, "u:alice");
  const BURST = 8;
  await alice.evaluate((n) => {
    for (let i = 1; i <= n; i++) window.natter.send({ with: "bob" }, `burst ${i}`);
  }, BURST);
  const bobBodies = () => bob.$$eval("#messages li .body", (els) => els.map((e) => e.textContent));
  const inOrder = (bodies, prefix, n) => {
    const got = bodies.filter((b) => b.startsWith(prefix));
    return got.length === n && got.every((b, i) => b === `${prefix}${i + 1}`);
  };
  for (let i = 0; i < 40 && (await bobBodies()).filter((b) => b.startsWith("burst ")).length < BURST; i++) await bob.waitForTimeout(250);
  check(inOrder(await bobBodies(), "burst ", BURST), `the burst in writing order: ${await bobBodies()}`);

  at("order: a retry that lands after a later message opens a gap, which closes when it comes");
  // What a client does when its first attempt of a message is lost: the retry, with the same numbers, arrives
  // after the message written next.
  const [seqA, seqB, device] = await alice.evaluate(async () => {
    const { takeSeq } = await import("/_natter/web/order.js");
    const n = window.natter;
    return [takeSeq(n.user, n.device, "bob"), takeSeq(n.user, n.device, "bob"), n.device];
  });
  const sendAs = (page, cmid, body, seq) =>
    page.evaluate((f) => window.natter.request(f), { action: "send", clientMsgId: cmid, to: "bob", body, seq, device });
  check((await sendAs(alice, "late-b", "written second", seqB))?.type === "ack", "the later one is acked");
  await bob.waitForSelector('#messages li.theirs:has-text("written second")', { timeout: T });
  await bob.waitForSelector('#messages li.gap[data-from="alice"]', { timeout: T });
  check((await sendAs(alice, "late-a", "written first", seqA))?.type === "ack", "the retry is acked");
  await bob.waitForSelector('#messages li.theirs:has-text("written first")', { timeout: T });
  await bob.waitForSelector("#messages li.gap", { state: "detached", timeout: T });
  const late = await bobBodies();
  check(late.indexOf("written first") < late.indexOf("written second"), `the retry in its place: ${late}`);

  at("order: two devices of alice write at once; each device's messages stay in order at bob's");
  const alice2 = await signIn("alice");
  await openChat(alice2, "u:bob");
  const EACH = 5;
  await Promise.all(
    [alice, alice2].map((page, d) =>
      page.evaluate(([n, d]) => {
        for (let i = 1; i <= n; i++) window.natter.send({ with: "bob" }, `d${d} ${i}`);
      }, [EACH, d + 1]),
    ),
  );
  for (let i = 0; i < 40 && (await bobBodies()).filter((b) => /^d[12] /.test(b)).length < 2 * EACH; i++) await bob.waitForTimeout(250);
  const two = await bobBodies();
  check(inOrder(two, "d1 ", EACH) && inOrder(two, "d2 ", EACH), `each device in its order: ${two}`);
  check((await reorder(0)).ok, "the fault is off again");

  at("order: alice's counter survives a reload (her next message follows, no gap at bob's)");
  await alice.reload();
  await alice.waitForSelector('#conn[data-state="online"]', { timeout: T });
  check((await alice.evaluate(() => window.natter.device)) === device, "the same device after a reload");
  await openChat(alice, "u:bob");
  await sendText(alice, "after the reload");
  await bob.waitForSelector('#messages li.theirs:has-text("after the reload")', { timeout: T });
  const seqs = await bob.evaluate((d) => {
    const ms = window.natter.conversations.get("u:alice").messages.filter((m) => m.device === d);
    return ms.map((m) => m.seq);
  }, device);
  check(seqs.every((q, i) => i === 0 || seqs[i - 1] < q) && seqs.at(-1) > seqB, `one chain, numbered on: ${seqs}`);
  check((await bob.$("#messages li.gap")) === null, "no gap");
  await alice2.context().close();

  at("screenshot");
  await openChat(alice, "u:bob");
  await alice.waitForSelector('#messages li:has-text("hi alice!")', { timeout: T });
  await alice.screenshot({ path: join(artifacts, "web-client.png") });

  at("presence: bob leaves, alice sees him offline with last seen");
  await bob.context().close();
  await alice.waitForSelector('#friends li[data-user="bob"][data-status="offline"]', { timeout: T });
  check((await alice.textContent('#friends li[data-user="bob"] .seen')).startsWith("last seen"), "last seen shows");

  at("reload: alice finds the history");
  await alice.reload();
  await alice.waitForSelector('#conn[data-state="online"]', { timeout: T });
  await openChat(alice, "u:bob");
  await alice.waitForSelector('#messages li.mine:has-text("hello bob")', { timeout: T });
  await alice.waitForSelector('#messages li.theirs:has-text("hi alice!")', { timeout: T });
  check((await alice.getAttribute('#messages li.mine:has-text("hello bob")', "data-status")) === "read", "history keeps the read status");
  const order = await alice.$$eval("#messages li .body", (els) => els.map((e) => e.textContent));
  check(order.indexOf("hello bob") < order.indexOf("hi alice!"), `history in order: ${order}`);

  at("scroll-back: more than a page of history, the oldest reached by scrolling up");
  // alice and bob exchanged 7 messages above ("hello bob", "hi alice!", "see you at 6", the deleted one, "one
  // more thing", "while you were away", "welcome back"), then the picture, the 8 of the burst, the 2 of the retry, 5 from
  // each of alice's two devices and "after the reload"; 60 more make the conversation longer than one history
  // page (50), so its oldest come from scrolling back.
  const OLD = 60;
  const TOTAL = 7 + 1 + BURST + 2 + 2 * EACH + 1 + OLD;
  await alice.evaluate((n) => {
    for (let i = 1; i <= n; i++) window.natter.send({ with: "bob" }, `old ${i}`);
  }, OLD);
  await alice.waitForFunction(
    (n) => window.natter.conversations.get("u:bob").messages.filter((m) => m.body?.startsWith("old ") && m.messageId).length === n,
    OLD,
    { timeout: T },
  );
  // One-on-one history is indexed asynchronously (within seconds of the ack, docs/protocol.md): wait for it.
  const indexed = async () =>
    alice.evaluate(async () => (await window.natter.request({ action: "history", with: "bob", limit: 100 }))?.messages?.length ?? 0);
  for (let i = 0; i < 40 && (await indexed()) < TOTAL; i++) await alice.waitForTimeout(250);
  check((await indexed()) >= TOTAL, "every message is in history within 10 s");
  await alice.reload();
  await alice.waitForSelector('#conn[data-state="online"]', { timeout: T });
  await openChat(alice, "u:bob");
  await alice.waitForFunction(() => document.querySelectorAll("#messages li").length >= 50, null, { timeout: T });
  // The 60 went out at once, so which of them the newest page holds is the server's order: scroll until the
  // whole conversation is there.
  const shown = () => alice.$$eval("#messages li", (els) => els.length);
  for (let i = 0; i < 10 && (await shown()) < TOTAL; i++) {
    await alice.$eval("#messages", (el) => {
      el.scrollTop = 0;
      el.dispatchEvent(new Event("scroll"));
    });
    await alice.waitForTimeout(300);
  }
  await alice.waitForSelector('#messages li .body >> text="old 1"', { timeout: T });
  const all = await alice.$$eval("#messages li .body", (els) => els.map((e) => e.textContent));
  // The 60 went out concurrently and may have reached the server in another order: history shows them in the
  // order alice's device numbered them.
  check(inOrder(all, "old ", OLD), `in writing order: ${all}`);
  check(all.indexOf("hello bob") < all.indexOf("old 1"), "older conversation first");
  check(new Set(all).size === all.length, "no message twice after paging");
  check(all.length === TOTAL, `every message once: ${all.length} of ${TOTAL}`);

  console.log(timeline.join("\n"));
  console.log("browser: ok");
} catch (e) {
  console.error(timeline.join("\n"));
  console.error(`browser: FAILED at ${e.message ?? e}`);
  for (const [i, p] of pages.entries()) console.error(await describe(p, i));
  for (const [i, p] of pages.entries()) {
    try {
      await p.screenshot({ path: join(artifacts, `failure-${i}.png`) });
    } catch {}
  }
  process.exitCode = 1;
} finally {
  await browser.close();
}
