/**
 * The platform-neutral public API, shared by the Node entry (index.ts) and
 * the browser entry (browser.ts); each adds its platform's backends.
 */
export * from './core/interface.js';
export * from './core/errors.js';
export { resolveOptions, validateInput } from './core/validate.js';
export { magnitudeLimit } from './core/range.js';
export {
  registerBackend,
  registeredBackends,
  createBackend,
  selectBackend,
  probeBackends,
  type BackendEntry,
  type ProbeRow,
  type Selection,
  type SelectOptions,
} from './registry.js';
export { createReferenceBackend } from '../reference/index.js';
export { generateInput, Rng, INPUT_KINDS, type InputKind } from './core/generators.js';
export { runPipeline } from './core/pipeline.js';
export { PROBE_QUERIES, describeCostModel, type CostModel } from './core/cost.js';
export { BLOCK_STAGES, STAGES, type BlockStageName, type StageName } from './core/stages.js';
export { defineBackend, type BackendDefinition, type BackendStages } from './core/backend.js';
