'use strict';
// Streams a multipart/form-data body to disk: nothing is buffered in memory, so the size limit is
// UPLOAD_MAX_BYTES and not a framework default (outage 002: a 1 MB limit dropped uploads).
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { finished, pipeline } = require('node:stream/promises');
const busboy = require('busboy');

class UploadError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// A file name that is safe to join to the upload directory: no directories, no dot files, a short ASCII name.
function safeFileName(name) {
  const base = path.basename(String(name || '').replace(/\\/g, '/'));
  const cleaned = base.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[._]+/, '').slice(-100);
  return cleaned || 'upload.bin';
}

// Resolves when `stream` can take more data, or has failed or closed (finished() reports those).
function drained(stream) {
  return new Promise((resolve) => {
    const done = () => {
      stream.off('drain', done);
      stream.off('close', done);
      stream.off('error', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
    stream.on('error', done);
  });
}

// After an answer is decided (a 413), the rest of the body is read and thrown away, up to `capBytes`, so the
// client or nginx reads the answer instead of a reset (nginx calls this a lingering close). Past the cap the
// stream is destroyed, which closes the connection.
async function discardBody(body, capBytes) {
  let discarded = 0;
  try {
    for await (const chunk of body) {
      discarded += chunk.length;
      if (discarded > capBytes) {
        body.destroy();
        break;
      }
    }
  } catch {
    // The client went away; there is nobody left to answer.
  }
  return discarded;
}

// Reads `body` (a Node Readable of a multipart body) into files under `dir`. Resolves to the stored files, or
// rejects with UploadError(413) past maxBytes (the whole body counts, chunked or not) and UploadError(400) on
// a malformed body; partial files are removed either way.
async function receiveMultipart(body, contentType, { dir, maxBytes }) {
  if (!/^multipart\/form-data\b/i.test(contentType || '')) {
    await discardBody(body, maxBytes);
    throw new UploadError(415, 'send the file as multipart/form-data (curl -F file=@path)');
  }
  await fs.promises.mkdir(dir, { recursive: true });
  let parser;
  try {
    parser = busboy({ headers: { 'content-type': contentType }, limits: { fileSize: maxBytes, files: 10, fields: 20 } });
  } catch (error) {
    await discardBody(body, maxBytes);
    throw new UploadError(400, `malformed multipart body: ${error.message}`);
  }

  const written = [];
  const stored = [];
  const fileWrites = [];
  let failure = null;
  const fail = (error) => {
    if (!failure) failure = error;
  };

  parser.on('file', (field, stream, info) => {
    const name = safeFileName(info.filename);
    const storedName = `${Date.now()}-${crypto.randomBytes(4).toString('hex')}-${name}`;
    const finalPath = path.join(dir, storedName);
    const partPath = path.join(dir, `.${storedName}.part`);
    written.push(partPath);
    const hash = crypto.createHash('sha256');
    let size = 0;
    stream.on('data', (chunk) => {
      size += chunk.length;
      hash.update(chunk);
    });
    stream.on('limit', () => fail(new UploadError(413, `file "${name}" exceeds UPLOAD_MAX_BYTES (${maxBytes} bytes)`)));
    fileWrites.push(
      pipeline(stream, fs.createWriteStream(partPath, { mode: 0o640 }))
        .then(async () => {
          if (failure) return;
          await fs.promises.rename(partPath, finalPath);
          written.push(finalPath);
          stored.push({ field, name: storedName, size, sha256: hash.digest('hex') });
        })
        .catch(fail),
    );
  });
  const parsed = finished(parser).catch((error) =>
    fail(error instanceof UploadError ? error : new UploadError(400, `malformed multipart body: ${error.message}`)),
  );

  // The body is read here rather than piped, so that after a failure the rest can be discarded (see
  // discardBody) instead of leaving the connection half-read.
  let received = 0;
  let discarded = 0;
  try {
    for await (const chunk of body) {
      received += chunk.length;
      if (failure) {
        // A failure can come from busboy or from writing a file (disk full): stop parsing either way.
        if (!parser.destroyed) parser.destroy(failure);
        discarded += chunk.length;
        if (discarded > maxBytes) {
          body.destroy();
          break;
        }
        continue;
      }
      if (received > maxBytes) {
        fail(new UploadError(413, `upload exceeds UPLOAD_MAX_BYTES (${maxBytes} bytes)`));
        parser.destroy(failure);
        continue;
      }
      if (!parser.write(chunk)) await drained(parser);
    }
    if (failure) parser.destroy(failure);
    else parser.end();
  } catch (error) {
    fail(new UploadError(400, `upload aborted: ${error.message}`));
    parser.destroy(failure);
  }
  await parsed;
  await Promise.all(fileWrites);
  if (!failure && stored.length === 0) failure = new UploadError(400, 'the body has no file part');
  if (failure) {
    await Promise.all(written.map((file) => fs.promises.rm(file, { force: true })));
    throw failure;
  }
  return stored;
}

module.exports = { UploadError, discardBody, receiveMultipart, safeFileName };
