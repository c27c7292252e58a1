'use client';

import { useEffect, useState } from 'react';
import { io } from 'socket.io-client';

// Live connection state of the Socket.IO server (a separate program; outage 003 was it not running).
// `url` empty means the page's own origin, where nginx proxies /socket.io/ to that program.
export default function SocketStatus({ url }) {
  const [state, setState] = useState({ status: 'connecting', transport: '', members: 0 });

  useEffect(() => {
    const socket = io(url || undefined, { path: '/socket.io/', transports: ['websocket', 'polling'] });
    const update = (patch) => setState((previous) => ({ ...previous, ...patch }));
    socket.on('connect', () => {
      update({ status: 'connected', transport: socket.io.engine.transport.name });
      socket.emit('join', { room: 'lobby' }, (reply) => update({ members: reply && reply.ok ? reply.members : 0 }));
    });
    socket.on('joined', () => setState((previous) => ({ ...previous, members: previous.members + 1 })));
    socket.on('disconnect', (reason) => update({ status: 'disconnected', transport: reason }));
    socket.on('connect_error', (error) => update({ status: 'disconnected', transport: error.message }));
    return () => socket.close();
  }, [url]);

  return (
    <p>
      Socket.IO: <span className={`status status-${state.status}`}>{state.status}</span>
      {state.transport ? <span className="meta"> ({state.transport})</span> : null}
      {state.status === 'connected' ? <span className="meta"> · room lobby: {state.members} member(s)</span> : null}
    </p>
  );
}
