// Every client -> server event of the SPEC, with acks, through the official client.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  MESSAGE_KEYS, account, call, createBam, fence, got, join, rest, sockets, unique, waitFor,
} from './helpers.mjs';

const ISO_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00)$/;

/** Two participants of one BAM: alice (owner) and bob. */
async function pair() {
  const [alice, bob] = await Promise.all([account('alice'), account('bob')]);
  const bam = await createBam(alice, bob);
  return { alice, bob, bam };
}

test('join-bam takes a bare string id or {bamId} and acks bamId, onlineUsers, missed', async (t) => {
  const { as } = sockets(t);
  const { alice, bob, bam } = await pair();
  const a = await as(alice);
  const b = await as(bob);

  const first = await call(a, 'join-bam', bam.id);
  assert.equal(first.ok, true, JSON.stringify(first));
  assert.equal(first.bamId, bam.id);
  assert.deepEqual(first.onlineUsers, [alice.id]);
  assert.equal(first.missed, 0);

  const second = await call(b, 'join-bam', { bamId: bam.id });
  assert.equal(second.ok, true, JSON.stringify(second));
  assert.equal(second.bamId, bam.id);
  assert.deepEqual([...second.onlineUsers].sort(), [alice.id, bob.id].sort());
  assert.equal(second.missed, 0);
});

test('send-message acks {ok, message} and the room, sender included, gets new-message', async (t) => {
  const { as } = sockets(t);
  const { alice, bob, bam } = await pair();
  const a = await as(alice);
  const b = await as(bob);
  await join(a, bam.id);
  await join(b, bam.id);

  const tempId = unique('temp');
  const ack = await call(a, 'send-message', { bamId: bam.id, content: 'Hello world!', type: 'text', tempId });
  assert.equal(ack.ok, true, JSON.stringify(ack));
  const message = ack.message;
  for (const key of MESSAGE_KEYS) assert.ok(key in message, `ack message lacks '${key}': ${JSON.stringify(message)}`);
  assert.equal(typeof message.id, 'string');
  assert.equal(message.bamId, bam.id);
  assert.equal(message.senderId, alice.id);
  assert.deepEqual({ id: message.sender.id, username: message.sender.username }, { id: alice.id, username: alice.username });
  assert.equal(message.content, 'Hello world!');
  assert.equal(message.text, 'Hello world!');
  assert.equal(message.type, 'text');
  assert.equal(message.tempId, tempId);
  assert.equal(message.toUserId, null);
  assert.match(message.createdAt, ISO_UTC);

  const atBob = await waitFor(b, 'new-message', (m) => m.id === message.id);
  assert.deepEqual(
    Object.fromEntries(MESSAGE_KEYS.map((k) => [k, atBob[k]])),
    Object.fromEntries(MESSAGE_KEYS.map((k) => [k, message[k]])),
  );
  await waitFor(a, 'new-message', (m) => m.id === message.id);
});

test('the same tempId twice stores one message: both acks carry its id, one new-message', async (t) => {
  const { as } = sockets(t);
  const { alice, bob, bam } = await pair();
  const a = await as(alice);
  const b = await as(bob);
  await join(a, bam.id);
  await join(b, bam.id);

  const tempId = unique('dup');
  const once = await call(a, 'send-message', { bamId: bam.id, content: 'only once', tempId });
  const again = await call(a, 'send-message', { bamId: bam.id, content: 'only once', tempId });
  assert.equal(once.ok, true, JSON.stringify(once));
  assert.equal(again.ok, true, JSON.stringify(again));
  assert.equal(again.message.id, once.message.id);

  await fence(b, alice, bam.id);
  const copies = got(b, 'new-message', (m) => m.tempId === tempId);
  assert.equal(copies.length, 1, `bob got ${copies.length} new-message for one tempId: ${JSON.stringify(copies)}`);
  const history = await rest('GET', `/bams/${bam.id}/messages`, { token: bob.access, expect: 200 });
  assert.equal(history.results.filter((m) => m.tempId === tempId).length, 1, JSON.stringify(history.results));
});

test('typing-start / typing-stop reach the other member as typing-status, not the typist', async (t) => {
  const { as } = sockets(t);
  const { alice, bob, bam } = await pair();
  const a = await as(alice);
  const b = await as(bob);
  await join(a, bam.id);
  await join(b, bam.id);

  const start = await call(a, 'typing-start', bam.id);
  assert.equal(start.ok, true, JSON.stringify(start));
  const typing = await waitFor(b, 'typing-status', (e) => e.userId === alice.id && e.isTyping === true);
  assert.deepEqual(typing, { bamId: bam.id, userId: alice.id, username: alice.username, isTyping: true });

  const stop = await call(a, 'typing-stop', bam.id);
  assert.equal(stop.ok, true, JSON.stringify(stop));
  const stopped = await waitFor(b, 'typing-status', (e) => e.userId === alice.id && e.isTyping === false);
  assert.deepEqual(stopped, { bamId: bam.id, userId: alice.id, username: alice.username, isTyping: false });

  await fence(a, bob, bam.id);
  assert.deepEqual(got(a, 'typing-status'), [], 'the typist must not get its own typing-status');
});

