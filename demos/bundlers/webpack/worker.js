import 'webformers/worker';
