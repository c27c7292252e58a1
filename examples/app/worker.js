'use strict';
// BullMQ consumer of the "campaigns" queue. Run it directly (`node worker.js`) under supervisor, one instance.
// SIGTERM: stop taking jobs, let the current job finish, close the connections, exit 0.
const os = require('node:os');
const { Worker } = require('bullmq');
const { appRelease, drainTimeoutMs, envInteger, requireEnv } = require('./lib/config');
const { CANARY_QUEUE_NAME, JOB_CANARY, JOB_SEND_CAMPAIGN, QUEUE_NAME, closeRedis, createRedis } = require('./lib/redis');
const { getPrisma } = require('./lib/db');
const { markCampaignFailed, sendCampaign } = require('./lib/campaigns');
const { installGracefulShutdown, logger, onShutdown, setRole } = require('./lib/lifecycle');

const log = logger('worker');

function main() {
  setRole('worker');
  requireEnv(process.env, ['DATABASE_URL', 'REDIS_URL'], 'worker');
  const release = appRelease(process.env);
  const concurrency = envInteger(process.env, 'WORKER_CONCURRENCY', 1);
  const sendDelayMs = envInteger(process.env, 'SEND_DELAY_MS', 5, 0);
  const prisma = getPrisma();
  const connection = createRedis('worker', { blocking: true });
  onShutdown('redis', () => closeRedis(connection));
  // The canary's queue has its own connection: a worker blocks its connection while it waits for a job.
  const canaryConnection = createRedis('worker-canary', { blocking: true });
  onShutdown('redis (canary)', () => closeRedis(canaryConnection));

  const processCampaign = async (job) => {
    if (job.name === JOB_SEND_CAMPAIGN) {
      return sendCampaign(prisma, job.data.campaignId, { delayMs: sendDelayMs, log });
    }
    throw new Error(`unknown job name "${job.name}"`);
  };
  // Proves this worker process takes jobs and reaches the database; the deploy's smoke test waits for it.
  // It runs beside the campaigns (its own queue, one at a time), so a busy worker still answers at once.
  const processCanary = async (job) => {
    if (job.name !== JOB_CANARY) throw new Error(`unknown job name "${job.name}" on the canary queue`);
    await prisma.$queryRaw`SELECT 1`;
    return { release, pid: process.pid, host: os.hostname() };
  };

  const workers = [
    new Worker(QUEUE_NAME, processCampaign, { connection, concurrency }),
    new Worker(CANARY_QUEUE_NAME, processCanary, { connection: canaryConnection, concurrency: 1 }),
  ];
  const active = new Set();
  for (const worker of workers) {
    const queue = worker.name;
    worker.on('active', (job) => {
      active.add(job.id);
      log.info(`job ${job.id} (${job.name}) started`);
    });
    worker.on('completed', (job) => {
      active.delete(job.id);
      log.info(`job ${job.id} (${job.name}) completed`);
    });
    worker.on('failed', (job, error) => {
      if (!job) return;
      active.delete(job.id);
      const attempts = job.opts.attempts || 1;
      log.error(`job ${job.id} (${job.name}) failed, attempt ${job.attemptsMade} of ${attempts}: ${error.message}`);
      if (job.name === JOB_SEND_CAMPAIGN && job.attemptsMade >= attempts) {
        markCampaignFailed(prisma, job.data.campaignId, error.message).catch((e) =>
          log.error(`could not mark campaign ${job.data.campaignId} FAILED: ${e.message}`),
        );
      }
    });
    worker.on('error', (error) => log.error(`worker error on queue "${queue}": ${error.message}`));
    worker.on('ready', () => log.info(`ready: queue "${queue}", release ${release}`));
  }
  log.info(`consuming "${QUEUE_NAME}" (concurrency ${concurrency}) and "${CANARY_QUEUE_NAME}", release ${release}`);

  installGracefulShutdown({
    log,
    drainMs: drainTimeoutMs(process.env),
    // close() stops fetching jobs and resolves once the active ones have finished.
    drain: () => Promise.all(workers.map((worker) => worker.close())),
    describePending: () => `active job(s): ${[...active].join(', ') || 'none'}`,
  });
}

try {
  main();
} catch (error) {
  log.error(`cannot start: ${error.message}`);
  process.exit(1);
}
