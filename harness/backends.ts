/** Registers the built-in backends with the registry (imported once by the public entry). */
import { createReferenceBackend } from '../reference/index.js';
import { registerBackend } from './registry.js';

registerBackend({
  name: 'reference',
  priority: 0,
  summary: 'pure TypeScript, float64: the executable spec, always available, slow',
  create: async () => createReferenceBackend(),
});
