import { Readable } from 'node:stream';
import { uploadConfig } from '@/lib/config';
import { UploadError, discardBody, receiveMultipart } from '@/lib/upload';

export const dynamic = 'force-dynamic';
export const runtime = 'nodejs';

// POST multipart/form-data; every file part is streamed into UPLOAD_DIR (the shared uploads directory of the
// deployment). Bodies over UPLOAD_MAX_BYTES get 413: at once when Content-Length says so, else when the
// count passes the limit.
export async function POST(request) {
  const { dir, maxBytes } = uploadConfig(process.env);
  if (!request.body) return Response.json({ error: 'empty body' }, { status: 400 });
  const body = Readable.fromWeb(request.body);
  const declared = Number(request.headers.get('content-length') || 0);
  if (declared > maxBytes) {
    // Answer now and read the rest of the body in the background, so the client gets this answer rather
    // than a reset, and the connection does not stay half-read (which would also hold up a graceful stop).
    void discardBody(body, maxBytes);
    return Response.json({ error: `upload of ${declared} bytes exceeds UPLOAD_MAX_BYTES (${maxBytes} bytes)` }, { status: 413 });
  }
  try {
    const files = await receiveMultipart(body, request.headers.get('content-type'), { dir, maxBytes });
    return Response.json({ files }, { status: 201 });
  } catch (error) {
    if (error instanceof UploadError) return Response.json({ error: error.message }, { status: error.status });
    console.error(`upload failed: ${error.stack || error.message}`);
    return Response.json({ error: 'upload failed' }, { status: 500 });
  }
}
