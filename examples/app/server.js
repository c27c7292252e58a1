'use strict';
// The web program: Next.js's request handler on HOSTNAME:PORT. Run it directly (`node server.js`) under
// supervisor, never through `npm start`, so SIGTERM reaches this process and not a wrapper (outage 000).
// SIGTERM: stop accepting, finish the requests in flight, close the pools, exit 0 within DRAIN_TIMEOUT_MS.
process.env.NEXT_TELEMETRY_DISABLED = process.env.NEXT_TELEMETRY_DISABLED || '1';
process.env.NODE_ENV = process.env.NODE_ENV || 'production';

const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { appRelease, drainTimeoutMs, listenAddress, requireEnv } = require('./lib/config');
const { installGracefulShutdown, isShuttingDown, logger, setBuildId, setRole } = require('./lib/lifecycle');

const log = logger('web');

function readBuildId(dir) {
  const file = path.join(dir, '.next', 'BUILD_ID');
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    throw new Error(`${file} is missing: run \`npm run build\` in ${dir} before starting the server`);
  }
}

async function main() {
  setRole('web');
  requireEnv(process.env, ['DATABASE_URL', 'REDIS_URL', 'SESSION_SECRET'], 'web');
  const { hostname, port } = listenAddress(process.env, 3000);
  const drainMs = drainTimeoutMs(process.env);
  // Relative paths (UPLOAD_DIR, .next) resolve against the release directory, whatever supervisor's cwd is.
  process.chdir(__dirname);
  // Read once: the health endpoint reports the build this process loaded, even if .next changes on disk.
  const buildId = readBuildId(__dirname);
  setBuildId(buildId);

  const next = require('next');
  const app = next({ dev: false, dir: __dirname, hostname, port });
  await app.prepare();
  const handle = app.getRequestHandler();

  let inFlight = 0;
  const counts = { received: 0, answered: 0 };
  const server = http.createServer((req, res) => {
    inFlight += 1;
    counts.received += 1;
    res.on('finish', () => {
      counts.answered += 1;
    });
    res.on('close', () => {
      inFlight -= 1;
    });
    // A request that arrives on a kept-alive connection while draining is served, and its connection closed.
    if (isShuttingDown()) res.setHeader('connection', 'close');
    handle(req, res).catch((error) => {
      log.error(`unhandled error for ${req.method} ${req.url}: ${error.stack || error.message}`);
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('internal server error\n');
    });
  });
  let openConnections = 0;
  server.on('connection', (socket) => {
    openConnections += 1;
    socket.on('close', () => {
      openConnections -= 1;
    });
  });
  // Longer than nginx's upstream keepalive_timeout (60 s), so nginx closes idle connections first.
  server.keepAliveTimeout = 65000;
  server.headersTimeout = 66000;

  server.on('error', (error) => {
    if (error.code === 'EADDRINUSE') {
      log.error(`port ${port} on ${hostname} is already in use; find the owner with: ss -ltnp 'sport = :${port}'`);
    } else {
      log.error(`cannot listen on ${hostname}:${port}: ${error.message}`);
    }
    process.exit(1);
  });
  server.listen(port, hostname, () => {
    log.info(`listening on http://${hostname}:${port}, build ${buildId}, release ${appRelease(process.env)}`);
  });

  installGracefulShutdown({
    log,
    drainMs,
    drain: () =>
      new Promise((resolve) => {
        // close() stops accepting and calls back when every connection has ended; idle keep-alive
        // connections are closed now and as they become idle (Node 18 does not do that by itself).
        server.close(() => resolve());
        server.closeIdleConnections();
        const sweep = setInterval(() => server.closeIdleConnections(), 250);
        sweep.unref();
      }).then(() => {
        // Every request this process accepted should have been answered; a gap means a dropped request.
        log.info(`listener closed: ${counts.received} requests received, ${counts.answered} answered`);
        return typeof app.close === 'function' ? app.close() : undefined;
      }),
    describePending: () => `${inFlight} request(s) in flight on ${openConnections} open connection(s)`,
  });
}

main().catch((error) => {
  log.error(`cannot start: ${error.message}`);
  process.exit(1);
});
