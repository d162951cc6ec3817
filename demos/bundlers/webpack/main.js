import { pipeline, env, workerPipeline } from 'webformers';
import { runChecks } from '../shared/check.js';

// `new Worker(new URL(literal, import.meta.url), { type: 'module' })` is the shape webpack bundles as a worker.
runChecks({ pipeline, env, workerPipeline }, () => new Worker(new URL('./worker.js', import.meta.url), { type: 'module' }));
