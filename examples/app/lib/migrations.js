'use strict';
// Applies prisma/migrations/<name>/migration.sql in name order, each in its own transaction, and records them
// in Prisma's own "_prisma_migrations" table (same columns and checksums), so `prisma migrate deploy` could
// take over later. Safe to run twice (applied ones are skipped) and concurrently (an advisory lock serialises
// runs: the second waits, then finds nothing to do).
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

// pg_advisory_lock key: any constant bigint works as long as every run uses the same one.
const LOCK_KEY = 72707369;
const MIGRATION_NAME = /^\d{14}_[a-z0-9_]+$/;

const CREATE_TABLE = `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
)`;

// Orders migration directory names. Names are Prisma's: a 14-digit UTC timestamp, "_", a lower-case slug,
// so the order is the timestamp order. Anything else is refused rather than guessed at.
function orderMigrationNames(names) {
  const bad = names.filter((name) => !MIGRATION_NAME.test(name));
  if (bad.length > 0) {
    throw new Error(
      `migration directories must be named YYYYMMDDHHMMSS_slug (lower case): ${bad.join(', ')}`,
    );
  }
  const sorted = [...names].sort();
  for (let i = 1; i < sorted.length; i += 1) {
    if (sorted[i].slice(0, 14) === sorted[i - 1].slice(0, 14)) {
      throw new Error(`two migrations share the timestamp ${sorted[i].slice(0, 14)}: ${sorted[i - 1]}, ${sorted[i]}`);
    }
  }
  return sorted;
}

function checksum(sql) {
  return crypto.createHash('sha256').update(sql).digest('hex');
}

function readMigrations(migrationsDir) {
  const names = fs
    .readdirSync(migrationsDir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name);
  return orderMigrationNames(names).map((name) => {
    const file = path.join(migrationsDir, name, 'migration.sql');
    const sql = fs.readFileSync(file, 'utf8');
    return { name, file, sql, checksum: checksum(sql) };
  });
}

// Compares the migrations on disk with the rows already recorded. Returns the ones to apply, in order.
// A recorded migration whose file changed is an error: the database no longer matches the repository.
function planMigrations(onDisk, recorded) {
  const applied = new Map(recorded.map((row) => [row.migration_name, row]));
  const pending = [];
  for (const migration of onDisk) {
    const row = applied.get(migration.name);
    if (!row) {
      pending.push(migration);
    } else if (row.checksum !== migration.checksum) {
      throw new Error(
        `migration ${migration.name} was changed after it was applied (checksum ${row.checksum.slice(0, 12)} in the ` +
          `database, ${migration.checksum.slice(0, 12)} on disk): add a new migration instead of editing it`,
      );
    }
  }
  const unknown = recorded.map((row) => row.migration_name).filter((name) => !onDisk.some((m) => m.name === name));
  return { pending, unknown };
}

// `schema` (Prisma's ?schema= parameter) is created if needed; the caller's search_path already points at it.
async function migrate(client, migrationsDir, { log = console, schema } = {}) {
  const onDisk = readMigrations(migrationsDir);
  await client.query('SELECT pg_advisory_lock($1)', [LOCK_KEY]);
  try {
    if (schema) await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema.replace(/"/g, '""')}"`);
    await client.query(CREATE_TABLE);
    const { rows } = await client.query(
      'SELECT migration_name, checksum FROM "_prisma_migrations" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL',
    );
    const { pending, unknown } = planMigrations(onDisk, rows);
    for (const name of unknown) {
      log.info(`note: ${name} is recorded in the database but not in this release (a rollback?); left as is`);
    }
    for (const migration of pending) {
      const started = Date.now();
      await client.query('BEGIN');
      try {
        await client.query(migration.sql);
        await client.query(
          `INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at, finished_at, applied_steps_count)
           VALUES ($1, $2, $3, now(), now(), 1)`,
          [crypto.randomUUID(), migration.checksum, migration.name],
        );
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK');
        throw new Error(`migration ${migration.name} failed and was rolled back: ${error.message}`);
      }
      log.info(`applied ${migration.name} in ${Date.now() - started} ms`);
    }
    return { applied: pending.map((m) => m.name), total: onDisk.length };
  } finally {
    // Ending the session releases the lock too, so a failed unlock must not hide the real error.
    await client.query('SELECT pg_advisory_unlock($1)', [LOCK_KEY]).catch(() => {});
  }
}

module.exports = { LOCK_KEY, checksum, migrate, orderMigrationNames, planMigrations, readMigrations };
