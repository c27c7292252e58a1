#!/usr/bin/env node
'use strict';
// npm run migrate: applies the SQL migrations in prisma/migrations with node-postgres (no Prisma engine).
const path = require('node:path');
const { Client } = require('pg');
const { ConfigError, applicationName } = require('../lib/config');
const { poolOptions } = require('../lib/db');
const { migrate } = require('../lib/migrations');

async function main() {
  // DIRECT_URL (Prisma's directUrl) when the toolkit gives one: a connection that keeps its session,
  // as the advisory lock in lib/migrations.js needs; DATABASE_URL may be PgBouncer's transaction pool.
  const env = process.env.DIRECT_URL ? { ...process.env, DATABASE_URL: process.env.DIRECT_URL } : process.env;
  const { config, options } = poolOptions(env, 'migrate');
  const client = new Client({
    connectionString: options.connectionString,
    connectionTimeoutMillis: options.connectionTimeoutMillis || 10000,
    application_name: options.application_name || applicationName(process.env, 'migrate'),
    options: options.options,
  });
  await client.connect();
  try {
    const started = Date.now();
    const log = { info: (message) => console.log(`migrate: ${message}`) };
    const migrationsDir = path.join(__dirname, '..', 'prisma', 'migrations');
    const { applied, total } = await migrate(client, migrationsDir, { log, schema: config.schema });
    console.log(
      `migrate: ${applied.length} applied, ${total - applied.length} already up to date, ${Date.now() - started} ms`,
    );
  } finally {
    await client.end();
  }
}

main().catch((error) => {
  const hint = error instanceof ConfigError ? '' : ' (are DIRECT_URL or DATABASE_URL right and PostgreSQL reachable?)';
  console.error(`migrate: FAILED: ${error.message}${hint}`);
  process.exit(1);
});
