'use strict';
const assert = require('node:assert/strict');
const { test } = require('node:test');
const { InputError, MAX_RECIPIENTS, buildRecipients, simulateSend, validateCampaignInput } = require('../lib/campaigns');

test('validateCampaignInput accepts a name and a recipient count, trimming the name', () => {
  assert.deepEqual(validateCampaignInput({ name: '  spring sale ', recipients: 100 }), { name: 'spring sale', recipients: 100, failEvery: 0 });
  assert.deepEqual(validateCampaignInput({ name: 'x', recipients: 1, failEvery: 10 }), { name: 'x', recipients: 1, failEvery: 10 });
});

test('validateCampaignInput refuses what the worker could not send', () => {
  const bad = [
    null,
    [],
    'name',
    { recipients: 10 },
    { name: '   ', recipients: 10 },
    { name: 'x'.repeat(201), recipients: 10 },
    { name: 'x', recipients: 0 },
    { name: 'x', recipients: 1.5 },
    { name: 'x', recipients: '10' },
    { name: 'x', recipients: MAX_RECIPIENTS + 1 },
    { name: 'x', recipients: 10, failEvery: -1 },
  ];
  for (const body of bad) assert.throws(() => validateCampaignInput(body), InputError, JSON.stringify(body));
});

test('buildRecipients makes unique addresses, every failEvery-th one failing', () => {
  const recipients = buildRecipients(100, 10);
  assert.equal(recipients.length, 100);
  assert.equal(new Set(recipients).size, 100);
  assert.equal(recipients.filter((r) => r.startsWith('fail-')).length, 10);
  assert.equal(recipients[9], 'fail-10@example.invalid');
  assert.equal(buildRecipients(5).filter((r) => r.startsWith('fail-')).length, 0);
});

test('simulateSend rejects the failing addresses only', async () => {
  await assert.doesNotReject(simulateSend('user-1@example.invalid'));
  await assert.rejects(simulateSend('fail-10@example.invalid'), /simulated delivery failure/);
});
