'use strict';
const assert = require('node:assert/strict');
const path = require('node:path');
const { test } = require('node:test');
const {
  ConfigError,
  DEFAULT_POOL_MAX,
  applicationName,
  databaseConfig,
  drainTimeoutMs,
  envInteger,
  listenAddress,
  missingEnv,
  parseByteSize,
  redisUrl,
  requireEnv,
  uploadConfig,
} = require('../lib/config');

const URL_WITH_PRISMA_PARAMS = 'postgresql://app:s3cret@db.internal:5432/shop?connection_limit=7&pool_timeout=15';

test('databaseConfig takes the pool size from connection_limit and strips Prisma-only parameters', () => {
  const config = databaseConfig({ DATABASE_URL: URL_WITH_PRISMA_PARAMS });
  assert.equal(config.poolMax, 7);
  assert.equal(config.connectionTimeoutMillis, 15000);
  assert.equal(config.connectionString, 'postgresql://app:s3cret@db.internal:5432/shop');
});

test('DATABASE_POOL_MAX wins over connection_limit', () => {
  const config = databaseConfig({ DATABASE_URL: URL_WITH_PRISMA_PARAMS, DATABASE_POOL_MAX: '3' });
  assert.equal(config.poolMax, 3);
});

test('an empty DATABASE_POOL_MAX falls back to connection_limit, then to the default', () => {
  assert.equal(databaseConfig({ DATABASE_URL: URL_WITH_PRISMA_PARAMS, DATABASE_POOL_MAX: '' }).poolMax, 7);
  assert.equal(databaseConfig({ DATABASE_URL: 'postgresql://a:b@h/db' }).poolMax, DEFAULT_POOL_MAX);
});

test('parameters that pg understands are kept, the schema parameter is returned separately', () => {
  const config = databaseConfig({
    DATABASE_URL: 'postgres://a:b@h:5433/db?sslmode=require&schema=tenant_1&pgbouncer=true&application_name=x',
  });
  const url = new URL(config.connectionString);
  assert.equal(url.searchParams.get('sslmode'), 'require');
  assert.equal(url.searchParams.get('application_name'), 'x');
  assert.equal(url.searchParams.has('schema'), false);
  assert.equal(url.searchParams.has('pgbouncer'), false);
  assert.equal(config.schema, 'tenant_1');
  assert.equal(url.port, '5433');
});

test('a password with URL-encoded characters survives the rewrite', () => {
  const config = databaseConfig({ DATABASE_URL: 'postgresql://app:p%40ss%2Fw0rd@h/db?connection_limit=2' });
  assert.equal(decodeURIComponent(new URL(config.connectionString).password), 'p@ss/w0rd');
});

test('pool_timeout=0 means no timeout, as in Prisma', () => {
  assert.equal(databaseConfig({ DATABASE_URL: 'postgresql://a@h/db?pool_timeout=0' }).connectionTimeoutMillis, 0);
});

test('bad pool settings are refused with the name of the setting', () => {
  assert.throws(() => databaseConfig({ DATABASE_URL: 'postgresql://a@h/db?connection_limit=0' }), /connection_limit/);
  assert.throws(() => databaseConfig({ DATABASE_URL: 'postgresql://a@h/db?connection_limit=ten' }), /connection_limit/);
  assert.throws(() => databaseConfig({ DATABASE_URL: 'postgresql://a@h/db', DATABASE_POOL_MAX: '-1' }), /DATABASE_POOL_MAX/);
  assert.throws(() => databaseConfig({ DATABASE_URL: 'mysql://a@h/db' }), /expected postgresql/);
});