test('status-change acks the status and sends presence-update to a co-participant', async (t) => {
  const { as } = sockets(t);
  const { alice, bob } = await pair();
  const b = await as(bob); // connected, shares a BAM with alice, not in its room
  const a = await as(alice);

  const away = await call(a, 'status-change', 'away');
  assert.deepEqual(away, { ok: true, status: 'away' });
  const update = await waitFor(b, 'presence-update', (e) => e.userId === alice.id && e.status === 'away');
  assert.ok('lastSeen' in update, `presence-update lacks lastSeen: ${JSON.stringify(update)}`);
  await waitFor(a, 'presence-update', (e) => e.userId === alice.id && e.status === 'away');

  const busy = await call(a, 'status-change', { status: 'busy' });
  assert.deepEqual(busy, { ok: true, status: 'busy' });
  await waitFor(b, 'presence-update', (e) => e.userId === alice.id && e.status === 'busy');
});

test('leave-bam acks bamId and the other member gets user-left-bam', async (t) => {
  const { as } = sockets(t);
  const { alice, bob, bam } = await pair();
  const a = await as(alice);
  const b = await as(bob);
  await join(a, bam.id);
  await join(b, bam.id);

  const ack = await call(a, 'leave-bam', bam.id);
  assert.deepEqual(ack, { ok: true, bamId: bam.id });
  const left = await waitFor(b, 'user-left-bam', (e) => e.userId === alice.id);
  assert.equal(left.bamId, bam.id);
  assert.equal(left.username, alice.username);
  assert.match(left.at, ISO_UTC);
});

test('join-bam tells the members already in the room with user-joined-bam', async (t) => {
  const { as } = sockets(t);
  const { alice, bob, bam } = await pair();
  const b = await as(bob);
  await join(b, bam.id);
  const a = await as(alice);
  await join(a, bam.id);

  const joined = await waitFor(b, 'user-joined-bam', (e) => e.userId === alice.id);
  assert.equal(joined.bamId, bam.id);
  assert.equal(joined.username, alice.username);
  assert.match(joined.at, ISO_UTC);
});

test("an outsider's join-bam is not_found, like a BAM that does not exist", async (t) => {
  const { as } = sockets(t);
  const [owner, outsider] = await Promise.all([account('owner'), account('outsider')]);
  const bam = await createBam(owner);
  const socket = await as(outsider);

  const ack = await call(socket, 'join-bam', bam.id);
  assert.equal(ack.ok, false, JSON.stringify(ack));
  assert.equal(ack.error?.code, 'not_found');
  assert.equal(typeof ack.error?.message, 'string');

  const missing = await call(socket, 'join-bam', { bamId: '987654321' });
  assert.equal(missing.ok, false, JSON.stringify(missing));
  assert.equal(missing.error?.code, 'not_found');
  assert.ok(socket.connected);
});

test('bad input acks invalid, keeps the socket connected and writes nothing', async (t) => {
  const { as } = sockets(t);
  const alice = await account('alice');
  const bam = await createBam(alice);
  const socket = await as(alice);
  let disconnected = null;
  socket.on('disconnect', (reason) => { disconnected = reason; });
  await join(socket, bam.id);

  const cases = [
    ['send-message', { bamId: bam.id, content: 42 }],
    ['send-message', { content: 'no bam id' }],
    ['join-bam', {}],
    ['status-change', 'sleeping'],
    ['no-such-event', { bamId: bam.id }],
  ];
  for (const [event, payload] of cases) {
    const ack = await call(socket, event, payload);
    const what = `${event} ${JSON.stringify(payload)} -> ${JSON.stringify(ack)}`;
    assert.equal(ack.ok, false, what);
    assert.equal(ack.error?.code, 'invalid', what);
    assert.equal(typeof ack.error?.message, 'string', what);
    assert.ok(socket.connected, `socket dropped after ${what}`);
  }

  // Still usable, and none of the rejected sends left a message behind.
  const ok = await call(socket, 'send-message', { bamId: bam.id, content: 'after the bad ones' });
  assert.equal(ok.ok, true, JSON.stringify(ok));
  assert.equal(disconnected, null, `socket disconnected: ${disconnected}`);
  const history = await rest('GET', `/bams/${bam.id}/messages`, { token: alice.access, expect: 200 });
  assert.deepEqual(history.results.map((m) => m.content), ['after the bad ones']);
});
