import { appRelease } from '@/lib/config';
import { getPrisma } from '@/lib/db';
import { getBuildId } from '@/lib/lifecycle';
import { getRedis, pingRedis, withTimeout } from '@/lib/redis';

export const dynamic = 'force-dynamic';
export const runtime = 'nodejs';

const CHECK_TIMEOUT_MS = 2000;

async function check(name, probe) {
  try {
    await withTimeout(probe(), CHECK_TIMEOUT_MS, name);
    return 'ok';
  } catch (error) {
    return `error: ${error.message.split('\n').filter(Boolean).pop()}`;
  }
}

// 200 when PostgreSQL (through Prisma, so a missing generated client shows here) and Redis answer, 503
// otherwise. buildId is the .next/BUILD_ID this process loaded: the deploy compares it with the release's.
export async function GET() {
  const [database, redis] = await Promise.all([
    check('database', () => getPrisma().$queryRaw`SELECT 1`),
    check('redis', () => pingRedis(getRedis(), CHECK_TIMEOUT_MS)),
  ]);
  const healthy = database === 'ok' && redis === 'ok';
  return Response.json(
    { status: healthy ? 'ok' : 'error', buildId: getBuildId(), release: appRelease(process.env), checks: { database, redis } },
    { status: healthy ? 200 : 503, headers: { 'cache-control': 'no-store' } },
  );
}
