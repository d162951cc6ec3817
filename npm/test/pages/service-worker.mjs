// A module service worker for extension.test.mjs: it imports the package statically (allowed in
// service workers, unlike import()), then answers each message with what pipeline() did.

import { pipeline } from '/webformers/index.js';

self.addEventListener('message', async (event) => {
  let reply;
  try {
    await pipeline('text-classification', event.data.model, { device: 'wasm' });
    reply = { resolved: true };
  } catch (e) {
    reply = { name: e?.name, code: e?.code, message: e?.message ?? String(e) };
  }
  event.source.postMessage(reply);
});
