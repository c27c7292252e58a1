'use strict';
// Process-wide state shared between the plain Node entry points (server.js, worker.js) and the code that Next
// bundles into route handlers. The bundle gets its own copy of every module under lib/, so the state lives on
// globalThis under Symbol.for() keys, which both copies see.
const STATE = Symbol.for('shipshape.app.state');

function state() {
  if (!globalThis[STATE]) {
    globalThis[STATE] = { role: 'app', buildId: null, closers: new Map(), shuttingDown: false };
  }
  return globalThis[STATE];
}

function setRole(role) {
  state().role = role;
}

function getRole() {
  return state().role;
}

function setBuildId(buildId) {
  state().buildId = buildId;
}

function getBuildId() {
  return state().buildId;
}

function isShuttingDown() {
  return state().shuttingDown;
}

// Registers a function that releases a resource (a pool, a Redis connection) at shutdown. Registering the same
// name again replaces the earlier function.
function onShutdown(name, close) {
  state().closers.set(name, close);
}

// Runs the closers, newest first, each one once; a failing closer is logged and the others still run.
async function runClosers(log = console) {
  const closers = [...state().closers.entries()].reverse();
  state().closers.clear();
  for (const [name, close] of closers) {
    try {
      await close();
    } catch (error) {
      log.error(`shutdown: closing ${name} failed: ${error.message}`);
    }
  }
}

function timestamp() {
  return new Date().toISOString();
}

function logger(name) {
  return {
    info: (message) => console.log(`${timestamp()} [${name}] ${message}`),
    error: (message) => console.error(`${timestamp()} [${name}] ${message}`),
  };
}

// Installs SIGTERM/SIGINT handlers. `drain` stops taking work and resolves when the work in flight is done;
// then the registered closers run and the process exits 0. If that takes longer than drainMs the process
// exits 1 with `describePending()` in the log, before supervisor's stopwaitsecs would SIGKILL it.
function installGracefulShutdown({ log, drainMs, drain, describePending = () => 'unknown' }) {
  const shutdown = async (signal) => {
    if (state().shuttingDown) {
      log.info(`${signal} received again; still draining`);
      return;
    }
    state().shuttingDown = true;
    const started = Date.now();
    log.info(`${signal} received: draining (up to ${drainMs} ms)`);
    const timer = setTimeout(() => {
      log.error(`drain did not finish within ${drainMs} ms (pending: ${describePending()}); exiting 1`);
      process.exit(1);
    }, drainMs);
    try {
      await drain();
      await runClosers(log);
    } catch (error) {
      log.error(`shutdown failed: ${error.stack || error.message}`);
      process.exit(1);
    }
    clearTimeout(timer);
    log.info(`drained in ${Date.now() - started} ms; exiting 0`);
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

module.exports = {
  getBuildId,
  getRole,
  installGracefulShutdown,
  isShuttingDown,
  logger,
  onShutdown,
  runClosers,
  setBuildId,
  setRole,
};
