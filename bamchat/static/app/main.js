// The web client: login, the BAM list, the socket and its connection state.
// One Room at a time holds the open conversation (see room.js).

import { io } from "./vendor/socket.io.esm.min.js";
import * as auth from "./auth.js";
import { el, fill, when } from "./dom.js";
import { Room } from "./room.js";

const $ = (id) => document.getElementById(id);
const LIST_REFRESH_MS = 300; // several events in a burst cost one GET /bams

const ui = {
  conn: $("conn"),
  me: $("me"),
  logout: $("logout"),
  pushOptIn: $("push-optin"),
  loginView: $("login-view"),
  loginForm: $("login-form"),
  loginError: $("login-error"),
  chatView: $("chat-view"),
  bamList: $("bam-list"),
  createForm: $("create-form"),
  createError: $("create-error"),
  roomPane: $("room-pane"),
  roomTitle: $("room-title"),
  participants: $("participants"),
  back: $("back"),
  history: $("history"),
  older: $("older"),
  messages: $("messages"),
  typing: $("typing"),
  sendForm: $("send-form"),
  composer: $("composer"),
  file: $("file"),
  progress: $("upload-progress"),
  error: $("room-error"),
};

let me = null; // {id, username}
let socket = null;
let room = null;
let listTimer = null;
const status = new Map(); // userId -> presence status

// --- connection state --------------------------------------------------------
function setConnection(state) {
  ui.conn.dataset.state = state;
  ui.conn.textContent = state;
}

window.addEventListener("offline", () => setConnection("offline"));
window.addEventListener("online", () => socket && !socket.connected && setConnection("reconnecting"));

// --- presence ----------------------------------------------------------------
const presence = {
  set(userId, value) {
    status.set(userId, value);
    for (const dot of document.querySelectorAll(`[data-presence-of="${CSS.escape(userId)}"]`)) {
      dot.dataset.status = value;
      dot.title = value;
      dot.setAttribute("aria-label", value);
    }
  },
  markOnline(userId) {
    if (!status.has(userId) || status.get(userId) === "offline") this.set(userId, "online");
  },
};

function dot(userId) {
  const value = status.get(userId) || "offline";
  return el("span", {
    class: "dot",
    role: "img",
    "aria-label": value,
    title: value,
    dataset: { presenceOf: userId, status: value },
  });
}

// --- the socket --------------------------------------------------------------
function connect() {
  socket = io({ auth: (cb) => cb({ token: auth.accessToken() }) });
  window.bamchat = { socket }; // for tests and for looking around in the console
  socket.on("connect", () => {
    setConnection("connected");
    if (room) room.join().catch((error) => room.error(`Could not join: ${error.message}`));
  });
  socket.on("disconnect", (reason) => {
    if (reason === "io client disconnect") return setConnection("offline");
    setConnection(navigator.onLine ? "reconnecting" : "offline");
    // The server ends a socket whose token expired: come back with a fresh one.
    if (reason === "io server disconnect") auth.refresh().then(() => socket.connect(), () => {});
  });
  socket.io.on("reconnect_attempt", () => setConnection(navigator.onLine ? "reconnecting" : "offline"));
  socket.on("connect_error", (error) => {
    setConnection("reconnecting");
    const code = error.data && error.data.code;
    if (code === "token_expired" || code === "auth_invalid") {
      auth.refresh().then(() => socket.connect(), () => {});
    }
  });
  const forRoom = (handler) => (payload) => {
    if (room && payload.bamId === room.id) handler(payload);
  };
  socket.on("new-message", (message) => {
    forRoom((m) => room.onNewMessage(m))(message);
    refreshListSoon();
  });
  socket.on("message-updated", forRoom((change) => room.onUpdated(change)));
  socket.on("message-deleted", (change) => {
    forRoom((c) => room.onDeleted(c))(change);
    refreshListSoon();
  });
  socket.on("reaction-updated", forRoom((change) => room.onReaction(change)));
  socket.on("read-receipt", (receipt) => {
    forRoom((r) => room.onReadReceipt(r))(receipt);
    if (receipt.userId === me.id) refreshListSoon(); // read on another device
  });
  socket.on("typing-status", forRoom((typing) => room.onTyping(typing)));
  socket.on("presence-update", (update) => presence.set(update.userId, update.status));
  socket.on("notification", () => refreshListSoon());
}

// --- the BAM list ------------------------------------------------------------
function refreshListSoon() {
  clearTimeout(listTimer);
  listTimer = setTimeout(() => loadList().catch(() => {}), LIST_REFRESH_MS);
}

function preview(message) {
  if (!message) return "no messages yet";
  if (message.deleted) return `${message.sender.username}: message deleted`;
  const text = message.content || (message.attachments.length ? "📎 attachment" : "");
  return `${message.sender.username}: ${text}`;
}

async function loadList() {
  const page = await auth.api("GET", "/bams");
  fill(
    ui.bamList,
    page.results.map((bam) =>
      el(
        "li",
        {},
        el(
          "button",
          {
            type: "button",
            class: "bam",
            dataset: { bamId: bam.id },
            "aria-current": room && room.id === bam.id ? "true" : null,
            onclick: () => openRoom(bam.id),
          },
          el("span", { class: "title" }, bam.title),
          bam.unreadCount
            ? el("span", { class: "badge", "aria-label": `${bam.unreadCount} unread` }, String(bam.unreadCount))
            : null,
          el("span", { class: "preview" }, preview(bam.lastMessage)),
          bam.lastMessage ? el("time", { datetime: bam.lastMessage.createdAt }, when(bam.lastMessage.createdAt)) : null,
        ),
      ),
    ),
  );
}

