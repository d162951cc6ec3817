#!/usr/bin/env node
// A small static file server on 127.0.0.1 for the demos, the browser tests and the browser
// benchmark. No dependencies. Folders are mounted at URL prefixes; files are streamed with their
// MIME type, Content-Length and Range support; directory listings are off; `..` cannot escape a
// mount. With `isolate`, responses carry the COOP/COEP headers that make a page
// crossOriginIsolated (SharedArrayBuffer, wasm threads).
//
// As a command:
//   node scripts/static-server.mjs [--port 8080] [--isolate] --mount /=demos --mount /models/=.cache/models ...
// As a module:
//   const server = await startServer({ mounts: { '/': dir }, port: 0 }); server.url; await server.close();

import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.wasm': 'application/wasm',
  '.wav': 'audio/wav',
  '.flac': 'audio/flac',
  '.mp3': 'audio/mpeg',
  '.ogg': 'audio/ogg',
  '.m4a': 'audio/mp4',
};

/**
 * Starts serving. `mounts`: URL prefix → folder. `onRequest(req, res)` may answer a request
 * itself (return true) before the files are looked up, for tests that need odd responses.
 */
export async function startServer({ mounts, port = 0, host = '127.0.0.1', isolate = false, onRequest = null, quiet = true } = {}) {
  const table = Object.entries(mounts)
    .map(([prefix, dir]) => [prefix.endsWith('/') ? prefix : `${prefix}/`, path.resolve(dir)])
    .sort((a, b) => b[0].length - a[0].length);
  const server = http.createServer((req, res) => {
    res.on('finish', () => {
      if (!quiet) console.log(`${res.statusCode} ${req.method} ${req.url}`);
    });
    if (isolate) {
      res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
      res.setHeader('Cross-Origin-Embedder-Policy', 'require-corp');
      res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
    }
    res.setHeader('Cache-Control', 'no-store');
    if (onRequest && onRequest(req, res)) return;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD' }).end();
      return;
    }
    let pathname;
    try {
      pathname = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    } catch {
      res.writeHead(400).end('bad URL');
      return;
    }
    const mount = table.find(([prefix]) => pathname === prefix.slice(0, -1) || pathname.startsWith(prefix));
    if (!mount) return notFound(res);
    const [prefix, dir] = mount;
    let file = path.join(dir, pathname.slice(prefix.length));
    if (file !== dir && !file.startsWith(dir + path.sep)) return notFound(res);
    let stat;
    try {
      stat = fs.statSync(file);
      if (stat.isDirectory()) {
        if (!pathname.endsWith('/')) {
          res.writeHead(301, { Location: `${pathname}/` }).end();
          return;
        }
        file = path.join(file, 'index.html');
        stat = fs.statSync(file);
      }
    } catch {
      return notFound(res);
    }
    sendFile(req, res, file, stat);
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const address = server.address();
  return {
    url: `http://${host}:${address.port}/`,
    port: address.port,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections?.();
      }),
  };
}

function notFound(res) {
  res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('not found');
}

function sendFile(req, res, file, stat) {
  const type = TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream';
  const headers = { 'Content-Type': type, 'Accept-Ranges': 'bytes' };
  let start = 0;
  let end = stat.size - 1;
  const range = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? '');
  if (range && (range[1] || range[2])) {
    if (range[1]) {
      start = Number(range[1]);
      if (range[2]) end = Math.min(Number(range[2]), end);
    } else {
      start = Math.max(0, stat.size - Number(range[2]));
    }
    if (start > end) {
      res.writeHead(416, { 'Content-Range': `bytes */${stat.size}` }).end();
      return;
    }
    headers['Content-Range'] = `bytes ${start}-${end}/${stat.size}`;
  }
  headers['Content-Length'] = String(Math.max(0, end - start + 1));
  res.writeHead(range && (range[1] || range[2]) ? 206 : 200, headers);
  if (req.method === 'HEAD' || stat.size === 0) {
    res.end();
    return;
  }
  fs.createReadStream(file, { start, end }).pipe(res);
}

// ---- command line ---------------------------------------------------------------------------

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const mounts = {};
  let port = 8080;
  let isolate = false;
  let quiet = false;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--port') port = Number(args[++i]);
    else if (args[i] === '--isolate') isolate = true;
    else if (args[i] === '--quiet') quiet = true;
    else if (args[i] === '--mount') {
      const [prefix, dir] = args[++i].split('=');
      mounts[prefix] = dir;
    } else {
      console.error('usage: static-server.mjs [--port N] [--isolate] [--quiet] --mount /prefix/=folder ...');
      process.exit(2);
    }
  }
  const server = await startServer({ mounts, port, isolate, quiet });
  console.log(`serving on ${server.url}`);
  for (const [prefix, dir] of Object.entries(mounts)) console.log(`  ${prefix} -> ${dir}`);
}
