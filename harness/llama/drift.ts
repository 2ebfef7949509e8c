/**
 * Layer selection by inter-layer representation drift (TSA-SPEC.md "Interleaving"):
 *   R_l = mean_t ||h_{l+1,t} - h_{l,t}|| / (||h_{l,t}|| + eps)
 * where h_l [L][dim] is the residual stream entering layer l and h_{l+1} the one leaving it,
 * measured on a dense prefill. The lowest-drift share `delta` of the layers is made sparse.
 */
import { TsaInputError, type Backend } from '../index.js';
import { denseAttention } from './attention.js';
import type { Llama } from './llama.js';
import { sampleText } from './sampling.js';

export const DRIFT_EPS = 1e-6;

/** drift: R_l for each layer from residual streams h_0 .. h_layers, each [L][dim]. */
export function driftFromResiduals(residuals: readonly Float32Array[], dim: number): number[] {
  if (residuals.length < 2) throw new TsaInputError(`need the residual streams h_0..h_n (n >= 1), got ${residuals.length}`, 'SHAPE');
  const L = residuals[0]!.length / dim;
  const drift: number[] = [];
  for (let l = 0; l + 1 < residuals.length; l++) {
    const a = residuals[l]!;
    const b = residuals[l + 1]!;
    let sum = 0;
    for (let t = 0; t < L; t++) {
      let diff = 0;
      let norm = 0;
      for (let i = t * dim; i < (t + 1) * dim; i++) {
        diff += (b[i]! - a[i]!) ** 2;
        norm += a[i]! ** 2;
      }
      sum += Math.sqrt(diff) / (Math.sqrt(norm) + DRIFT_EPS);
    }
    drift.push(sum / L);
  }
  return drift;
}

/** Profiles drift with one dense prefill of `tokens`. */
export async function profileDrift(llama: Llama, backend: Backend, tokens: readonly number[]): Promise<number[]> {
  const r = await llama.prefill(tokens, denseAttention(backend), { captureResiduals: true });
  return driftFromResiduals(r.residuals!, llama.config.dim);
}

/** The default profile prompt: a full-context story sampled from the dense model (temperature 1, this seed). */
export const PROFILE_SEED = 1000;

/** Drift of every layer on the default profile prompt (the same for `tsa generate` and `tsa eval`). */
export async function defaultDriftProfile(llama: Llama, backend: Backend, seed = PROFILE_SEED): Promise<number[]> {
  return profileDrift(llama, backend, await sampleText(llama, backend, llama.config.seqLen, 1, seed));
}

/**
 * Number of sparse layers for a share delta of n layers: delta * n rounded half down
 * (ceil(delta * n - 0.5)), so 0.5 of 5 layers is 2; the rounding favours accuracy.
 */
export function sparseLayerCount(layers: number, delta: number): number {
  if (!(delta >= 0 && delta <= 1)) throw new TsaInputError(`delta must be in [0, 1], got ${delta}`, 'OPTION');
  return Math.min(layers, Math.max(0, Math.ceil(delta * layers - 0.5 - 1e-9)));
}

/** Layers ordered by drift, lowest first (ties: the lower layer first). */
export function rankByDrift(drift: readonly number[]): number[] {
  return drift.map((_, l) => l).sort((a, b) => drift[a]! - drift[b]! || a - b);
}

/** The lowest-drift `sparseLayerCount(n, delta)` layers, in ascending layer order. */
export function chooseSparseLayers(drift: readonly number[], delta: number): number[] {
  return rankByDrift(drift)
    .slice(0, sparseLayerCount(drift.length, delta))
    .sort((a, b) => a - b);
}

/** Parses an explicit layer list like "2,3" against a model of `layers` layers. */
export function parseLayerList(spec: string, layers: number): number[] {
  const items = spec.trim() === '' ? [] : spec.split(',').map((s) => Number(s.trim()));
  for (const l of items) {
    if (!Number.isInteger(l) || l < 0 || l >= layers) {
      throw new TsaInputError(`sparse layer list '${spec}': each entry must be a layer index in [0, ${layers})`, 'OPTION');
    }
  }
  return [...new Set(items)].sort((a, b) => a - b);
}
