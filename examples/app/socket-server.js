'use strict';
// Socket.IO server, its own program on its own PORT (outage 003: the page needs it running). nginx proxies
// /socket.io/ to it with the WebSocket upgrade headers. GET /healthz answers for smoke tests.
// SIGTERM: stop accepting, tell clients to reconnect, flush and close every connection, exit 0.
const http = require('node:http');
const { Server } = require('socket.io');
const { appRelease, drainTimeoutMs, listenAddress } = require('./lib/config');
const { installGracefulShutdown, isShuttingDown, logger, setRole } = require('./lib/lifecycle');

const log = logger('socket');
const ROOM_NAME = /^[A-Za-z0-9:_-]{1,64}$/;

function main() {
  setRole('socket');
  const { hostname, port } = listenAddress(process.env, 3001);
  const release = appRelease(process.env);

  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/healthz') {
      const body = { status: isShuttingDown() ? 'draining' : 'ok', release, connections: io.engine.clientsCount };
      res.writeHead(isShuttingDown() ? 503 : 200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify(body));
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found\n');
  });

  const corsOrigins = (process.env.SOCKET_CORS_ORIGIN || '').split(',').map((s) => s.trim()).filter(Boolean);
  const io = new Server(server, {
    path: '/socket.io/',
    serveClient: false,
    // Behind nginx the page and /socket.io/ share an origin; SOCKET_CORS_ORIGIN is for local development.
    cors: corsOrigins.length > 0 ? { origin: corsOrigins } : undefined,
  });

  io.on('connection', (socket) => {
    socket.on('join', (payload, ack) => {
      const room = payload && typeof payload.room === 'string' ? payload.room : '';
      const reply = typeof ack === 'function' ? ack : () => {};
      if (!ROOM_NAME.test(room)) {
        reply({ ok: false, error: 'room must be 1-64 characters of A-Z a-z 0-9 : _ -' });
        return;
      }
      socket.join(room);
      socket.to(room).emit('joined', { room, id: socket.id });
      reply({ ok: true, room, members: io.sockets.adapter.rooms.get(room)?.size || 1 });
    });
    // Echoes the payload back to the sender only; the ack (when asked for) confirms receipt.
    socket.on('echo', (payload, ack) => {
      socket.emit('echo', payload);
      if (typeof ack === 'function') ack({ ok: true });
    });
  });

  server.on('error', (error) => {
    if (error.code === 'EADDRINUSE') {
      log.error(`port ${port} on ${hostname} is already in use; find the owner with: ss -ltnp 'sport = :${port}'`);
    } else {
      log.error(`cannot listen on ${hostname}:${port}: ${error.message}`);
    }
    process.exit(1);
  });
  server.listen(port, hostname, () => {
    log.info(`listening on http://${hostname}:${port} (path /socket.io/), release ${release}`);
  });

  installGracefulShutdown({
    log,
    drainMs: drainTimeoutMs(process.env),
    drain: () =>
      new Promise((resolve) => {
        // Stop accepting first, then disconnect: each socket flushes what it has queued before it closes,
        // and clients reconnect on their own to the next process.
        server.close();
        io.emit('server:shutdown', { reconnect: true });
        io.disconnectSockets(true);
        io.close(() => resolve());
      }),
    describePending: () => `${io.engine.clientsCount} connection(s)`,
  });
}

try {
  main();
} catch (error) {
  log.error(`cannot start: ${error.message}`);
  process.exit(1);
}
