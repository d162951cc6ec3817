import path from 'node:path';
import { fileURLToPath } from 'node:url';

export default {
  // A static site (out/): any server can send it with the COOP/COEP headers that threads need.
  output: 'export',
  // Turbopack reads no file outside its root (by default this app's folder); the page imports
  // ../shared/check.js, which the other bundlers' apps share.
  turbopack: { root: path.join(path.dirname(fileURLToPath(import.meta.url)), '..') },
};
