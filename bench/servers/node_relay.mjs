// Reference server (4): a bare Node socket.io@4 relay speaking just enough of the
// BAM Chat contract for bench/loadgen.mjs to drive it like BAM Chat.
//
//   node bench/servers/node_relay.mjs --port 8001 [--host 127.0.0.1]
//
// Auth: the handshake's `auth.token` is taken as the user id (no checking).
// Events: join-bam (ack), leave-bam (ack), typing-start / typing-stop ->
// typing-status to the room (sender excluded), send-message -> new-message to
// the room (sender included, ack with the message). Nothing is stored.
// GET /health answers 200 so the harness knows the server is up.
import { createServer } from "node:http";
import { Server } from "socket.io";

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const host = arg("host", "127.0.0.1");
const port = Number(arg("port", "0"));
if (host !== "127.0.0.1" && host !== "localhost") {
  console.error("node_relay: loopback only");
  process.exit(2);
}

const http = createServer((req, res) => {
  if (req.url === "/health" || req.url === "/health/") {
    res.writeHead(200, { "content-type": "application/json" });
    res.end('{"ok":true}');
    return;
  }
  res.writeHead(404);
  res.end();
});

// Library defaults (perMessageDeflate off, pingInterval 25 s, pingTimeout 20 s),
// except the same payload cap as BAM Chat.
const io = new Server(http, { maxHttpBufferSize: 64 * 1024 });

let nextMessageId = 1;

function bamIdOf(payload) {
  const raw = payload && typeof payload === "object" ? payload.bamId : payload;
  if (typeof raw !== "string" && typeof raw !== "number") return null;
  return String(raw);
}

function ackOf(args) {
  const last = args[args.length - 1];
  return typeof last === "function" ? last : () => {};
}

io.on("connection", (socket) => {
  const token = socket.handshake.auth && socket.handshake.auth.token;
  const userId = String(token ?? socket.id);
  const username = `user${userId}`;
  socket.data.userId = userId;
  socket.join(`user-${userId}`);

  socket.on("join-bam", (...args) => {
    const ack = ackOf(args);
    const bamId = bamIdOf(args[0]);
    if (bamId === null) return ack({ ok: false, error: { code: "invalid", message: "bamId" } });
    const room = `bam-${bamId}`;
    socket.join(room);
    socket.to(room).emit("user-joined-bam", {
      bamId,
      userId,
      username,
      at: new Date().toISOString(),
    });
    const online = new Set();
    for (const sid of io.sockets.adapter.rooms.get(room) ?? []) {
      const other = io.sockets.sockets.get(sid);
      if (other) online.add(other.data.userId);
    }
    ack({ ok: true, bamId, onlineUsers: [...online], missed: 0 });
  });

  socket.on("leave-bam", (...args) => {
    const ack = ackOf(args);
    const bamId = bamIdOf(args[0]);
    if (bamId === null) return ack({ ok: false, error: { code: "invalid", message: "bamId" } });
    const room = `bam-${bamId}`;
    socket.leave(room);
    io.to(room).emit("user-left-bam", { bamId, userId, username, at: new Date().toISOString() });
    ack({ ok: true, bamId });
  });

  const typing = (isTyping) => (...args) => {
    const ack = ackOf(args);
    const bamId = bamIdOf(args[0]);
    if (bamId === null) return ack({ ok: false, error: { code: "invalid", message: "bamId" } });
    socket.to(`bam-${bamId}`).emit("typing-status", { bamId, userId, username, isTyping });
    ack({ ok: true });
  };
  socket.on("typing-start", typing(true));
  socket.on("typing-stop", typing(false));

  socket.on("send-message", (...args) => {
    const ack = ackOf(args);
    const payload = args[0];
    const bamId = bamIdOf(payload);
    const content = payload && (payload.content ?? payload.text);
    if (bamId === null || typeof content !== "string") {
      return ack({ ok: false, error: { code: "invalid", message: "bad message" } });
    }
    const message = {
      id: String(nextMessageId++),
      bamId,
      senderId: userId,
      sender: { id: userId, username },
      toUserId: null,
      content,
      text: content,
      type: payload.type ?? "text",
      tempId: payload.tempId ?? null,
      createdAt: new Date().toISOString(),
    };
    io.to(`bam-${bamId}`).emit("new-message", message);
    ack({ ok: true, message });
  });
});

http.listen(port, host, () => {
  console.log(`node_relay listening on ${host}:${http.address().port}`);
});

for (const sig of ["SIGTERM", "SIGINT"]) {
  process.on(sig, () => {
    io.close();
    process.exit(0);
  });
}
