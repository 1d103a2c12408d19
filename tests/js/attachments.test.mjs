// Attachments through the browser's own tools: fetch + FormData uploads, signed URLs
// that work without a header (as in <img src>), and messages that carry them.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deflateSync } from 'node:zlib';

import { BASE_URL, REST_TIMEOUT_MS, account, call, createBam, join, rest, sockets, waitFor } from './helpers.mjs';

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes) {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const out = Buffer.alloc(body.length + 8);
  out.writeUInt32BE(data.length, 0);
  body.copy(out, 4);
  out.writeUInt32BE(crc32(body), body.length + 4);
  return out;
}

/** A valid RGB PNG of `width` x `height` with a simple pattern. */
function png(width, height) {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8);
  const rows = [];
  for (let y = 0; y < height; y += 1) {
    const row = Buffer.alloc(1 + width * 3);
    for (let x = 0; x < width; x += 1) row.set([x % 256, y % 256, (x * y) % 256], 1 + x * 3);
    rows.push(row);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(Buffer.concat(rows))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** [width, height] of a PNG or JPEG, read from its header (PNG IHDR or JPEG SOFn). */
function imageSize(bytes) {
  if (bytes.readUInt32BE(0) === 0x89504e47) return [bytes.readUInt32BE(16), bytes.readUInt32BE(20)];
  let at = 2;
  while (at < bytes.length) {
    const marker = bytes[at + 1];
    const length = bytes.readUInt16BE(at + 2);
    if (marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker)) {
      return [bytes.readUInt16BE(at + 7), bytes.readUInt16BE(at + 5)];
    }
    at += 2 + length;
  }
  throw new Error('no image size found');
}

/** Upload `bytes` as multipart field `file`; returns {status, body}. */
async function upload(who, bamId, bytes, filename, type) {
  const form = new FormData();
  form.append('file', new Blob([bytes], { type }), filename);
  const response = await fetch(`${BASE_URL}/bams/${bamId}/attachments`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${who.access}` },
    body: form,
    signal: AbortSignal.timeout(REST_TIMEOUT_MS),
  });
  return { status: response.status, body: await response.json() };
}

/** GET a payload URL (a path) the way an <img> would: no Authorization header. */
async function get(url, headers = {}) {
  const response = await fetch(BASE_URL + url, { headers, signal: AbortSignal.timeout(REST_TIMEOUT_MS) });
  return { response, bytes: Buffer.from(await response.arrayBuffer()) };
}

test('a PNG uploaded with FormData is an image; its signed URLs work without a header', async () => {
  const alice = await account('alice');
  const bam = await createBam(alice);
  const { status, body } = await upload(alice, bam.id, png(640, 320), 'pic.png', 'image/png');
  assert.equal(status, 201, JSON.stringify(body));
  assert.equal(body.kind, 'image');
  assert.equal(body.contentType, 'image/png');
  assert.deepEqual([body.width, body.height], [640, 320]);

  const original = await get(body.url);
  assert.equal(original.response.status, 200);
  assert.equal(original.response.headers.get('content-type'), 'image/png');
  assert.equal(original.response.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(original.bytes.length, body.size);

  const thumb = await get(body.thumbnailUrl);
  assert.equal(thumb.response.status, 200);
  assert.match(thumb.response.headers.get('content-type'), /^image\/(png|jpeg)$/);
  assert.deepEqual(imageSize(thumb.bytes), [320, 160]);
});

test('HTML sent as image/png is a file, downloaded as attachment and never sniffed', async () => {
  const alice = await account('alice');
  const bam = await createBam(alice);
  const html = Buffer.from('<html><script>alert(1)</script></html>');
  const { status, body } = await upload(alice, bam.id, html, 'x.png', 'image/png');
  assert.equal(status, 201, JSON.stringify(body));
  assert.equal(body.kind, 'file');
  assert.equal(body.thumbnailUrl, null);
  const { response, bytes } = await get(body.url);
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-disposition'), /^attachment/);
  assert.equal(response.headers.get('content-type'), 'application/octet-stream');
  assert.equal(response.headers.get('x-content-type-options'), 'nosniff');
  assert.deepEqual(bytes, html);
});

test('send-message with attachmentIds reaches the room with the attachments', async (t) => {
  const { as } = sockets(t);
  const [alice, bob, eve] = await Promise.all([account('alice'), account('bob'), account('eve')]);
  const bam = await createBam(alice, bob);
  const { body: att } = await upload(alice, bam.id, png(100, 50), 'small.png', 'image/png');
  const a = await as(alice);
  const b = await as(bob);
  await join(b, bam.id);

  const ack = await call(a, 'send-message', { bamId: bam.id, content: '', attachmentIds: [att.id] });
  assert.equal(ack.ok, true, JSON.stringify(ack));
  const seen = await waitFor(b, 'new-message', (m) => m.id === ack.message.id);
  assert.equal(seen.content, '');
  assert.deepEqual(seen.attachments.map((x) => x.id), [att.id]);
  assert.equal((await get(seen.attachments[0].url)).response.status, 200);

  const again = await call(a, 'send-message', { bamId: bam.id, content: 'x', attachmentIds: [att.id] });
  assert.equal(again.ok, false);
  assert.equal(again.error.code, 'invalid');

  // Without the signature, a participant's token works and an outsider's does not.
  const bare = `/attachments/${att.id}`;
  assert.equal((await get(bare, { Authorization: `Bearer ${bob.access}` })).response.status, 200);
  assert.equal((await get(bare, { Authorization: `Bearer ${eve.access}` })).response.status, 404);
  const history = await rest('GET', `/bams/${bam.id}/messages`, { token: bob.access, expect: 200 });
  const stored = history.results.find((m) => m.id === seen.id);
  assert.deepEqual(stored.attachments.map((x) => x.id), [att.id]);
});
