// Shared helpers for the JS end-to-end suite: REST accounts and BAMs over fetch,
// official socket.io-client sockets that record every event, and waits that fail
// with a message saying what did not arrive (never a sleep).

import { randomBytes } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { io } from 'socket.io-client';

export const BASE_URL = process.env.BAMCHAT_URL;
if (!BASE_URL) {
  throw new Error('BAMCHAT_URL is not set: point it at a running BAM Chat server (http://127.0.0.1:PORT).');
}

export const PASSWORD = 'correct-horse-battery-42';
// Where every payload received is written, one JSON line each, for the Python side
// to validate against the published contracts (tests/realtime/test_js_client.py).
const CONTRACT_LOG = process.env.BAMCHAT_CONTRACT_LOG;

/** Note a received payload for the contract check (nothing when no log is set). */
function noteReceived(kind, name, payload, extra = {}) {
  if (!CONTRACT_LOG) return;
  appendFileSync(CONTRACT_LOG, `${JSON.stringify({ kind, name, payload, ...extra })}\n`);
}
// How long an event, an ack or a connection may take (the Python suite's EVENT_TIMEOUT_S).
export const TIMEOUT_MS = 10_000;
// REST calls queue behind password hashing (one worker thread on the server) on a busy
// machine; they only set a test up, so they get more room than realtime events.
export const REST_TIMEOUT_MS = 30_000;
export const MESSAGE_KEYS = [
  'id', 'bamId', 'senderId', 'sender', 'toUserId', 'content', 'text', 'type', 'tempId', 'createdAt',
];

/** A short random suffix so each test owns its accounts and data. */
export function unique(prefix = 'js') {
  return `${prefix}_${randomBytes(5).toString('hex')}`;
}

/** One REST call; checks the status when `expect` is given and returns the parsed body. */
export async function rest(method, path, { token, body, expect } = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(BASE_URL + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(REST_TIMEOUT_MS),
    });
  } catch (err) {
    throw new Error(`${method} ${path} failed (no answer within ${REST_TIMEOUT_MS} ms?): ${err.message}`);
  }
  const raw = await response.text();
  let data = null;
  try {
    data = raw ? JSON.parse(raw) : null;
  } catch {
    data = raw;
  }
  if ((response.headers.get('content-type') || '').startsWith('application/json')) {
    noteReceived('rest', `${method} ${path}`, data, { status: response.status });
  }
  if (expect !== undefined && response.status !== expect) {
    throw new Error(`${method} ${path} -> ${response.status}, wanted ${expect}: ${raw.slice(0, 500)}`);
  }
  return data;
}

/** Register a fresh account and log it in: {id, username, access, refresh}. */
export async function account(prefix = 'js') {
  const username = unique(prefix);
  const user = await rest('POST', '/auth/register', { body: { username, password: PASSWORD }, expect: 201 });
  const pair = await rest('POST', '/auth/token', { body: { username, password: PASSWORD }, expect: 200 });
  return { id: user.id, username, access: pair.access, refresh: pair.refresh };
}

/** A BAM owned by `owner` with `others` as participants. */
export async function createBam(owner, ...others) {
  return rest('POST', '/bams', {
    token: owner.access,
    body: { title: unique('bam'), participantIds: others.map((o) => o.id) },
    expect: 201,
  });
}

/** Post a message over REST as `who`; returns the created message. */
export async function postMessage(who, bamId, text, extra = {}) {
  return rest('POST', `/bams/${bamId}/messages`, { token: who.access, body: { text, ...extra }, expect: 201 });
}

/** Start recording every event `socket` receives, so none is lost before a wait begins. */
export function record(socket) {
  if (socket.received) return socket;
  socket.received = [];
  socket.waiters = new Set();
  socket.onAny((event, ...args) => {
    const payload = args.length === 1 ? args[0] : args;
    noteReceived('event', event, payload);
    socket.received.push({ event, payload });
    for (const waiter of socket.waiters) waiter(event, payload);
  });
  return socket;
}

/** Payloads of `event` recorded so far on `socket`, optionally filtered by `predicate`. */
export function got(socket, event, predicate = () => true) {
  return socket.received.filter((r) => r.event === event && predicate(r.payload)).map((r) => r.payload);
}

/**
 * Resolve with the first `event` payload (already recorded or still to come) for which
 * `predicate` holds; reject after `timeoutMs` naming the event and what did arrive.
 */
