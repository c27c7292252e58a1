// Prisma CLI configuration. `engine: "js"` makes the CLI use the JavaScript schema engine through the pg
// driver adapter instead of the Rust schema-engine binary, so `prisma generate` never downloads an engine
// (the CLI fetches that binary at start-up otherwise, and fails where binaries.prisma.sh is unreachable).
// Migrations are applied by scripts/migrate.js, not by `prisma migrate`.
const { defineConfig } = require('prisma/config');

// The CLI's version check calls checkpoint.prisma.io; a build must not depend on a host outside the registry.
process.env.CHECKPOINT_DISABLE = process.env.CHECKPOINT_DISABLE || '1';

// `prisma generate` reads the schema's `url = env("DATABASE_URL")` but never connects, so a build without the
// app's env file still generates; every other command gets the real variable or fails on its absence.
if (!process.env.DATABASE_URL && process.argv.includes('generate')) {
  process.env.DATABASE_URL = 'postgresql://generate-only@127.0.0.1:5432/unused';
}

module.exports = defineConfig({
  schema: 'prisma/schema.prisma',
  experimental: { adapter: true },
  engine: 'js',
  // Only CLI commands that talk to the database call this; `prisma generate` does not.
  async adapter() {
    const { PrismaPg } = require('@prisma/adapter-pg');
    const { databaseConfig } = require('./lib/config');
    const { connectionString } = databaseConfig(process.env);
    return new PrismaPg({ connectionString });
  },
});
