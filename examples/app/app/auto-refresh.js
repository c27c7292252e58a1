'use client';

import { useRouter } from 'next/navigation';
import { useEffect } from 'react';

// Re-renders the server component every few seconds, so campaign states update without a reload.
export default function AutoRefresh({ seconds }) {
  const router = useRouter();
  useEffect(() => {
    const timer = setInterval(() => router.refresh(), seconds * 1000);
    return () => clearInterval(timer);
  }, [router, seconds]);
  return null;
}
