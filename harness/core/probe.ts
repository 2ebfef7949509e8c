/**
 * The cost rule's probe (cost.ts, step 2) on a backend's own stages: the
 * scores of the last PROBE_QUERIES window queries, cut to the prefix
 * [0, L - W), pooled and counted by the budget rule, give an estimate of L'
 * at about PROBE_QUERIES / W of the full scoring's cost.
 */
import { afterProbe, PROBE_QUERIES, type CostModel } from './cost.js';
import type { AttentionInput, Budget, ResolvedTsaOptions } from './interface.js';
import type { PipelineStages } from './pipeline.js';
import { keptLengthOf } from './rules.js';

/**
 * The probe's verdict: a dense budget ('not-worth-it', with the estimate in
 * its detail), or null to run the spec's pipeline. Call after cost.ts's
 * beforeProbe let the layer through.
 */
export async function probeVerdict(stages: PipelineStages, input: AttentionInput, o: ResolvedTsaOptions, m: CostModel): Promise<Budget | null> {
  const { heads: H, seqLen: L } = input;
  const w = Math.min(PROBE_QUERIES, o.window);
  const P = L - o.window;
  const sampled = await stages.scores(input, { ...o, window: w });
  const prefix = new Float32Array(H * P);
  for (let h = 0; h < H; h++) prefix.set(sampled.subarray(h * (L - w), h * (L - w) + P), h * P);
  const shape = { heads: H, prefixLen: P };
  const estimate = await stages.budget(await stages.pool(prefix, shape, o), shape, o);
  return afterProbe(input, keptLengthOf(estimate, L, o), o, m);
}
