// Importing 'webformers/worker' in a module Web Worker makes it answer workerPipeline() calls.
export {};
