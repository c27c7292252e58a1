import { Readable } from 'node:stream';
import { uploadConfig } from '@/lib/config';
import { UploadError, receiveMultipart } from '@/lib/upload';

export const dynamic = 'force-dynamic';
export const runtime = 'nodejs';

// POST multipart/form-data; every file part is streamed into UPLOAD_DIR (the release's shared uploads
// directory). Bodies over UPLOAD_MAX_BYTES get 413, before reading when Content-Length says so.
export async function POST(request) {
  const { dir, maxBytes } = uploadConfig(process.env);
  const declared = Number(request.headers.get('content-length') || 0);
  if (declared > maxBytes) {
    return Response.json(
      { error: `upload of ${declared} bytes exceeds UPLOAD_MAX_BYTES (${maxBytes} bytes)` },
      { status: 413, headers: { connection: 'close' } },
    );
  }
  if (!request.body) return Response.json({ error: 'empty body' }, { status: 400 });
  try {
    const files = await receiveMultipart(Readable.fromWeb(request.body), request.headers.get('content-type'), {
      dir,
      maxBytes,
    });
    return Response.json({ files }, { status: 201 });
  } catch (error) {
    if (error instanceof UploadError) {
      return Response.json({ error: error.message }, { status: error.status, headers: { connection: 'close' } });
    }
    console.error(`upload failed: ${error.stack || error.message}`);
    return Response.json({ error: 'upload failed' }, { status: 500 });
  }
}
