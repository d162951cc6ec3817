// Assembles the unpacked extension (load it from chrome://extensions, "Load unpacked"):
//   manifest.json, background.js, sidepanel.html, sidepanel.js   this folder's files;
//   webformers/        the package's JavaScript and both engine builds (npm/dist, built first
//                      when missing);
//   models/NAME/       the model, packaged (--model DIR), or none with --hub ID (fetched from the
//                      Hub by the panel on first use, then cached in IndexedDB);
//   model.json         {task, model, local}: what the panel loads.
//
// Usage: node demos/extension/build.mjs [--out DIR] [--model DIR | --hub ID]
//   default --out target/extension, --model tests/fixtures/tiny-tasks/distilbert-sequence-classification
//   (a tiny random model: it runs anywhere, its labels mean nothing; give a real
//   text-classification folder, or --hub Xenova/distilbert-base-uncased-finetuned-sst-2-english).

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const dist = path.join(root, 'npm', 'dist');
const PAGES = ['manifest.json', 'background.js', 'sidepanel.html', 'sidepanel.js'];
const TASK = 'text-classification';

function usage(message) {
  console.error(`build-extension: ${message}\nusage: node demos/extension/build.mjs [--out DIR] [--model DIR | --hub ID]`);
  process.exit(2);
}

function parseArgs(argv) {
  const options = { out: path.join(root, 'target', 'extension'), model: path.join(root, 'tests', 'fixtures', 'tiny-tasks', 'distilbert-sequence-classification'), hub: null };
  for (let i = 0; i < argv.length; i++) {
    const value = argv[i + 1];
    if (!['--out', '--model', '--hub'].includes(argv[i])) usage(`unknown argument ${argv[i]}`);
    if (!value) usage(`${argv[i]} needs a value`);
    options[argv[i].slice(2)] = argv[i] === '--hub' ? value : path.resolve(value);
    i++;
  }
  return options;
}

const options = parseArgs(process.argv.slice(2));

if (!fs.existsSync(path.join(dist, 'index.js'))) {
  console.log('build-extension: npm/dist is missing; building the package');
  const r = spawnSync('npm', ['run', 'build'], { cwd: path.join(root, 'npm'), stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
if (!options.hub && !fs.existsSync(path.join(options.model, 'config.json'))) usage(`${options.model} is not a model folder (no config.json)`);

const out = options.out;
fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(path.join(out, 'webformers', 'wasm'), { recursive: true });
for (const f of PAGES) fs.copyFileSync(path.join(here, f), path.join(out, f));
// The package's modules and both engines (the threaded one runs in the cross-origin isolated
// panel); no types, no source maps.
for (const f of fs.readdirSync(dist)) {
  if (f.endsWith('.js')) fs.copyFileSync(path.join(dist, f), path.join(out, 'webformers', f));
}
for (const f of fs.readdirSync(path.join(dist, 'wasm'))) {
  if (/\.(js|wasm)$/.test(f)) fs.copyFileSync(path.join(dist, 'wasm', f), path.join(out, 'webformers', 'wasm', f));
}

let model;
if (options.hub) {
  model = options.hub;
} else {
  model = path.basename(options.model);
  fs.cpSync(options.model, path.join(out, 'models', model), { recursive: true });
}
fs.writeFileSync(path.join(out, 'model.json'), `${JSON.stringify({ task: TASK, model, local: !options.hub }, null, 2)}\n`);

const size = (dir) =>
  fs.readdirSync(dir, { withFileTypes: true }).reduce((n, e) => n + (e.isDirectory() ? size(path.join(dir, e.name)) : fs.statSync(path.join(dir, e.name)).size), 0);
console.log(`build-extension: ${path.relative(process.cwd(), out) || out} ready (${(size(out) / 1e6).toFixed(1)} MB; model ${model}${options.hub ? ' from the Hub' : ', packaged'})`);
