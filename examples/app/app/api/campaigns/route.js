import { InputError, createCampaign, markCampaignFailed, validateCampaignInput } from '@/lib/campaigns';
import { getPrisma } from '@/lib/db';
import { JOB_SEND_CAMPAIGN, getCampaignQueue, withTimeout } from '@/lib/redis';

export const dynamic = 'force-dynamic';
export const runtime = 'nodejs';

const CAMPAIGN_FIELDS = {
  id: true,
  name: true,
  status: true,
  totalRecipients: true,
  sentCount: true,
  failedCount: true,
  error: true,
  createdAt: true,
  startedAt: true,
  completedAt: true,
};

export async function GET() {
  const campaigns = await getPrisma().campaign.findMany({
    orderBy: { createdAt: 'desc' },
    take: 50,
    select: CAMPAIGN_FIELDS,
  });
  return Response.json({ campaigns }, { headers: { 'cache-control': 'no-store' } });
}

// {"name": "spring sale", "recipients": 100, "failEvery": 0} -> 202 with the campaign, sent by worker.js.
export async function POST(request) {
  let input;
  try {
    input = validateCampaignInput(await request.json());
  } catch (error) {
    const message = error instanceof InputError ? error.message : 'body must be JSON';
    return Response.json({ error: message }, { status: 400 });
  }
  const prisma = getPrisma();
  const campaign = await createCampaign(prisma, input);
  try {
    // jobId = campaign id: enqueueing the same campaign twice is a no-op in BullMQ.
    await withTimeout(
      getCampaignQueue().add(
        JOB_SEND_CAMPAIGN,
        { campaignId: campaign.id },
        {
          jobId: campaign.id,
          attempts: 3,
          backoff: { type: 'exponential', delay: 2000 },
          removeOnComplete: 1000,
          removeOnFail: 5000,
        },
      ),
      5000,
      'enqueue',
    );
  } catch (error) {
    await markCampaignFailed(prisma, campaign.id, `could not enqueue: ${error.message}`);
    return Response.json({ error: `campaign saved but not queued: ${error.message}` }, { status: 503 });
  }
  const created = await prisma.campaign.findUnique({ where: { id: campaign.id }, select: CAMPAIGN_FIELDS });
  return Response.json({ campaign: created }, { status: 202 });
}
