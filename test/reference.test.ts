/** The shared backend suite on the reference backend (float64 accumulation: selections must be identical). */
import { createReferenceBackend } from '../reference/index.js';
import { describeBackendSuite } from './shared/backend-suite.js';
import { describeBlockSparseSuite } from './shared/block-sparse-suite.js';

describeBackendSuite({
  name: 'reference',
  create: async () => createReferenceBackend(),
  precision: 'float64',
});

describeBlockSparseSuite({ name: 'reference', create: async () => createReferenceBackend(), precision: 'float64' });
