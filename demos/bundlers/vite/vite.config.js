import { defineConfig } from 'vite';

export default defineConfig({
  // The package's workers import the engine, which loads its glue with import(): an ES module
  // worker can split chunks, Vite's default 'iife' worker cannot.
  worker: { format: 'es' },
  // The dev server's pre-bundling would move the package's JavaScript away from its .wasm files.
  optimizeDeps: { exclude: ['webformers'] },
  build: { target: 'es2022' },
});
