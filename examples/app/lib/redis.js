'use strict';
// Redis connections and the BullMQ queues. The queue and job names are the contract between the web
// (producer), worker.js (consumer) and scripts/canary.js.
const IORedis = require('ioredis');
const { redisUrl } = require('./config');
const { onShutdown } = require('./lifecycle');

const QUEUE_NAME = 'campaigns';
// The deploy's canary has a queue of its own, which the worker consumes beside the campaigns: on the
// campaigns queue it would wait behind every campaign queued or running, and a long one would fail the
// canary (and roll back a good release) although the worker is healthy.
const CANARY_QUEUE_NAME = 'canary';
const JOB_SEND_CAMPAIGN = 'send-campaign';
const JOB_CANARY = 'canary';

const REDIS = Symbol.for('shipshape.app.redis');

function holder() {
  if (!globalThis[REDIS]) globalThis[REDIS] = { client: null, queue: null };
  return globalThis[REDIS];
}

// A new connection. `blocking` connections (BullMQ workers, QueueEvents) must retry forever; request/response
// connections fail a command after one retry so a Redis outage turns into a 503, not a hung request.
function createRedis(name, { blocking = false } = {}) {
  const client = new IORedis(redisUrl(process.env), {
    connectionName: name,
    maxRetriesPerRequest: blocking ? null : 1,
    connectTimeout: 5000,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2000),
  });
  let lastError = '';
  client.on('error', (error) => {
    // ioredis emits an error on every reconnect attempt; log each distinct message once.
    if (error.message !== lastError) console.error(`redis (${name}): ${error.message}`);
    lastError = error.message;
  });
  client.on('ready', () => {
    lastError = '';
  });
  return Object.assign(client, { lastError: () => lastError });
}

// QUIT when connected (replies in flight are delivered first); a client that is not connected would queue
// QUIT until Redis came back, so it is disconnected at once instead.
async function closeRedis(client) {
  if (client.status !== 'ready') {
    client.disconnect();
    return;
  }
  try {
    await withTimeout(client.quit(), 2000, 'redis QUIT');
  } catch {
    client.disconnect();
  }
}

function getRedis() {
  const h = holder();
  if (!h.client) {
    const client = createRedis('web');
    h.client = client;
    onShutdown('redis', async () => {
      h.client = null;
      await closeRedis(client);
    });
  }
  return h.client;
}

function getCampaignQueue() {
  const h = holder();
  if (!h.queue) {
    const { Queue } = require('bullmq');
    const queue = new Queue(QUEUE_NAME, { connection: getRedis() });
    h.queue = queue;
    onShutdown('campaign queue', async () => {
      h.queue = null;
      await queue.close();
    });
  }
  return h.queue;
}

// PING, with the connection's own error (refused, NOAUTH, ...) rather than ioredis's retry message.
async function pingRedis(client, ms) {
  try {
    await withTimeout(client.ping(), ms, 'redis PING');
  } catch (error) {
    const cause = client.status !== 'ready' && client.lastError && client.lastError();
    throw cause ? new Error(`unreachable: ${cause}`) : error;
  }
}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

module.exports = {
  CANARY_QUEUE_NAME,
  JOB_CANARY,
  JOB_SEND_CAMPAIGN,
  QUEUE_NAME,
  closeRedis,
  createRedis,
  getCampaignQueue,
  getRedis,
  pingRedis,
  withTimeout,
};
