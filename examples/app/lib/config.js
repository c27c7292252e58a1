'use strict';
// Reads the environment contract that shipshape writes into the app's env file. Every function here is pure
// (it takes `env` and returns values or throws an Error that names the variable), so node --test covers it.
const net = require('node:net');
const path = require('node:path');

const DEV_DATABASE_URL = 'postgresql://postgres@127.0.0.1:5432/shipshape';
const DEV_REDIS_URL = 'redis://127.0.0.1:6379/0';

// Query parameters that only Prisma's Rust engine understands. node-postgres would pass unknown ones through
// as client options, so they are removed before the URL reaches pg.
const PRISMA_ONLY_PARAMS = [
  'connection_limit',
  'pool_timeout',
  'pgbouncer',
  'schema',
  'socket_timeout',
  'statement_cache_size',
  'sslaccept',
];

const DEFAULT_POOL_MAX = 5;
const DEFAULT_POOL_TIMEOUT_SECONDS = 10;
const DEFAULT_DRAIN_TIMEOUT_MS = 25000;
const DEFAULT_UPLOAD_MAX_BYTES = 20 * 1024 * 1024;

class ConfigError extends Error {
  constructor(message) {
    super(message);
    this.name = 'ConfigError';
  }
}

function isProduction(env) {
  return env.NODE_ENV === 'production';
}

function positiveInteger(name, raw) {
  const text = String(raw).trim();
  if (!/^\d+$/.test(text) || Number(text) < 1 || !Number.isSafeInteger(Number(text))) {
    throw new ConfigError(`${name}=${JSON.stringify(raw)} is not a positive integer`);
  }
  return Number(text);
}

function nonNegativeInteger(name, raw) {
  const text = String(raw).trim();
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) {
    throw new ConfigError(`${name}=${JSON.stringify(raw)} is not a whole number`);
  }
  return Number(text);
}

// An optional whole-number variable: the fallback when unset, an error naming the variable when malformed.
function envInteger(env, name, fallback, min = 1) {
  if (env[name] === undefined || String(env[name]).trim() === '') return fallback;
  const value = nonNegativeInteger(name, env[name]);
  if (value < min) throw new ConfigError(`${name}=${value} must be at least ${min}`);
  return value;
}

// Names from `required` that are unset or empty. Used at start-up so a process with an incomplete env file
// refuses to run and says which names are missing (never their values).
function missingEnv(env, required) {
  return required.filter((name) => env[name] === undefined || String(env[name]).trim() === '');
}

function requireEnv(env, required, processName) {
  if (!isProduction(env)) return;
  const missing = missingEnv(env, required);
  if (missing.length > 0) {
    throw new ConfigError(
      `${processName}: required environment variables are not set: ${missing.join(', ')}. ` +
        'Add them to the env file that supervisor loads, then restart the program.',
    );
  }
}

// Accepts plain bytes ("20971520") or nginx-style sizes ("20m", "512k", "1g", also "20mb"), so the value can
// be derived from the same `app_max_body_size` that sets nginx's client_max_body_size.
function parseByteSize(raw, name = 'size') {
  const match = /^\s*(\d+)\s*([kmg]?)b?\s*$/i.exec(String(raw));
  if (!match) {
    throw new ConfigError(`${name}=${JSON.stringify(raw)} is not a size: use bytes (20971520) or 20m, 512k, 1g`);
  }
  const factor = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[match[2].toLowerCase()];
  const bytes = Number(match[1]) * factor;
  if (bytes < 1 || !Number.isSafeInteger(bytes)) {
    throw new ConfigError(`${name}=${JSON.stringify(raw)} must be at least 1 byte`);
  }
  return bytes;
}

