// Test program for the supervisor scenario: exits at once, the way a server that cannot bind
// its port does (seed 002). supervisor must give up on it (FATAL), not restart it forever.
console.error(`crash ${process.pid}: exiting at once`);
process.exit(1);
