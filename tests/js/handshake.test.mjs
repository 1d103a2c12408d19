// Connecting with the official client: the seed's own snippet, and the handshake's
// token sources and refusals (SPEC "Connecting").

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { io } from 'socket.io-client';

import {
  BASE_URL, MESSAGE_KEYS, account, call, createBam, join, postMessage, sockets, waitFor,
} from './helpers.mjs';

const ISO_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00)$/;

test("the seed's client snippet joins on connect and gets a REST message as new-message", async (t) => {
  const { as, track } = sockets(t);
  const [alice, bob] = await Promise.all([account('seed'), account('seed')]);
  const bam = await createBam(bob, alice);
  const watcher = await as(bob);
  await join(watcher, bam.id);

  // Exactly the seed's client code: default options, auth.token, join-bam on connect.
  const socket = track(io(BASE_URL, { auth: { token: alice.access } }));
  socket.on('connect', () => {
    socket.emit('join-bam', bam.id);
  });
  // Alice is in the room once the room's other member hears that she joined.
  await waitFor(watcher, 'user-joined-bam', (e) => e.userId === alice.id && e.bamId === bam.id);

  const posted = await postMessage(bob, bam.id, 'Hello world!', { toUserId: alice.id });
  const message = await waitFor(socket, 'new-message', (m) => m.id === posted.id);

  for (const key of MESSAGE_KEYS) assert.ok(key in message, `new-message lacks '${key}': ${JSON.stringify(message)}`);
  assert.equal(typeof message.id, 'string');
  assert.equal(message.bamId, bam.id);
  assert.equal(typeof message.bamId, 'string');
  assert.equal(message.senderId, bob.id);
  assert.equal(typeof message.senderId, 'string');
  assert.deepEqual({ id: message.sender.id, username: message.sender.username }, { id: bob.id, username: bob.username });
  assert.equal(message.toUserId, alice.id);
  assert.equal(message.content, 'Hello world!');
  assert.equal(message.text, message.content);
  assert.equal(message.type, 'text');
  assert.equal(message.tempId, null);
  assert.match(message.createdAt, ISO_UTC);
  assert.ok(!Number.isNaN(Date.parse(message.createdAt)), `createdAt unparsable: ${message.createdAt}`);
});

test('a handshake without any token is refused with auth_required', async (t) => {
  const { refused } = sockets(t);
  const err = await refused({});
  assert.equal(err.data?.code, 'auth_required', `connect_error: ${err.message} ${JSON.stringify(err.data)}`);
  assert.equal(typeof err.message, 'string');
  assert.ok(err.message.length > 0);
});

test('a garbage token is refused with auth_invalid', async (t) => {
  const { refused } = sockets(t);
  const err = await refused({ auth: { token: 'not-a.jwt.at-all' } });
  assert.equal(err.data?.code, 'auth_invalid', `connect_error: ${err.message} ${JSON.stringify(err.data)}`);
});

test('a refresh token used as the access token is refused with auth_invalid', async (t) => {
  const { refused } = sockets(t);
  const me = await account('refresh');
  const err = await refused({ auth: { token: me.refresh } });
  assert.equal(err.data?.code, 'auth_invalid', `connect_error: ${err.message} ${JSON.stringify(err.data)}`);
});

test('a token in extraHeaders Authorization: Bearer, or in the query string, connects as that user', async (t) => {
  const { connect } = sockets(t);
  const me = await account('header');
  const bam = await createBam(me);
  const byHeader = await connect({ extraHeaders: { Authorization: `Bearer ${me.access}` } });
  const byQuery = await connect({ query: { token: me.access } });
  // Joining my own BAM proves each socket is authenticated as me (others get not_found).
  for (const [how, socket] of [['extraHeaders', byHeader], ['query', byQuery]]) {
    assert.ok(socket.connected, `${how} socket not connected`);
    const ack = await call(socket, 'join-bam', bam.id);
    assert.equal(ack.ok, true, `${how}: ${JSON.stringify(ack)}`);
    assert.ok(ack.onlineUsers.includes(me.id), `${how}: onlineUsers ${JSON.stringify(ack.onlineUsers)} lacks ${me.id}`);
  }
});