export function waitFor(socket, event, predicate = () => true, timeoutMs = TIMEOUT_MS) {
  record(socket);
  const already = got(socket, event, predicate);
  if (already.length) return Promise.resolve(already[0]);
  return new Promise((resolve, reject) => {
    const waiter = (name, payload) => {
      if (name !== event) return;
      let ok = false;
      try {
        ok = predicate(payload);
      } catch {
        ok = false;
      }
      if (!ok) return;
      clearTimeout(timer);
      socket.waiters.delete(waiter);
      resolve(payload);
    };
    const timer = setTimeout(() => {
      socket.waiters.delete(waiter);
      const seen = got(socket, event);
      const counts = {};
      for (const r of socket.received) counts[r.event] = (counts[r.event] || 0) + 1;
      reject(new Error(
        `'${event}' matching ${predicate.toString()} did not arrive within ${timeoutMs} ms ` +
        `(socket ${socket.id ?? 'not connected'}); '${event}' payloads seen: ${JSON.stringify(seen)}; ` +
        `all events: ${JSON.stringify(counts)}`,
      ));
    }, timeoutMs);
    socket.waiters.add(waiter);
  });
}

/** Resolve when `emitter` fires `event` once; reject with a message after `timeoutMs`. */
export function once(emitter, event, what, timeoutMs = TIMEOUT_MS) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, listener);
      reject(new Error(`${what}: '${event}' did not happen within ${timeoutMs} ms`));
    }, timeoutMs);
    const listener = (...args) => {
      clearTimeout(timer);
      resolve(args[0]);
    };
    emitter.once(event, listener);
  });
}

/**
 * Per-test socket factory: every socket it makes is recorded and closed when the test
 * ends (whether it passed or failed).
 */
export function sockets(t) {
  const made = [];
  const agents = [];
  t.after(() => {
    for (const socket of made) socket.close();
    // python-engineio answers a long-poll still pending at close only after
    // pingInterval + pingTimeout; drop it instead of keeping Node alive for it.
    for (const agent of agents) agent.destroy();
  });

  /** Open a socket with `options` (reconnection off) and return it without waiting. */
  function open(options = {}, url = BASE_URL) {
    const agent = new Agent();
    agents.push(agent);
    const socket = io(url, { forceNew: true, reconnection: false, timeout: TIMEOUT_MS, agent, ...options });
    made.push(socket);
    return record(socket);
  }

  /** Open a socket and wait until it is connected; a refusal fails with its error. */
  async function connect(options = {}, url = BASE_URL) {
    const socket = open(options, url);
    if (!socket.connected) {
      await new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`socket did not connect within ${TIMEOUT_MS} ms`)),
          TIMEOUT_MS,
        );
        socket.once('connect', () => {
          clearTimeout(timer);
          resolve();
        });
        socket.once('connect_error', (err) => {
          clearTimeout(timer);
          reject(new Error(`connect refused: ${err.message} ${JSON.stringify(err.data)}`));
        });
      });
    }
    return socket;
  }

  /** Connect as `who` with `auth: {token}` and extra options. */
  const as = (who, options = {}) => connect({ auth: { token: who.access }, ...options });

  /** Open a socket expected to be refused; resolve with the connect_error Error. */
  function refused(options = {}) {
    const socket = open(options);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no connect_error within ${TIMEOUT_MS} ms (options ${JSON.stringify(options)})`)),
        TIMEOUT_MS,
      );
      socket.once('connect', () => {
        clearTimeout(timer);
        reject(new Error(`connection was accepted but should be refused (options ${JSON.stringify(options)})`));
      });
      socket.once('connect_error', (err) => {
        clearTimeout(timer);
        if (err.data !== undefined) noteReceived('event', 'connect_error', { message: err.message, data: err.data });
        resolve(err);
      });
    });
  }

  return { open, connect, as, refused, track: (socket) => { made.push(socket); return record(socket); } };
}

/** Emit with an ack and a timeout; the ack payload, or a clear error if none came. */
export async function call(socket, event, ...args) {
  try {
    const ack = await socket.timeout(TIMEOUT_MS).emitWithAck(event, ...args);
    noteReceived('ack', event, ack);
    return ack;
  } catch (err) {
    throw new Error(`no ack for '${event}' ${JSON.stringify(args)} within ${TIMEOUT_MS} ms: ${err.message}`);
  }
}

/** Join `bamId` and check the ack says ok. */
export async function join(socket, bamId) {
  const ack = await call(socket, 'join-bam', bamId);
  if (!ack || ack.ok !== true) throw new Error(`join-bam ${bamId} refused: ${JSON.stringify(ack)}`);
  return ack;
}

/**
 * Post a marker message over REST and wait until `socket` (in the BAM's room) gets it:
 * every event published to that room before the marker has then been delivered.
 */
export async function fence(socket, who, bamId) {
  const marker = unique('fence');
  await postMessage(who, bamId, marker);
  await waitFor(socket, 'new-message', (m) => m.content === marker);
}