// DATABASE_URL as the toolkit writes it: postgresql://user:pass@host:5432/db?connection_limit=N&pool_timeout=S.
// Returns what node-postgres needs: a URL without Prisma-only parameters, and pool settings taken from
// DATABASE_POOL_MAX first, then connection_limit, then a small default.
function databaseConfig(env) {
  let raw = env.DATABASE_URL;
  if (!raw) {
    if (isProduction(env)) {
      throw new ConfigError('DATABASE_URL is not set: add it to the env file (postgresql://user:pass@host:5432/db)');
    }
    raw = DEV_DATABASE_URL;
  }
  let url;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError('DATABASE_URL is not a valid URL (expected postgresql://user:pass@host:5432/db)');
  }
  if (url.protocol !== 'postgresql:' && url.protocol !== 'postgres:') {
    throw new ConfigError(`DATABASE_URL has scheme "${url.protocol}", expected postgresql:`);
  }
  const params = url.searchParams;
  const connectionLimit = params.get('connection_limit');
  const poolTimeout = params.get('pool_timeout');
  const schema = params.get('schema') || undefined;
  for (const name of PRISMA_ONLY_PARAMS) params.delete(name);

  let poolMax = DEFAULT_POOL_MAX;
  if (env.DATABASE_POOL_MAX !== undefined && String(env.DATABASE_POOL_MAX).trim() !== '') {
    poolMax = positiveInteger('DATABASE_POOL_MAX', env.DATABASE_POOL_MAX);
  } else if (connectionLimit !== null) {
    poolMax = positiveInteger('DATABASE_URL connection_limit', connectionLimit);
  }
  // Prisma's pool_timeout is in seconds and 0 means "wait forever"; pg's connectionTimeoutMillis agrees on 0.
  const timeoutSeconds =
    poolTimeout === null ? DEFAULT_POOL_TIMEOUT_SECONDS : nonNegativeInteger('DATABASE_URL pool_timeout', poolTimeout);

  return {
    connectionString: url.toString(),
    poolMax,
    connectionTimeoutMillis: timeoutSeconds * 1000,
    schema,
  };
}

function redisUrl(env) {
  const raw = env.REDIS_URL;
  if (!raw) {
    if (isProduction(env)) {
      throw new ConfigError('REDIS_URL is not set: add it to the env file (redis://:password@127.0.0.1:6379/0)');
    }
    return DEV_REDIS_URL;
  }
  let url;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError('REDIS_URL is not a valid URL (expected redis://:password@127.0.0.1:6379/0)');
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new ConfigError(`REDIS_URL has scheme "${url.protocol}", expected redis: or rediss:`);
  }
  return raw;
}

// The listen address. Only IPv4 literals are accepted: "localhost" may resolve to ::1 only and "::" may be an
// IPv6-only socket, and nginx's upstream is 127.0.0.1 (outage I7). A shell's own HOSTNAME (the machine's
// name) is refused for the same reason instead of being resolved.
function listenAddress(env, defaultPort) {
  const hostname = env.HOSTNAME === undefined || env.HOSTNAME === '' ? '127.0.0.1' : String(env.HOSTNAME).trim();
  if (!net.isIPv4(hostname)) {
    throw new ConfigError(
      `HOSTNAME=${JSON.stringify(hostname)} is not an IPv4 address. Set HOSTNAME=127.0.0.1 (behind nginx) ` +
        'or 0.0.0.0; names such as localhost and IPv6 addresses are refused (they can bind ::1 only).',
    );
  }
  const port = env.PORT === undefined || env.PORT === '' ? defaultPort : positiveInteger('PORT', env.PORT);
  if (port > 65535) throw new ConfigError(`PORT=${port} is out of range (1-65535)`);
  return { hostname, port };
}

function drainTimeoutMs(env) {
  if (env.DRAIN_TIMEOUT_MS === undefined || env.DRAIN_TIMEOUT_MS === '') return DEFAULT_DRAIN_TIMEOUT_MS;
  return positiveInteger('DRAIN_TIMEOUT_MS', env.DRAIN_TIMEOUT_MS);
}

function uploadConfig(env, cwd = process.cwd()) {
  const maxBytes =
    env.UPLOAD_MAX_BYTES === undefined || env.UPLOAD_MAX_BYTES === ''
      ? DEFAULT_UPLOAD_MAX_BYTES
      : parseByteSize(env.UPLOAD_MAX_BYTES, 'UPLOAD_MAX_BYTES');
  return { dir: path.resolve(cwd, env.UPLOAD_DIR || './uploads'), maxBytes };
}

function appRelease(env) {
  return env.APP_RELEASE || 'dev';
}

// application_name shows up in pg_stat_activity, so connections can be counted per program (shipshape's
// diagnose does). An application_name already in DATABASE_URL wins.
function applicationName(env, role) {
  return `${env.APP_NAME || 'app'}-${role}`.slice(0, 63);
}

module.exports = {
  ConfigError,
  DEFAULT_DRAIN_TIMEOUT_MS,
  DEFAULT_POOL_MAX,
  DEFAULT_UPLOAD_MAX_BYTES,
  appRelease,
  applicationName,
  databaseConfig,
  drainTimeoutMs,
  envInteger,
  isProduction,
  listenAddress,
  missingEnv,
  parseByteSize,
  redisUrl,
  requireEnv,
  uploadConfig,
};
