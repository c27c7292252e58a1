'use client';

import { useRouter } from 'next/navigation';
import { useState } from 'react';

export default function NewCampaign() {
  const router = useRouter();
  const [message, setMessage] = useState('');

  async function submit(event) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const response = await fetch('/api/campaigns', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: form.get('name'), recipients: Number(form.get('recipients')) }),
    });
    const body = await response.json().catch(() => ({}));
    setMessage(response.ok ? `queued "${body.campaign.name}"` : `failed: ${body.error || response.status}`);
    router.refresh();
  }

  return (
    <form onSubmit={submit}>
      <input name="name" placeholder="campaign name" required maxLength={200} />
      <input name="recipients" type="number" min="1" max="10000" defaultValue="100" required />
      <button type="submit">Send</button>
      <span className="meta">{message}</span>
    </form>
  );
}
