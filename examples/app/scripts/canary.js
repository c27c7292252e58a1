#!/usr/bin/env node
'use strict';
// Deploy smoke test for the worker: enqueues a "canary" job on the worker's canary queue (its own, so that
// campaigns queued or running do not delay it) and waits for a worker to complete it. Exit 0: a worker took the job and reached the database. Exit 1: it failed or nobody took it in
// time. Exit 2: a worker of another release answered (an old worker is still running). Exit 3: bad setup.
//   node scripts/canary.js [--timeout-ms 30000]
const { QueueEvents, Queue } = require('bullmq');
const { ConfigError, appRelease, envInteger } = require('../lib/config');
const { CANARY_QUEUE_NAME, JOB_CANARY, closeRedis, createRedis, withTimeout } = require('../lib/redis');

function timeoutFromArgs(argv, env) {
  const index = argv.indexOf('--timeout-ms');
  if (index !== -1) return envInteger({ '--timeout-ms': argv[index + 1] }, '--timeout-ms', 30000);
  return envInteger(env, 'CANARY_TIMEOUT_MS', 30000);
}

async function main() {
  const timeoutMs = timeoutFromArgs(process.argv.slice(2), process.env);
  // Only compare releases when this run was told which one to expect.
  const expectedRelease = process.env.APP_RELEASE ? appRelease(process.env) : null;
  const queueConnection = createRedis('canary');
  const eventsConnection = createRedis('canary-events', { blocking: true });
  const queue = new Queue(CANARY_QUEUE_NAME, { connection: queueConnection });
  const events = new QueueEvents(CANARY_QUEUE_NAME, { connection: eventsConnection });
  const started = Date.now();
  let job;
  try {
    await withTimeout(events.waitUntilReady(), timeoutMs, `connecting to Redis at REDIS_URL`);
    job = await queue.add(
      JOB_CANARY,
      { requestedAt: new Date().toISOString(), expectedRelease },
      { attempts: 1, removeOnComplete: { age: 3600 }, removeOnFail: { age: 86400 } },
    );
    let result;
    try {
      result = await job.waitUntilFinished(events, timeoutMs);
    } catch (error) {
      const timedOut = /timed out|ttl/i.test(error.message);
      await job.remove().catch(() => {});
      if (timedOut) {
        return fail(
          1,
          `no worker completed canary job ${job.id} on queue "${CANARY_QUEUE_NAME}" within ${timeoutMs} ms: ` +
            'is the worker program RUNNING (supervisorctl status) and connected to the same REDIS_URL?',
        );
      }
      return fail(1, `the worker failed canary job ${job.id}: ${error.message}`);
    }
    const elapsed = Date.now() - started;
    if (expectedRelease && result && result.release !== expectedRelease) {
      return fail(
        2,
        `canary job ${job.id} was completed by a worker of release ${result.release} (pid ${result.pid}), ` +
          `expected ${expectedRelease}: an old worker is still consuming the queue`,
      );
    }
    console.log(
      `canary: OK in ${elapsed} ms: job ${job.id} completed by pid ${result.pid} on ${result.host}, ` +
        `release ${result.release}`,
    );
    return 0;
  } finally {
    // BullMQ's close() waits on its connections; when Redis is unreachable that would never end.
    await Promise.allSettled([closeRedis(queueConnection), closeRedis(eventsConnection)]);
    await Promise.allSettled([withTimeout(queue.close(), 2000, 'close'), withTimeout(events.close(), 2000, 'close')]);
  }
}

function fail(code, message) {
  console.error(`canary: FAILED: ${message}`);
  return code;
}

main()
  .then((code) => process.exit(code))
  .catch((error) => {
    const code = error instanceof ConfigError ? 3 : 1;
    console.error(`canary: FAILED: ${error.message}`);
    process.exit(code);
  });
