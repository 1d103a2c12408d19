// One open BAM: its history (REST, newest first, cursor pages going up), the
// live events applied in seq order, sending with a tempId, typing and reads.
//
// Sync rule: the client remembers the highest seq it has applied (lastSeq).
// Joining sends ``sinceSeq: lastSeq``; the server replays every later event, in
// order and before the ack. Applying an event is idempotent (a message id is
// shown once; an edit replaces content; a reaction sets the count), so an event
// already reflected in a REST page is harmless when it is replayed. The newest
// REST page counts as applied up to its newest message's seq: a join replays
// only what came after it, not the whole history.

import { api, upload } from "./auth.js";
import { el, fill } from "./dom.js";
import { messageItem, pendingItem } from "./messages.js";

const ACK_TIMEOUT_MS = 15000;
const TYPING_RENEW_MS = 3000; // the server forgets a typing-start after 5 s
const TYPING_SHOWN_MS = 6000;
const NEAR_BOTTOM_PX = 80;

function newTempId() {
  const random = crypto.getRandomValues(new Uint32Array(2));
  return `t-${Date.now().toString(36)}-${random[0].toString(36)}${random[1].toString(36)}`;
}

function call(socket, event, payload) {
  return socket.timeout(ACK_TIMEOUT_MS).emitWithAck(event, payload);
}

export class Room {
  constructor({ bam, me, socket, ui, presence, onActivity }) {
    this.bam = bam;
    this.id = bam.id;
    this.me = me;
    this.socket = socket;
    this.ui = ui;
    this.presence = presence;
    this.onActivity = onActivity;
    this.messages = new Map(); // id -> payload
    this.pending = new Map(); // tempId -> li
    this.lastSeq = 0;
    this.next = null;
    this.loadingOlder = false;
    this.readPositions = new Map((bam.readPositions || []).map((p) => [p.userId, p.messageId]));
    this.names = new Map(bam.participants.map((p) => [p.id, p.username]));
    this.typing = new Map(); // userId -> timeout
    this.typingSentAt = 0;
    this.armed = new Map(); // message id -> timeout: the delete button awaits its confirmation
    this.editing = null; // the id of the message whose editor is open
    this.closed = false;
  }

  // --- history -----------------------------------------------------------
  async load() {
    const page = await api("GET", `/bams/${this.id}/messages?limit=50`);
    this.next = page.next;
    for (const message of page.results) {
      this.put(message, { scroll: false });
      this.seen(message.seq); // the page shows every event up to its newest message
    }
    this.ui.older.hidden = !this.next;
    this.scrollToBottom();
  }

  /**
   * Read the next older page. A page whose messages are all shown already (the
   * join's replay brought them) moves nothing, so no scroll would ask for the
   * next one: read on until a page adds something or none is left.
   */
  async loadOlder() {
    if (!this.next || this.loadingOlder) return;
    this.loadingOlder = true;
    const history = this.ui.history;
    try {
      let added = 0;
      while (this.next && !added && !this.closed) {
        const before = history.scrollHeight;
        const url = new URL(this.next, location.href);
        const page = await api("GET", url.pathname + url.search);
        this.next = page.next;
        for (const message of page.results) {
          if (!this.messages.has(message.id)) added += 1;
          this.put(message, { scroll: false });
        }
        history.scrollTop += history.scrollHeight - before; // keep the view still
      }
    } finally {
      this.loadingOlder = false;
      this.ui.older.hidden = !this.next;
    }
  }

  // --- joining (also after every reconnect) ------------------------------
  async join() {
    const ack = await call(this.socket, "join-bam", { bamId: this.id, sinceSeq: this.lastSeq });
    if (this.closed) return;
    if (!ack.ok) throw new Error(ack.error.message);
    this.seen(ack.lastSeq);
    for (const userId of ack.onlineUsers) this.presence.markOnline(userId);
    if (ack.truncated) {
      // More was missed than a replay carries: start again from REST.
      this.messages.clear();
      fill(this.ui.messages);
      await this.load();
    }
    this.markRead();
  }

  leave() {
    this.closed = true;
    for (const timeout of this.typing.values()) clearTimeout(timeout);
    for (const timeout of this.armed.values()) clearTimeout(timeout);
    if (this.socket.connected) this.socket.emit("leave-bam", this.id);
  }

  seen(seq) {
    if (typeof seq === "number" && seq > this.lastSeq) this.lastSeq = seq;
  }

  // --- events ------------------------------------------------------------
  onNewMessage(message) {
    this.seen(message.seq);
    this.clearTyping(message.senderId);
    this.put(message);
    this.markRead();
  }

