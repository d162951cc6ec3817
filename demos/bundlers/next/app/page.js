'use client';

import { useEffect } from 'react';
import { runChecks } from '../../shared/check.js';

export default function Page() {
  useEffect(() => {
    // The package runs in the browser only: imported here, never during the static render.
    import('webformers').then(
      (webformers) => runChecks(webformers, () => new Worker(new URL('../worker.js', import.meta.url), { type: 'module' })),
      (e) => (document.body.dataset.result = JSON.stringify({ error: String(e?.stack ?? e) })),
    );
  }, []);
  return <p>webformers with Next.js</p>;
}