ui.createForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const participantIds = form.participants.value.split(/[\s,]+/).filter(Boolean);
  try {
    const bam = await auth.api("POST", "/bams", { title: form.title.value, participantIds });
    form.reset();
    ui.createError.textContent = "";
    await loadList();
    await openRoom(bam.id);
  } catch (error) {
    ui.createError.textContent = `Could not create: ${error.message}`;
  }
});

// --- the open BAM ------------------------------------------------------------
async function openRoom(bamId) {
  if (room) room.leave();
  room = null;
  fill(ui.messages);
  fill(ui.typing);
  ui.error.textContent = "";
  const bam = await auth.api("GET", `/bams/${bamId}`);
  await Promise.all(
    bam.participants.map((p) =>
      auth.api("GET", `/websocket/presence/${p.id}`).then(
        (state) => status.set(p.id, state.online ? state.status : "offline"),
        () => {},
      ),
    ),
  );
  room = new Room({ bam, me: me.id, socket, ui, presence, onActivity: refreshListSoon });
  ui.roomTitle.textContent = bam.title;
  fill(
    ui.participants,
    bam.participants.map((p) =>
      el("li", { dataset: { userId: p.id } }, dot(p.id), " ", p.username, p.id === me.id ? " (you)" : ""),
    ),
  );
  ui.roomPane.hidden = false;
  document.body.classList.add("in-room");
  for (const button of ui.bamList.querySelectorAll("button.bam")) {
    button.toggleAttribute("aria-current", button.dataset.bamId === bamId);
  }
  await room.load();
  if (socket.connected) await room.join();
  refreshListSoon();
  ui.composer.focus();
}

ui.back.addEventListener("click", () => {
  document.body.classList.remove("in-room");
  const current = room && ui.bamList.querySelector(`button[data-bam-id="${CSS.escape(room.id)}"]`);
  if (current) current.focus();
});

ui.history.addEventListener("scroll", () => {
  if (room && ui.history.scrollTop < 40) room.loadOlder().catch(() => {});
});
ui.older.addEventListener("click", () => room && room.loadOlder());

ui.composer.addEventListener("input", () => room && room.typed(ui.composer.value.trim() !== ""));
ui.composer.addEventListener("blur", () => room && room.stopTyping());

ui.sendForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const content = ui.composer.value.trim();
  const file = ui.file.files[0] || null;
  if (!room || (!content && !file)) return;
  ui.composer.value = "";
  ui.file.value = "";
  room.send(content, file);
});

document.addEventListener("visibilitychange", () => room && room.markRead());

// --- Web Push (the service worker of /push/demo) -----------------------------
function keyBytes(base64url) {
  const base64 = base64url.replace(/-/g, "+").replace(/_/g, "/");
  const raw = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

ui.pushOptIn.addEventListener("click", async () => {
  try {
    if ((await Notification.requestPermission()) !== "granted") {
      throw new Error("notifications are not allowed for this page");
    }
    const registration = await navigator.serviceWorker.register("/push/sw.js");
    await navigator.serviceWorker.ready;
    const { publicKey } = await auth.api("GET", "/push/vapid-key");
    let subscription = await registration.pushManager.getSubscription();
    if (subscription) await subscription.unsubscribe(); // it may belong to another server key
    subscription = await registration.pushManager.subscribe({
      userVisibleOnly: true,
      applicationServerKey: keyBytes(publicKey),
    });
    await auth.api("POST", "/push/subscriptions", subscription.toJSON());
    ui.pushOptIn.textContent = "Notifications on";
    ui.pushOptIn.disabled = true;
  } catch (error) {
    ui.pushOptIn.textContent = `Notifications: ${error.message}`;
  }
});

// --- login and logout --------------------------------------------------------
async function start() {
  me = await auth.api("GET", "/auth/me");
  ui.me.textContent = `${me.username} (id ${me.id})`;
  ui.me.hidden = false;
  ui.logout.hidden = false;
  ui.pushOptIn.hidden = !("serviceWorker" in navigator && "PushManager" in window);
  ui.loginView.hidden = true;
  ui.chatView.hidden = false;
  connect();
  await loadList();
}

function showLogin() {
  if (socket) socket.disconnect();
  socket = null;
  if (room) room.closed = true;
  room = null;
  me = null;
  ui.me.hidden = ui.logout.hidden = ui.pushOptIn.hidden = true;
  ui.chatView.hidden = true;
  ui.roomPane.hidden = true;
  ui.loginView.hidden = false;
  fill(ui.bamList);
  fill(ui.messages);
  setConnection("offline");
  ui.loginForm.username.focus();
}

auth.onTokens((tokens) => {
  if (!tokens && me) showLogin();
});

ui.loginForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  ui.loginError.textContent = "";
  try {
    await auth.login(form.username.value, form.password.value);
    form.reset();
    await start();
  } catch (error) {
    ui.loginError.textContent = `Login failed: ${error.message}`;
  }
});

ui.logout.addEventListener("click", () => auth.logout());

if (auth.restore()) start().catch(showLogin);
else showLogin();
