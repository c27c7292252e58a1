'use strict';
// One pg pool per process, shared by Prisma (through the pg driver adapter) and by plain SQL. Its size comes
// from the environment that shipshape's connection budget writes (DATABASE_POOL_MAX or connection_limit).
const pg = require('pg');
const { applicationName, databaseConfig } = require('./config');
const { getRole, onShutdown } = require('./lifecycle');

const DB = Symbol.for('shipshape.app.db');

function holder() {
  if (!globalThis[DB]) globalThis[DB] = { pool: null, prisma: null };
  return globalThis[DB];
}

function poolOptions(env, role) {
  const config = databaseConfig(env);
  const hasName = new URL(config.connectionString).searchParams.has('application_name');
  return {
    config,
    options: {
      connectionString: config.connectionString,
      max: config.poolMax,
      connectionTimeoutMillis: config.connectionTimeoutMillis,
      idleTimeoutMillis: 10000,
      ...(hasName ? {} : { application_name: applicationName(env, role) }),
      // Prisma's ?schema= parameter becomes the search_path, as it would with Prisma's own engine.
      ...(config.schema ? { options: `-c search_path="${config.schema.replace(/"/g, '""')}"` } : {}),
    },
  };
}

function getPool() {
  const h = holder();
  if (!h.pool) {
    const { options } = poolOptions(process.env, getRole());
    const pool = new pg.Pool(options);
    // An idle client that loses its connection emits 'error' on the pool; without a listener that is fatal.
    pool.on('error', (error) => console.error(`pg pool: idle client error: ${error.message}`));
    h.pool = pool;
    onShutdown('pg pool', async () => {
      h.pool = null;
      await pool.end();
    });
  }
  return h.pool;
}

function loadPrismaClient() {
  try {
    return require('@prisma/client').PrismaClient;
  } catch (error) {
    const reason = error.message.split('\n')[0];
    throw new Error(`Prisma client is not usable (${reason}): run \`npx prisma generate\` in the release`);
  }
}

function getPrisma() {
  const h = holder();
  if (!h.prisma) {
    const PrismaClient = loadPrismaClient();
    const { PrismaPg } = require('@prisma/adapter-pg');
    const { config } = poolOptions(process.env, getRole());
    const adapter = new PrismaPg(getPool(), config.schema ? { schema: config.schema } : undefined);
    const prisma = new PrismaClient({ adapter });
    h.prisma = prisma;
    // Registered after the pool, so it runs before the pool ends (closers run newest first).
    onShutdown('prisma', async () => {
      h.prisma = null;
      await prisma.$disconnect();
    });
  }
  return h.prisma;
}

module.exports = { getPool, getPrisma, poolOptions };