  onUpdated(change) {
    this.seen(change.seq);
    const message = this.messages.get(change.id);
    if (message) this.put({ ...message, content: change.content, text: change.text, editedAt: change.editedAt });
  }

  onDeleted(change) {
    this.seen(change.seq);
    const message = this.messages.get(change.id);
    if (message) {
      this.put({ ...message, deleted: true, content: null, text: null, attachments: [], reactions: [] });
    }
  }

  onReaction(change) {
    this.seen(change.seq);
    const message = this.messages.get(change.messageId);
    if (!message || message.deleted) return;
    const reactions = message.reactions.map((r) => ({ ...r, userIds: [...r.userIds] }));
    let entry = reactions.find((r) => r.emoji === change.emoji);
    if (!entry) {
      entry = { emoji: change.emoji, count: 0, userIds: [] };
      reactions.push(entry);
    }
    entry.count = change.count;
    entry.userIds = entry.userIds.filter((id) => id !== change.userId);
    if (change.on) entry.userIds.push(change.userId);
    this.put({ ...message, reactions: reactions.filter((r) => r.count > 0) });
  }

  onReadReceipt(receipt) {
    const old = this.readPositions.get(receipt.userId);
    this.readPositions.set(receipt.userId, receipt.messageId);
    for (const id of [old, receipt.messageId]) {
      const message = id && this.messages.get(id);
      if (message) this.put(message);
    }
  }

  onTyping(status) {
    if (status.userId === this.me) return;
    this.clearTyping(status.userId);
    if (status.isTyping) {
      this.names.set(status.userId, status.username);
      this.typing.set(status.userId, setTimeout(() => this.clearTyping(status.userId), TYPING_SHOWN_MS));
    }
    this.renderTyping();
  }

  clearTyping(userId) {
    clearTimeout(this.typing.get(userId));
    if (this.typing.delete(userId)) this.renderTyping();
  }

  renderTyping() {
    const names = [...this.typing.keys()].map((id) => this.names.get(id) || "someone");
    this.ui.typing.textContent = names.length
      ? `${names.join(", ")} ${names.length === 1 ? "is" : "are"} typing…`
      : "";
  }

  // --- rendering ---------------------------------------------------------
  seenBy(message) {
    const names = [];
    for (const [userId, messageId] of this.readPositions) {
      if (messageId === message.id && userId !== this.me && userId !== message.senderId) {
        names.push(this.names.get(userId) || `user ${userId}`);
      }
    }
    return names;
  }

  /** Show ``message`` (new or changed) at its place in seq order. */
  put(message, { scroll = true } = {}) {
    const stick = scroll && this.nearBottom();
    this.messages.set(message.id, message);
    if (message.tempId && message.senderId === this.me) {
      const pending = this.pending.get(message.tempId);
      if (pending) pending.remove();
      this.pending.delete(message.tempId);
    }
    const item = messageItem(message, {
      me: this.me,
      actions: this.actions(),
      seenBy: this.seenBy(message),
      armed: this.armed.has(message.id),
    });
    const list = this.ui.messages;
    const existing = list.querySelector(`li[data-id="${CSS.escape(message.id)}"]`);
    if (existing) {
      // A receipt or a reaction re-renders the message: an open editor stays open.
      const editor =
        this.editing === message.id && !message.deleted && existing.querySelector("input.edit-input");
      const text = item.querySelector(".text");
      if (editor && text) text.replaceWith(editor);
      else if (editor) item.append(editor);
      existing.replaceWith(item);
      return;
    }
    let before = list.querySelector("li.pending");
    for (const other of list.querySelectorAll("li[data-seq]")) {
      if (Number(other.dataset.seq) > message.seq) {
        before = other;
        break;
      }
    }
    list.insertBefore(item, before);
    if (!stick) return;
    this.scrollToBottom();
    for (const img of item.querySelectorAll("img")) {
      img.addEventListener("load", () => this.scrollToBottom(), { once: true }); // taller now
    }
  }

  nearBottom() {
    const h = this.ui.history;
    return h.scrollHeight - h.scrollTop - h.clientHeight < NEAR_BOTTOM_PX;
  }

  scrollToBottom() {
    this.ui.history.scrollTop = this.ui.history.scrollHeight;
  }

  error(text) {
    this.ui.error.textContent = text;
  }

  actions() {
    return {
      edit: (message) => this.startEdit(message),
      remove: (message) => this.remove(message),
      react: (message, emoji, on) => this.react(message, emoji, on),
    };
  }

