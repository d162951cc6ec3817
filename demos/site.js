// Where the demo pages find their default models (a page's ?model= parameter overrides them).
// As here, for the demo server (scripts/demo-web.sh): the model folders it serves under /models/.
// scripts/build-demos.sh writes this file again for a static host, which has no /models/: Hub ids
// ('hub'), fetched from huggingface.co or from the Hub mirror its --remote-host names.
export const MODELS_FROM = 'local';
/** env.remoteHost for every page, or null for the package's default (huggingface.co). */
export const REMOTE_HOST = null;
