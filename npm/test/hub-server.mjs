// The Hub stand-in (tests/hub/server.py) for the JS tests and the browser benchmark: started on
// free ports of 127.0.0.1, stopped when its stdin closes (so it never outlives the process).

import { spawn } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { root } from './helpers.mjs';

/**
 * Starts the Hub and its CDN serving `repos` ({'org/name': folder}); `gated` repos need `token`.
 * Resolves to {endpoint, cdn, stats(), reset(), fault(query), close()}.
 */
export async function startHub(repos, { gated = [], token = 'test-token' } = {}) {
  const args = [path.join(root, 'tests', 'hub', 'server.py'), '--port', '0', '--cdn-port', '0', '--token', token];
  for (const [id, dir] of Object.entries(repos)) args.push('--repo', `${id}=${dir}`);
  for (const id of gated) args.push('--gated', id);
  const child = spawn('python3', args, { stdio: ['pipe', 'pipe', 'inherit'] });
  const first = await new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`tests/hub/server.py exited (${code}) before it listened`)));
    readline.createInterface({ input: child.stdout }).once('line', resolve);
  });
  const { port, cdn_port: cdnPort } = JSON.parse(first);
  const endpoint = `http://127.0.0.1:${port}`;
  const get = async (p) => {
    const r = await fetch(`${endpoint}${p}`);
    if (!r.ok) throw new Error(`${p}: HTTP ${r.status}`);
    return r;
  };
  return {
    endpoint,
    cdn: `http://127.0.0.1:${cdnPort}`,
    /** Every request since the last reset: {server, method, file, range, auth, status}. */
    stats: async () => (await get('/_stats')).json(),
    reset: () => get('/_reset'),
    /** Misbehaves on the next requests for a file (see server.py): 'file=model.safetensors&kind=drop&after=1000'. */
    fault: (query) => get(`/_fault?${query}`),
    /** Throttles every file body of both servers to `bytesPerSecond` in all (0: unthrottled). */
    rate: (bytesPerSecond) => get(`/_rate?bytes_per_s=${bytesPerSecond}`),
    close: () =>
      new Promise((resolve) => {
        child.once('exit', resolve);
        child.stdin.end();
        setTimeout(() => child.kill(), 2000).unref();
      }),
  };
}
