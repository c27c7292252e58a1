import { appRelease } from '@/lib/config';
import { getPrisma } from '@/lib/db';
import { getBuildId } from '@/lib/lifecycle';
import AutoRefresh from './auto-refresh';
import NewCampaign from './new-campaign';
import SocketStatus from './socket-status';

export const dynamic = 'force-dynamic';

async function loadCampaigns() {
  try {
    const campaigns = await getPrisma().campaign.findMany({ orderBy: { createdAt: 'desc' }, take: 20 });
    return { campaigns, error: null };
  } catch (error) {
    return { campaigns: [], error: error.message.split('\n').filter(Boolean).pop() };
  }
}

export default async function Home() {
  const { campaigns, error } = await loadCampaigns();
  return (
    <main>
      <h1>shipshape sample app</h1>
      <p className="meta">
        release <code>{appRelease(process.env)}</code> · build <code>{getBuildId() || 'unknown'}</code>
      </p>
      <SocketStatus url={process.env.SOCKET_PUBLIC_URL || ''} />
      <h2>Campaigns</h2>
      <NewCampaign />
      {error ? <p className="status status-FAILED">database unavailable: {error}</p> : null}
      <table>
        <thead>
          <tr>
            <th>name</th>
            <th>status</th>
            <th>recipients</th>
            <th>sent</th>
            <th>failed</th>
            <th>created</th>
          </tr>
        </thead>
        <tbody>
          {campaigns.map((c) => (
            <tr key={c.id}>
              <td>{c.name}</td>
              <td className={`status status-${c.status}`}>{c.status}</td>
              <td className="num">{c.totalRecipients}</td>
              <td className="num">{c.sentCount}</td>
              <td className="num">{c.failedCount}</td>
              <td>{c.createdAt.toISOString().replace('T', ' ').slice(0, 19)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {campaigns.length === 0 && !error ? <p className="meta">No campaigns yet.</p> : null}
      <AutoRefresh seconds={3} />
    </main>
  );
}
