'use strict';
const assert = require('node:assert/strict');
const { test } = require('node:test');
const { onShutdown, runClosers } = require('../lib/lifecycle');

test('closers run newest first, once, and a failing one does not stop the others', async () => {
  const calls = [];
  const errors = [];
  onShutdown('pool', async () => calls.push('pool'));
  onShutdown('prisma', async () => calls.push('prisma'));
  onShutdown('redis', async () => {
    calls.push('redis');
    throw new Error('boom');
  });
  await runClosers({ error: (message) => errors.push(message) });
  assert.deepEqual(calls, ['redis', 'prisma', 'pool']);
  assert.deepEqual(errors, ['shutdown: closing redis failed: boom']);
  await runClosers({ error: (message) => errors.push(message) });
  assert.deepEqual(calls, ['redis', 'prisma', 'pool'], 'a second run has nothing left to close');
});

test('registering a name again replaces the closer', async () => {
  const calls = [];
  onShutdown('queue', async () => calls.push('old'));
  onShutdown('queue', async () => calls.push('new'));
  await runClosers({ error: () => {} });
  assert.deepEqual(calls, ['new']);
});
