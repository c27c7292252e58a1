'use strict';
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Readable, Writable } = require('node:stream');
const { afterEach, beforeEach, test } = require('node:test');
const { UploadError, discardBody, receiveMultipart, safeFileName } = require('../lib/upload');

const BOUNDARY = '----shipshape-test-boundary';
const CONTENT_TYPE = `multipart/form-data; boundary=${BOUNDARY}`;

function multipart(parts) {
  const chunks = [];
  for (const part of parts) {
    // Like a browser: file parts carry a filename and a type, plain fields neither.
    const headers = part.filename
      ? `Content-Disposition: form-data; name="${part.field}"; filename="${part.filename}"\r\nContent-Type: application/octet-stream`
      : `Content-Disposition: form-data; name="${part.field}"`;
    chunks.push(Buffer.from(`--${BOUNDARY}\r\n${headers}\r\n\r\n`));
    chunks.push(part.data);
    chunks.push(Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${BOUNDARY}--\r\n`));
  return Buffer.concat(chunks);
}

// A readable that hands the body over in small chunks, like a socket does.
function streamOf(buffer, chunkSize = 64 * 1024) {
  return Readable.from((function* chunks() {
    for (let offset = 0; offset < buffer.length; offset += chunkSize) yield buffer.subarray(offset, offset + chunkSize);
  })());
}

let dir;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uploads-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a file is streamed to the upload directory intact', async () => {
  const data = crypto.randomBytes(3 * 1024 * 1024 + 17);
  const body = multipart([{ field: 'note', data: Buffer.from('hello') }, { field: 'file', filename: 'photo.jpg', data }]);
  const stored = await receiveMultipart(streamOf(body), CONTENT_TYPE, { dir, maxBytes: 20 * 1024 * 1024 });
  assert.equal(stored.length, 1);
  assert.equal(stored[0].size, data.length);
  assert.equal(stored[0].sha256, crypto.createHash('sha256').update(data).digest('hex'));
  assert.match(stored[0].name, /-photo\.jpg$/);
  assert.deepEqual(fs.readFileSync(path.join(dir, stored[0].name)), data);
  assert.deepEqual(fs.readdirSync(dir), [stored[0].name], 'no partial files are left behind');
});

test('a file over the limit is refused with 413 and nothing is kept', async () => {
  const body = multipart([{ field: 'file', filename: 'big.bin', data: crypto.randomBytes(300 * 1024) }]);
  await assert.rejects(
    receiveMultipart(streamOf(body), CONTENT_TYPE, { dir, maxBytes: 256 * 1024 }),
    (error) => error instanceof UploadError && error.status === 413,
  );
  assert.deepEqual(fs.readdirSync(dir), []);
});

test('a body over the limit is refused even when the file part alone would fit', async () => {
  const body = multipart([
    { field: 'padding', data: Buffer.alloc(200 * 1024, 0x61) },
    { field: 'file', filename: 'small.bin', data: crypto.randomBytes(100 * 1024) },
  ]);
  await assert.rejects(
    receiveMultipart(streamOf(body), CONTENT_TYPE, { dir, maxBytes: 256 * 1024 }),
    (error) => error.status === 413,
  );
  assert.deepEqual(fs.readdirSync(dir), []);
});

test('a body exactly at the limit is accepted', async () => {
  const overhead = multipart([{ field: 'file', filename: 'x.bin', data: Buffer.alloc(0) }]).length;
  const data = crypto.randomBytes(64 * 1024 - overhead);
  const body = multipart([{ field: 'file', filename: 'x.bin', data }]);
  assert.equal(body.length, 64 * 1024);
  const stored = await receiveMultipart(streamOf(body), CONTENT_TYPE, { dir, maxBytes: 64 * 1024 });
  assert.equal(stored[0].size, data.length);
});

test('a refused body is still read to its end, so the client gets the 413 instead of a reset', async () => {
  const body = multipart([{ field: 'file', filename: 'big.bin', data: crypto.randomBytes(300 * 1024) }]);
  const source = streamOf(body);
  await assert.rejects(receiveMultipart(source, CONTENT_TYPE, { dir, maxBytes: 256 * 1024 }), (e) => e.status === 413);
  assert.equal(source.readableEnded, true);
});

test('a refused body far over the limit is cut off instead of read forever', async () => {
  const source = streamOf(crypto.randomBytes(1024 * 1024));
  await assert.rejects(
    receiveMultipart(source, CONTENT_TYPE, { dir, maxBytes: 128 * 1024 }),
    (e) => e.status === 413,
  );
  assert.equal(source.readableEnded, false);
  assert.equal(source.destroyed, true);
});

test('discardBody reads up to the cap and reports what it threw away', async () => {
  assert.equal(await discardBody(streamOf(Buffer.alloc(1000)), 4096), 1000);
  const long = streamOf(Buffer.alloc(100 * 1024), 1024);
  assert.ok((await discardBody(long, 4096)) <= 4096 + 1024);
  assert.equal(long.destroyed, true);
});

test('a body that is not multipart, or has no file, is refused', async () => {
  await assert.rejects(receiveMultipart(streamOf(Buffer.from('{}')), 'application/json', { dir, maxBytes: 1024 }), (e) => e.status === 415);
  const noFile = multipart([{ field: 'note', data: Buffer.from('hello') }]);
  await assert.rejects(receiveMultipart(streamOf(noFile), CONTENT_TYPE, { dir, maxBytes: 1024 }), (e) => e.status === 400);
});

test('a truncated body is refused and its partial file removed', async () => {
  const body = multipart([{ field: 'file', filename: 'cut.bin', data: crypto.randomBytes(200 * 1024) }]);
  await assert.rejects(
    receiveMultipart(streamOf(body.subarray(0, 100 * 1024)), CONTENT_TYPE, { dir, maxBytes: 1024 * 1024 }),
    (e) => e.status === 400,
  );
  assert.deepEqual(fs.readdirSync(dir), []);
});

test('a file that cannot be written (disk full) fails the upload instead of leaving it hanging', { timeout: 5000 }, async () => {
  const original = fs.createWriteStream;
  fs.createWriteStream = () =>
    new Writable({
      write(_chunk, _encoding, callback) {
        callback(Object.assign(new Error('no space left on device'), { code: 'ENOSPC' }));
      },
    });
  try {
    const body = multipart([{ field: 'file', filename: 'a.bin', data: crypto.randomBytes(512 * 1024) }]);
    await assert.rejects(
      receiveMultipart(streamOf(body), CONTENT_TYPE, { dir, maxBytes: 1024 * 1024 }),
      (error) => error.code === 'ENOSPC',
    );
  } finally {
    fs.createWriteStream = original;
  }
});

test('safeFileName keeps uploads inside the directory', () => {
  assert.equal(safeFileName('../../etc/passwd'), 'passwd');
  assert.equal(safeFileName('..\\..\\boot.ini'), 'boot.ini');
  assert.equal(safeFileName('.env'), 'env');
  assert.equal(safeFileName('my photo (1).jpg'), 'my_photo_1_.jpg');
  assert.equal(safeFileName(''), 'upload.bin');
  assert.equal(safeFileName('..'), 'upload.bin');
  assert.ok(safeFileName(`${'a'.repeat(300)}.jpg`).length <= 100);
  assert.match(safeFileName(`${'a'.repeat(300)}.jpg`), /\.jpg$/);
});
