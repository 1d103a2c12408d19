// One message as a list item. Every piece of user content (text, names, file
// names, emoji) is set as text; links and images only take server-made URLs.

import { el, when } from "./dom.js";

export const QUICK_REACTIONS = ["👍", "❤️", "😂"];

function size(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function attachment(item) {
  if (item.kind === "image" && item.thumbnailUrl) {
    return el(
      "a",
      { class: "attachment image", href: item.url, target: "_blank", rel: "noopener" },
      el("img", {
        src: item.thumbnailUrl,
        alt: item.name,
        width: item.width && Math.min(item.width, 320),
        loading: "lazy",
      }),
    );
  }
  return el(
    "a",
    { class: "attachment file", href: item.url, download: item.name },
    `📎 ${item.name} (${size(item.size)})`,
  );
}

/**
 * The ``<li>`` for a message payload. ``actions`` has ``edit(message)``,
 * ``remove(message)``, ``react(message, emoji, on)``; ``me`` is the viewer's
 * user id, ``seenBy`` the names whose read position is here and ``armed`` whether
 * the delete button waits for its confirming click.
 */
export function messageItem(message, { me, actions, seenBy = [], armed = false }) {
  const mine = message.senderId === me;
  const item = el("li", {
    class: `message${mine ? " mine" : ""}${message.deleted ? " deleted" : ""}`,
    dataset: { id: message.id, seq: String(message.seq), sender: message.senderId },
  });
  const head = el(
    "p",
    { class: "meta" },
    el("span", { class: "sender" }, message.sender.username),
    " ",
    el("time", { datetime: message.createdAt }, when(message.createdAt)),
    message.editedAt && !message.deleted ? el("span", { class: "edited" }, " (edited)") : null,
  );
  item.append(head);
  if (message.deleted) {
    item.append(el("p", { class: "text tombstone" }, "message deleted"));
    return item;
  }
  if (message.content) item.append(el("p", { class: "text" }, message.content));
  if (message.attachments.length) {
    item.append(el("div", { class: "attachments" }, message.attachments.map(attachment)));
  }
  const reactions = el("div", { class: "reactions", "aria-label": "Reactions" });
  const shown = new Set();
  for (const reaction of message.reactions) {
    shown.add(reaction.emoji);
    const on = reaction.userIds.includes(me);
    reactions.append(
      el(
        "button",
        {
          type: "button",
          class: "reaction",
          "aria-pressed": on ? "true" : "false",
          dataset: { emoji: reaction.emoji },
          onclick: () => actions.react(message, reaction.emoji, !on),
        },
        `${reaction.emoji} ${reaction.count}`,
      ),
    );
  }
  item.append(reactions);
  const tools = el("div", { class: "tools" });
  for (const emoji of QUICK_REACTIONS.filter((e) => !shown.has(e))) {
    tools.append(
      el(
        "button",
        {
          type: "button",
          class: "react",
          "aria-label": `React with ${emoji}`,
          dataset: { emoji },
          onclick: () => actions.react(message, emoji, true),
        },
        emoji,
      ),
    );
  }
  if (mine) {
    tools.append(
      el("button", { type: "button", class: "edit", onclick: () => actions.edit(message) }, "Edit"),
    );
    tools.append(
      el(
        "button",
        { type: "button", class: "delete", onclick: () => actions.remove(message) },
        armed ? "Really delete?" : "Delete",
      ),
    );
  }
  item.append(tools);
  if (seenBy.length) item.append(el("p", { class: "seen" }, `Seen by ${seenBy.join(", ")}`));
  return item;
}

/** A message being sent: shown at once, replaced when the server has it. */
export function pendingItem({ tempId, content, files, username }) {
  return el(
    "li",
    { class: "message mine pending", dataset: { tempId } },
    el("p", { class: "meta" }, el("span", { class: "sender" }, username), " ", el("span", { class: "state" }, "sending…")),
    content ? el("p", { class: "text" }, content) : null,
    files.length ? el("p", { class: "attachments" }, files.map((f) => `📎 ${f}`).join(", ")) : null,
  );
}
