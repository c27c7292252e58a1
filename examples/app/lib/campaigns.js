'use strict';
// Campaigns: created by the web, sent by the worker. The invariant from outage 004: a campaign is never left
// SENDING after its last message. The messages' final states, the counts and COMPLETED are written in one
// transaction, so they commit together or not at all (and a rolled-back job is retried by BullMQ).

const MAX_RECIPIENTS = 10000;

class InputError extends Error {}

// Validates a POST /api/campaigns body: {name, recipients: N, failEvery?: K}. Returns the clean input or
// throws InputError with a message for the client.
function validateCampaignInput(body) {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new InputError('body must be a JSON object: {"name": "...", "recipients": 100}');
  }
  const name = typeof body.name === 'string' ? body.name.trim() : '';
  if (name.length < 1 || name.length > 200) throw new InputError('name must be a string of 1 to 200 characters');
  const recipients = body.recipients;
  if (!Number.isInteger(recipients) || recipients < 1 || recipients > MAX_RECIPIENTS) {
    throw new InputError(`recipients must be a whole number from 1 to ${MAX_RECIPIENTS}`);
  }
  const failEvery = body.failEvery === undefined ? 0 : body.failEvery;
  if (!Number.isInteger(failEvery) || failEvery < 0) {
    throw new InputError('failEvery must be a whole number (0: no simulated failures)');
  }
  return { name, recipients, failEvery };
}

// Simulated recipients; every failEvery-th one is an address the simulated sender rejects.
function buildRecipients(count, failEvery = 0) {
  const recipients = [];
  for (let i = 1; i <= count; i += 1) {
    const failing = failEvery > 0 && i % failEvery === 0;
    recipients.push(`${failing ? 'fail' : 'user'}-${i}@example.invalid`);
  }
  return recipients;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Stands in for a real provider call (SMTP, an HTTP API). A real sender would run outside the database
// transaction and record an idempotency key; the simulation keeps the example small.
async function simulateSend(recipient, delayMs = 0) {
  if (delayMs > 0) await sleep(delayMs);
  if (recipient.startsWith('fail-')) throw new Error('simulated delivery failure');
}

async function createCampaign(prisma, input) {
  const recipients = buildRecipients(input.recipients, input.failEvery);
  return prisma.campaign.create({
    data: {
      name: input.name,
      totalRecipients: recipients.length,
      messages: { createMany: { data: recipients.map((recipient) => ({ recipient })) } },
    },
  });
}

// Sends one campaign. Returns {status, sent, failed} or {skipped: reason}.
async function sendCampaign(prisma, campaignId, { send = simulateSend, delayMs = 0, log = console } = {}) {
  // SENDING is committed on its own so the page shows the campaign in progress.
  const claimed = await prisma.campaign.updateMany({
    where: { id: campaignId, status: { in: ['QUEUED', 'SENDING'] } },
    data: { status: 'SENDING', startedAt: new Date() },
  });
  if (claimed.count === 0) return { skipped: 'campaign is missing, COMPLETED or FAILED' };

  const total = await prisma.message.count({ where: { campaignId } });
  // Generous: the transaction holds one connection while it "sends".
  const timeout = 30000 + total * (delayMs + 20);

  return prisma.$transaction(
    async (tx) => {
      // Row lock: a second worker that got the same campaign waits here, then sees COMPLETED and skips.
      const rows = await tx.$queryRaw`SELECT status::text AS status FROM "Campaign" WHERE id = ${campaignId} FOR UPDATE`;
      if (rows.length === 0 || rows[0].status !== 'SENDING') return { skipped: 'campaign already finished' };

      const pending = await tx.message.findMany({
        where: { campaignId, status: 'PENDING' },
        select: { id: true, recipient: true },
      });
      const sentIds = [];
      const failures = new Map();
      for (const message of pending) {
        try {
          await send(message.recipient, delayMs);
          sentIds.push(message.id);
        } catch (error) {
          const reason = String(error.message || error).slice(0, 500);
          if (!failures.has(reason)) failures.set(reason, []);
          failures.get(reason).push(message.id);
        }
      }
      const now = new Date();
      if (sentIds.length > 0) {
        await tx.message.updateMany({ where: { id: { in: sentIds } }, data: { status: 'SENT', sentAt: now } });
      }
      for (const [reason, ids] of failures) {
        await tx.message.updateMany({ where: { id: { in: ids } }, data: { status: 'FAILED', error: reason } });
      }
      const sent = await tx.message.count({ where: { campaignId, status: 'SENT' } });
      const failed = await tx.message.count({ where: { campaignId, status: 'FAILED' } });
      await tx.campaign.update({
        where: { id: campaignId },
        data: { sentCount: sent, failedCount: failed, status: 'COMPLETED', completedAt: now },
      });
      log.info(`campaign ${campaignId}: COMPLETED, ${sent} sent, ${failed} failed of ${total}`);
      return { status: 'COMPLETED', sent, failed, total };
    },
    { timeout, maxWait: 10000 },
  );
}

async function markCampaignFailed(prisma, campaignId, reason) {
  await prisma.campaign.updateMany({
    where: { id: campaignId, status: { in: ['QUEUED', 'SENDING'] } },
    data: { status: 'FAILED', error: String(reason).slice(0, 500), completedAt: new Date() },
  });
}

module.exports = {
  InputError,
  MAX_RECIPIENTS,
  buildRecipients,
  createCampaign,
  markCampaignFailed,
  sendCampaign,
  simulateSend,
  validateCampaignInput,
};
