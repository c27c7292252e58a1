'use strict';
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { test } = require('node:test');
const { checksum, orderMigrationNames, planMigrations, readMigrations } = require('../lib/migrations');

test('migrations are ordered by their timestamp, not by the order the directory lists them', () => {
  const names = ['20250301000000_add_index', '20250101000000_init', '20250201120000_messages'];
  assert.deepEqual(orderMigrationNames(names), ['20250101000000_init', '20250201120000_messages', '20250301000000_add_index']);
});

test('names that would sort ambiguously are refused', () => {
  assert.throws(() => orderMigrationNames(['1_init', '20250101000000_init']), /1_init/);
  assert.throws(() => orderMigrationNames(['20250101000000_Init']), /lower case/);
  assert.throws(() => orderMigrationNames(['20250101000000_a', '20250101000000_b']), /share the timestamp/);
});

test('readMigrations reads each migration.sql in order and ignores files beside the directories', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'migrations-'));
  try {
    for (const [name, sql] of [['20250201000000_second', 'SELECT 2;'], ['20250101000000_first', 'SELECT 1;']]) {
      fs.mkdirSync(path.join(dir, name));
      fs.writeFileSync(path.join(dir, name, 'migration.sql'), sql);
    }
    fs.writeFileSync(path.join(dir, 'migration_lock.toml'), 'provider = "postgresql"\n');
    const migrations = readMigrations(dir);
    assert.deepEqual(migrations.map((m) => m.name), ['20250101000000_first', '20250201000000_second']);
    assert.equal(migrations[0].sql, 'SELECT 1;');
    assert.equal(migrations[0].checksum, checksum('SELECT 1;'));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the repository migrations are valid and the first one creates both tables', () => {
  const migrations = readMigrations(path.join(__dirname, '..', 'prisma', 'migrations'));
  assert.ok(migrations.length >= 1);
  assert.match(migrations[0].sql, /CREATE TABLE "Campaign"/);
  assert.match(migrations[0].sql, /CREATE TABLE "Message"/);
});

test('checksums are the sha256 of the file, as Prisma records them', () => {
  assert.equal(checksum(''), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
});

test('planMigrations skips applied migrations and applies the rest in order', () => {
  const onDisk = [
    { name: '20250101000000_a', checksum: 'aaa' },
    { name: '20250102000000_b', checksum: 'bbb' },
    { name: '20250103000000_c', checksum: 'ccc' },
  ];
  const plan = planMigrations(onDisk, [{ migration_name: '20250101000000_a', checksum: 'aaa' }]);
  assert.deepEqual(plan.pending.map((m) => m.name), ['20250102000000_b', '20250103000000_c']);
  assert.deepEqual(plan.unknown, []);
  const again = planMigrations(onDisk, onDisk.map((m) => ({ migration_name: m.name, checksum: m.checksum })));
  assert.deepEqual(again.pending, []);
});

test('planMigrations refuses an applied migration that was edited, and reports unknown ones', () => {
  const onDisk = [{ name: '20250101000000_a', checksum: 'new' }];
  assert.throws(() => planMigrations(onDisk, [{ migration_name: '20250101000000_a', checksum: 'old' }]), /changed after it was applied/);
  const plan = planMigrations([], [{ migration_name: '20250109000000_from_a_newer_release', checksum: 'x' }]);
  assert.deepEqual(plan.unknown, ['20250109000000_from_a_newer_release']);
});
