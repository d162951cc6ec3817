import path from 'node:path';
import { fileURLToPath } from 'node:url';

export default {
  mode: 'production',
  entry: './main.js',
  // ES module output, so that the package's module workers load their chunks with import().
  experiments: { outputModule: true },
  output: {
    path: path.join(path.dirname(fileURLToPath(import.meta.url)), 'dist'),
    filename: 'main.js',
    module: true,
    clean: true,
  },
  performance: { hints: false },
  // webpack 5.113 moves the threaded .wasm's URL module, which the page and the pool thread both
  // reach, into a shared chunk that it never writes with ESM output: the pool thread's worker then
  // waits for it forever. Without chunk splitting each entry keeps its own copy.
  optimization: { splitChunks: false },
};
