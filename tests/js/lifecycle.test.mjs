// Message lifecycle through the official client: edit, delete, react and mark-read
// seen live by a second user, and replayed in order with sinceSeq.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { account, call, createBam, got, join, rest, sockets, waitFor } from './helpers.mjs';

test('edit, react, mark-read and delete reach the room, and replay with sinceSeq', async (t) => {
  const { as } = sockets(t);
  const [alice, bob] = await Promise.all([account('alice'), account('bob')]);
  const bam = await createBam(alice, bob);
  const a = await as(alice);
  const b = await as(bob);
  await join(a, bam.id);
  await join(b, bam.id);

  const sent = await call(a, 'send-message', { bamId: bam.id, content: 'helo' });
  assert.equal(sent.ok, true, JSON.stringify(sent));
  const id = sent.message.id;
  assert.equal(sent.message.seq, 1);
  assert.equal(sent.message.editedAt, null);
  assert.equal(sent.message.deleted, false);
  assert.deepEqual(sent.message.reactions, []);

  const edited = await call(a, 'edit-message', { messageId: id, content: 'hello' });
  assert.equal(edited.ok, true, JSON.stringify(edited));
  const update = await waitFor(b, 'message-updated');
  assert.deepEqual(
    { id: update.id, seq: update.seq, content: update.content, text: update.text },
    { id, seq: 2, content: 'hello', text: 'hello' },
  );

  const reacted = await call(b, 'react', { messageId: id, emoji: '👍' });
  assert.deepEqual(reacted, { ok: true, reactions: [{ emoji: '👍', count: 1, userIds: [bob.id] }] });
  const reaction = await waitFor(a, 'reaction-updated');
  assert.equal(reaction.on, true);
  assert.equal(reaction.count, 1);
  assert.equal(reaction.seq, 3);

  const read = await call(b, 'mark-read', { bamId: bam.id, messageId: id });
  assert.deepEqual(read, { ok: true, bamId: bam.id, messageId: id, unreadCount: 0 });
  const receipt = await waitFor(a, 'read-receipt');
  assert.equal(receipt.userId, bob.id);
  assert.equal(receipt.messageId, id);

  const deleted = await call(a, 'delete-message', { messageId: id });
  assert.deepEqual(deleted, { ok: true, messageId: id });
  const gone = await waitFor(b, 'message-deleted');
  assert.equal(gone.seq, 4);

  const refused = await call(b, 'react', { messageId: id, emoji: '👍' });
  assert.equal(refused.ok, false);
  assert.equal(refused.error.code, 'not_found');

  // A client that saw seq 1 only comes back and gets 2..4, in order, once.
  const c = await as(bob);
  const replay = await call(c, 'join-bam', { bamId: bam.id, sinceSeq: 1 });
  assert.equal(replay.ok, true, JSON.stringify(replay));
  assert.equal(replay.missed, 3);
  assert.equal(replay.lastSeq, 4);
  const names = c.received.filter((r) => r.payload && r.payload.seq).map((r) => [r.event, r.payload.seq]);
  assert.deepEqual(names, [['message-updated', 2], ['reaction-updated', 3], ['message-deleted', 4]]);
  assert.equal(got(c, 'message-updated')[0].content, null, 'a deleted message\'s old content was replayed');

  const history = await rest('GET', `/bams/${bam.id}/messages`, { token: bob.access, expect: 200 });
  assert.equal(history.results[0].deleted, true);
  assert.equal(history.results[0].content, null);
});
