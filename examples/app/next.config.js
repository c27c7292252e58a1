// @ts-check
const { uploadConfig } = require('./lib/config');

// Uploads stream to disk in app/api/upload/route.js, where UPLOAD_MAX_BYTES is enforced. Next's own 1 MB
// defaults (outage 002) apply to Server Actions and to bodies cloned for middleware; both are raised to the
// same limit so no path through Next refuses a body that nginx and the route accept.
const { maxBytes } = uploadConfig(process.env);

/** @type {import('next').NextConfig} */
module.exports = {
  reactStrictMode: true,
  poweredByHeader: false,
  // The app tree is the root even when a deploy unpacks it below a directory with its own lockfile.
  outputFileTracingRoot: __dirname,
  // No ESLint in the dependencies: keep `next build` quiet and fast; lint is not part of this example.
  eslint: { ignoreDuringBuilds: true },
  // Loaded with require() at run time, never bundled (the Prisma client is generated after npm ci).
  serverExternalPackages: ['@prisma/client', '@prisma/adapter-pg', 'pg', 'ioredis', 'bullmq', 'busboy'],
  experimental: {
    serverActions: { bodySizeLimit: maxBytes },
    middlewareClientMaxBodySize: maxBytes,
  },
};
