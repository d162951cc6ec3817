// esbuild bundles the page and the worker, but does not follow `new URL(file, import.meta.url)`:
// the package's .wasm files and its pool thread (thread-worker.js with the threaded glue) are
// copied next to the bundles, where the bundled code looks for them.
import * as esbuild from 'esbuild';
import fs from 'node:fs';

const pkg = 'node_modules/webformers/dist';
fs.rmSync('dist', { recursive: true, force: true });
await esbuild.build({
  entryPoints: ['main.js', 'worker.js'],
  bundle: true,
  format: 'esm',
  splitting: true,
  target: 'es2022',
  outdir: 'dist',
});
fs.cpSync(`${pkg}/wasm`, 'dist/wasm', { recursive: true });
fs.copyFileSync(`${pkg}/thread-worker.js`, 'dist/thread-worker.js');
fs.copyFileSync('index.html', 'dist/index.html');
