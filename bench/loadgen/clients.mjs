// Socket.IO clients as the phases use them: connect, join, retry like
// socket.io-client's reconnection, close.
import { io } from "socket.io-client";

import { cfg, now, sleep } from "./config.mjs";

// ---- clients -------------------------------------------------------------------------
function connect(client) {
  const socket = io(client.url, {
    transports: ["websocket"],
    auth: { token: client.token },
    reconnection: false,
    forceNew: true,
    timeout: cfg.connectTimeout,
  });
  return new Promise((resolve, reject) => {
    // The client library has no timeout once the transport is open and the
    // Socket.IO CONNECT is pending, and says nothing if the server then drops
    // the transport: watch both, so every attempt ends.
    let settled = false;
    const fail = (why) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(new Error(why));
      socket.close();
    };
    const timer = setTimeout(() => fail("connect timeout"), cfg.connectTimeout);
    socket.once("connect", () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once("connect_error", (err) => fail(`connect_error: ${err.message}`));
    socket.io.once("close", (reason) => {
      if (!socket.connected) fail(`closed while connecting: ${reason}`);
    });
  });
}

async function connectAndJoin(client, setup) {
  const t0 = now();
  const socket = await connect(client);
  if (setup) setup(socket);
  let ack;
  try {
    ack = await socket.timeout(cfg.ackTimeout).emitWithAck("join-bam", { bamId: client.bamId });
  } catch (err) {
    socket.close();
    throw new Error(`join-bam: ${err.message}`);
  }
  if (!ack || ack.ok !== true) {
    socket.close();
    const err = new Error(`join-bam refused: ${JSON.stringify(ack)}`);
    err.refused = true; // an answer, not a connection failure: no retry
    throw err;
  }
  return { socket, ms: now() - t0 };
}

// Connect + join every client, `concurrency` at a time. With `retry`, a client
// whose connection fails tries again the way socket.io-client's reconnection
// does (1 s doubling to 5 s, +-50 % jitter) until `patienceAt`: the time until
// everyone is in then includes what a server's refusals cost its users.
export async function connectAll(clients, concurrency, setup, { retry = false, patienceAt = Infinity } = {}) {
  const sockets = new Array(clients.length).fill(null);
  const times = [];
  const errors = {};
  let failed = 0;
  let retries = 0;
  let next = 0;
  const note = (err) => {
    const key = String(err.message).slice(0, 80);
    errors[key] = (errors[key] || 0) + 1;
  };
  async function worker() {
    while (next < clients.length) {
      const i = next++;
      const t0 = now();
      for (let attempt = 1; ; attempt++) {
        try {
          const { socket } = await connectAndJoin(clients[i], setup && ((s) => setup(s, i)));
          sockets[i] = socket;
          times.push(now() - t0);
          break;
        } catch (err) {
          note(err);
          const delay = Math.min(1000 * 2 ** (attempt - 1), 5000) * (0.5 + Math.random());
          if (!retry || err.refused || now() + delay > patienceAt) {
            failed++;
            break;
          }
          retries++;
          await sleep(delay);
        }
      }
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, clients.length)) }, worker));
  return { sockets, times, errors, failed, retries };
}

export async function closeAll(sockets) {
  for (const s of sockets) if (s) s.disconnect();
  await sleep(200);
}

