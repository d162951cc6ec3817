import { pipeline, env, workerPipeline } from 'webformers';
import { runChecks } from '../shared/check.js';

// esbuild leaves this URL as it is: worker.js is the build's second entry point, beside main.js.
runChecks({ pipeline, env, workerPipeline }, () => new Worker(new URL('./worker.js', import.meta.url), { type: 'module' }));
