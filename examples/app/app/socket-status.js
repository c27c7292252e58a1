'use client';

import { useEffect, useState } from 'react';
import { io } from 'socket.io-client';

// Live connection state of the Socket.IO server (a separate program; outage 003 was it not running).
// `url` empty means the page's own origin, where nginx proxies /socket.io/ to that program.
export default function SocketStatus({ url }) {
  const [state, setState] = useState({ status: 'connecting', detail: '', room: '' });

  useEffect(() => {
    const socket = io(url || undefined, { path: '/socket.io/', transports: ['websocket', 'polling'] });
    const update = (patch) => setState((previous) => ({ ...previous, ...patch }));
    socket.on('connect', () => {
      update({ status: 'connected', detail: socket.io.engine.transport.name, room: '' });
      socket.emit('join', { room: 'lobby' }, (reply) => update({ room: reply && reply.ok ? reply.room : '' }));
    });
    socket.on('disconnect', (reason) => update({ status: 'disconnected', detail: reason, room: '' }));
    socket.on('connect_error', (error) => update({ status: 'disconnected', detail: error.message, room: '' }));
    return () => socket.close();
  }, [url]);

  return (
    <p>
      Socket.IO: <span className={`status status-${state.status}`}>{state.status}</span>
      {state.detail ? <span className="meta"> ({state.detail})</span> : null}
      {state.room ? <span className="meta"> · joined room {state.room}</span> : null}
    </p>
  );
}
