// Preloaded with NODE_OPTIONS=--require: every listen() on 127.0.0.1 binds ::1 instead, so the app
// listens on IPv6 loopback only, as a server told `localhost` does where localhost is ::1 (seed 002, I7).
'use strict';
const net = require('node:net');

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function listenOnIpv6Loopback(...args) {
  if (args[1] === '127.0.0.1') args[1] = '::1';
  if (args[0] && typeof args[0] === 'object' && args[0].host === '127.0.0.1') args[0] = { ...args[0], host: '::1' };
  return listen.apply(this, args);
};
