'use strict';
// BullMQ consumer of the "campaigns" queue. Run it directly (`node worker.js`) under supervisor, one instance.
// SIGTERM: stop taking jobs, let the current job finish, close the connections, exit 0.
const os = require('node:os');
const { Worker } = require('bullmq');
const { appRelease, drainTimeoutMs, envInteger, requireEnv } = require('./lib/config');
const { JOB_CANARY, JOB_SEND_CAMPAIGN, QUEUE_NAME, closeRedis, createRedis } = require('./lib/redis');
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

  const processor = async (job) => {
    if (job.name === JOB_CANARY) {
      // Proves this worker can take a job and reach the database; the deploy's smoke test waits for it.
      await prisma.$queryRaw`SELECT 1`;
      return { release, pid: process.pid, host: os.hostname() };
    }
    if (job.name === JOB_SEND_CAMPAIGN) {
      return sendCampaign(prisma, job.data.campaignId, { delayMs: sendDelayMs, log });
    }
    throw new Error(`unknown job name "${job.name}"`);
  };

  const worker = new Worker(QUEUE_NAME, processor, { connection, concurrency });
  const active = new Set();
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
  worker.on('error', (error) => log.error(`worker error: ${error.message}`));
  worker.on('ready', () => log.info(`ready: queue "${QUEUE_NAME}", concurrency ${concurrency}, release ${release}`));

  installGracefulShutdown({
    log,
    drainMs: drainTimeoutMs(process.env),
    // close() stops fetching jobs and resolves once the active ones have finished.
    drain: () => worker.close(),
    describePending: () => `active job(s): ${[...active].join(', ') || 'none'}`,
  });
}

try {
  main();
} catch (error) {
  log.error(`cannot start: ${error.message}`);
  process.exit(1);
}