test('DATABASE_URL and REDIS_URL are required in production and defaulted in development', () => {
  assert.throws(() => databaseConfig({ NODE_ENV: 'production' }), (error) => error instanceof ConfigError && /DATABASE_URL/.test(error.message));
  assert.throws(() => redisUrl({ NODE_ENV: 'production' }), /REDIS_URL is not set/);
  assert.match(databaseConfig({}).connectionString, /^postgresql:\/\/.*127\.0\.0\.1:5432\//);
  assert.equal(redisUrl({}), 'redis://127.0.0.1:6379/0');
  assert.throws(() => redisUrl({ REDIS_URL: 'http://127.0.0.1:6379' }), /expected redis/);
});

test('missingEnv names unset and blank variables only', () => {
  assert.deepEqual(missingEnv({ A: 'x', B: '', C: '  ' }, ['A', 'B', 'C', 'D']), ['B', 'C', 'D']);
  assert.throws(
    () => requireEnv({ NODE_ENV: 'production', DATABASE_URL: 'postgresql://u:secretvalue@h/db' }, ['DATABASE_URL', 'REDIS_URL'], 'web'),
    (error) => /REDIS_URL/.test(error.message) && !/secretvalue/.test(error.message),
  );
  assert.doesNotThrow(() => requireEnv({}, ['DATABASE_URL'], 'web'));
});

test('parseByteSize reads bytes and nginx-style sizes', () => {
  assert.equal(parseByteSize('20971520'), 20971520);
  assert.equal(parseByteSize('20m'), 20 * 1024 * 1024);
  assert.equal(parseByteSize('20MB'), 20 * 1024 * 1024);
  assert.equal(parseByteSize('512k'), 512 * 1024);
  assert.equal(parseByteSize('1g'), 1024 ** 3);
  for (const bad of ['', '20 MiB', '1.5m', '-1', '0', 'twenty']) {
    assert.throws(() => parseByteSize(bad, 'UPLOAD_MAX_BYTES'), /UPLOAD_MAX_BYTES/, bad);
  }
});

test('uploadConfig resolves UPLOAD_DIR against the working directory and defaults to 20 MiB', () => {
  assert.deepEqual(uploadConfig({}, '/srv/app/releases/r1'), { dir: '/srv/app/releases/r1/uploads', maxBytes: 20971520 });
  const shared = uploadConfig({ UPLOAD_DIR: '/srv/app/shared/uploads', UPLOAD_MAX_BYTES: '15m' }, '/x');
  assert.equal(shared.dir, path.resolve('/srv/app/shared/uploads'));
  assert.equal(shared.maxBytes, 15 * 1024 * 1024);
});

test('listenAddress accepts IPv4 literals only (outage I7)', () => {
  assert.deepEqual(listenAddress({}, 3000), { hostname: '127.0.0.1', port: 3000 });
  assert.deepEqual(listenAddress({ HOSTNAME: '0.0.0.0', PORT: '3005' }, 3000), { hostname: '0.0.0.0', port: 3005 });
  for (const hostname of ['localhost', '::', '::1', 'web-01.example.com']) {
    assert.throws(() => listenAddress({ HOSTNAME: hostname }, 3000), /not an IPv4 address/, hostname);
  }
  assert.throws(() => listenAddress({ PORT: '70000' }, 3000), /out of range/);
  assert.throws(() => listenAddress({ PORT: '30a' }, 3000), /PORT/);
});

test('drain time defaults below supervisor stopwaitsecs and can be set', () => {
  assert.equal(drainTimeoutMs({}), 25000);
  assert.ok(drainTimeoutMs({}) < 30000);
  assert.equal(drainTimeoutMs({ DRAIN_TIMEOUT_MS: '5000' }), 5000);
  assert.throws(() => drainTimeoutMs({ DRAIN_TIMEOUT_MS: '0' }), /DRAIN_TIMEOUT_MS/);
});

test('envInteger applies the fallback, the minimum and the name', () => {
  assert.equal(envInteger({}, 'SEND_DELAY_MS', 5, 0), 5);
  assert.equal(envInteger({ SEND_DELAY_MS: '0' }, 'SEND_DELAY_MS', 5, 0), 0);
  assert.throws(() => envInteger({ WORKER_CONCURRENCY: '0' }, 'WORKER_CONCURRENCY', 1), /WORKER_CONCURRENCY=0/);
});

test('applicationName tells the programs apart and fits PostgreSQL', () => {
  assert.equal(applicationName({ APP_NAME: 'shop' }, 'worker'), 'shop-worker');
  assert.equal(applicationName({}, 'web'), 'app-web');
  assert.equal(applicationName({ APP_NAME: 'x'.repeat(80) }, 'web').length, 63);
});
