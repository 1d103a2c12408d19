// Server -> client delivery: notifications outside the room, and both transports
// (HTTP long-polling only, and polling upgraded to WebSocket).

import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  account, call, createBam, fence, got, join, once, postMessage, sockets, unique, waitFor,
} from './helpers.mjs';

test('a participant connected but not in the room gets a notification for a new message', async (t) => {
  const { as } = sockets(t);
  const [alice, bob] = await Promise.all([account('alice'), account('bob')]);
  const bam = await createBam(alice, bob);
  const b = await as(bob); // connected, never joins the room
  const a = await as(alice); // the sender, in the room
  await join(a, bam.id);

  const text = `ping ${unique('n')}`;
  const posted = await postMessage(alice, bam.id, text);
  const note = await waitFor(b, 'notification', (n) => n.messageId === posted.id);
  assert.equal(note.type, 'new-message');
  assert.equal(note.bamId, bam.id);
  assert.equal(note.messageId, posted.id);
  assert.equal(note.senderId, alice.id);
  assert.equal(typeof note.preview, 'string');
  assert.equal(note.preview, text, 'a short message is previewed whole');

  // Alice, in the room, gets the message itself rather than a notification.
  await waitFor(a, 'new-message', (m) => m.id === posted.id);
  await fence(a, alice, bam.id);
  assert.deepEqual(got(a, 'notification'), [], 'a member in the room must not be notified');
  assert.deepEqual(got(b, 'new-message'), [], 'a member outside the room must not get new-message');
});

test('polling-only clients connect, join and receive new-message', async (t) => {
  const { as } = sockets(t);
  const alice = await account('poll');
  const bam = await createBam(alice);
  const socket = await as(alice, { transports: ['polling'] });
  assert.equal(socket.io.engine.transport.name, 'polling');

  const ack = await join(socket, bam.id);
  assert.equal(ack.bamId, bam.id);
  const posted = await postMessage(alice, bam.id, 'over long-polling');
  const message = await waitFor(socket, 'new-message', (m) => m.id === posted.id);
  assert.equal(message.content, 'over long-polling');

  const sent = await call(socket, 'send-message', { bamId: bam.id, content: 'polling reply' });
  assert.equal(sent.ok, true, JSON.stringify(sent));
  await waitFor(socket, 'new-message', (m) => m.id === sent.message.id);
  assert.equal(socket.io.engine.transport.name, 'polling', 'a polling-only client must never upgrade');
});

test('the default client upgrades from polling to websocket and keeps receiving', async (t) => {
  const { open } = sockets(t);
  const alice = await account('upgrade');
  const bam = await createBam(alice);

  const socket = open({ auth: { token: alice.access } }); // default transports: polling, then websocket
  const engine = socket.io.engine;
  assert.equal(engine.transport.name, 'polling', 'the default client starts on long-polling');
  const upgraded = once(engine, 'upgrade', 'engine upgrade to websocket');
  upgraded.catch(() => {}); // awaited below, after connect; no unhandled rejection meanwhile
  await once(socket, 'connect', 'connect with default transports');
  const transport = await upgraded;
  assert.equal(transport.name, 'websocket');
  assert.equal(engine.transport.name, 'websocket');

  await join(socket, bam.id);
  const posted = await postMessage(alice, bam.id, 'after the upgrade');
  const message = await waitFor(socket, 'new-message', (m) => m.id === posted.id);
  assert.equal(message.content, 'after the upgrade');
  assert.equal(engine.transport.name, 'websocket');
});

test('websocket-only clients connect, join and receive new-message', async (t) => {
  const { as } = sockets(t);
  const alice = await account('ws');
  const bam = await createBam(alice);
  const socket = await as(alice, { transports: ['websocket'] });
  assert.equal(socket.io.engine.transport.name, 'websocket');

  await join(socket, bam.id);
  const posted = await postMessage(alice, bam.id, 'over websocket');
  const message = await waitFor(socket, 'new-message', (m) => m.id === posted.id);
  assert.equal(message.content, 'over websocket');
});