  // --- writing -----------------------------------------------------------
  /** Send text and files: shown at once, reconciled by the ack (or the event). */
  async send(content, file) {
    const tempId = newTempId();
    const item = pendingItem({ tempId, content, files: file ? [file.name] : [], username: this.names.get(this.me) || "me" });
    this.pending.set(tempId, item);
    this.ui.messages.append(item);
    this.scrollToBottom();
    this.stopTyping();
    const payload = { bamId: this.id, content, tempId };
    try {
      if (file) {
        this.ui.progress.hidden = false;
        const uploaded = await upload(`/bams/${this.id}/attachments`, file, (done) => {
          this.ui.progress.value = done;
        });
        payload.attachmentIds = [uploaded.id];
      }
      await this.emitSend(payload, item);
    } catch (error) {
      this.failed(payload, item, error.message);
    } finally {
      this.ui.progress.hidden = true;
      this.ui.progress.value = 0;
    }
  }

  async emitSend(payload, item) {
    item.querySelector(".state").textContent = "sending…";
    let ack;
    try {
      ack = await call(this.socket, "send-message", payload);
    } catch {
      this.failed(payload, item, "no answer from the server");
      return;
    }
    if (ack.ok) this.put(ack.message);
    else this.failed(payload, item, ack.error.message);
  }

  failed(payload, item, reason) {
    if (!this.pending.has(payload.tempId)) return; // it arrived after all
    const state = item.querySelector(".state");
    fill(
      state,
      `not sent: ${reason} `,
      el("button", { type: "button", class: "retry", onclick: () => this.emitSend(payload, item) }, "Retry"),
    );
  }

  startEdit(message) {
    const item = this.ui.messages.querySelector(`li[data-id="${CSS.escape(message.id)}"]`);
    const text = item && item.querySelector(".text");
    if (!item) return;
    const input = el("input", { class: "edit-input", "aria-label": "Edit message", maxlength: 4000 });
    input.value = message.content || "";
    const close = (shown) => {
      if (this.editing === message.id) this.editing = null;
      this.put(shown, { scroll: false });
    };
    input.addEventListener("keydown", async (event) => {
      if (event.key === "Escape") close(this.messages.get(message.id));
      if (event.key !== "Enter") return;
      event.preventDefault();
      const ack = await call(this.socket, "edit-message", { messageId: message.id, content: input.value }).catch(
        (e) => ({ ok: false, error: { message: e.message } }),
      );
      if (ack.ok) close(ack.message);
      else this.error(`Edit failed: ${ack.error.message}`);
    });
    this.editing = message.id;
    if (text) text.replaceWith(input);
    else item.append(input);
    input.focus();
  }

  /** The first click arms the delete button for 4 s; a second click deletes. */
  async remove(message) {
    const rerender = () => {
      const current = this.messages.get(message.id);
      if (current) this.put(current, { scroll: false });
    };
    if (!this.armed.has(message.id)) {
      const disarm = () => {
        this.armed.delete(message.id);
        rerender();
      };
      this.armed.set(message.id, setTimeout(disarm, 4000));
      rerender();
      return;
    }
    clearTimeout(this.armed.get(message.id));
    this.armed.delete(message.id);
    rerender();
    const ack = await call(this.socket, "delete-message", { messageId: message.id }).catch((e) => ({
      ok: false,
      error: { message: e.message },
    }));
    if (!ack.ok) this.error(`Delete failed: ${ack.error.message}`);
    else this.onDeleted({ id: message.id, seq: 0 });
  }

  async react(message, emoji, on) {
    const ack = await call(this.socket, "react", { messageId: message.id, emoji, on }).catch((e) => ({
      ok: false,
      error: { message: e.message },
    }));
    if (!ack.ok) this.error(`Reaction failed: ${ack.error.message}`);
    else {
      const current = this.messages.get(message.id);
      if (current && !current.deleted) this.put({ ...current, reactions: ack.reactions });
    }
  }

  /** Renew ``typing-start`` while the composer has text; stop when it empties. */
  typed(hasText) {
    if (!hasText) return this.stopTyping();
    const now = Date.now();
    if (now - this.typingSentAt > TYPING_RENEW_MS) {
      this.typingSentAt = now;
      this.socket.emit("typing-start", this.id);
    }
  }

  stopTyping() {
    if (!this.typingSentAt) return;
    this.typingSentAt = 0;
    this.socket.emit("typing-stop", this.id);
  }

  /** Move my read position to the newest message while the page is in view. */
  markRead() {
    if (document.visibilityState !== "visible" || !this.socket.connected) return;
    let newest = null;
    for (const message of this.messages.values()) {
      if (!newest || message.seq > newest.seq) newest = message;
    }
    if (!newest || newest.id === this.readPositions.get(this.me)) return;
    this.readPositions.set(this.me, newest.id);
    call(this.socket, "mark-read", { bamId: this.id, messageId: newest.id })
      .then((ack) => ack.ok && this.onActivity())
      .catch(() => {});
  }
}
