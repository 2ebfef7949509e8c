/**
 * Prefill attention plans for the Llama runtime, built on the public Backend API:
 * - dense: `Backend.dense` in every layer;
 * - tsa: `Backend.tokenSparseAttention` (the coverage rule) in the sparse layers, dense elsewhere;
 * - fixed-ratio (baseline): the same pooled scores, but a fixed keep count and no coverage rule:
 *   scores -> pool -> select(keep) -> attendSelected;
 * - random (baseline): `keep` prefix positions drawn uniformly per head (seeded), the window
 *   always kept, -> attendSelected;
 * - XAttention (`tsa` with options.blockSparse) alone or on TSA's rows, and its random-blocks
 *   baseline (block-attention.ts).
 */
import { Rng } from '../index.js';
import { resolveOptions, type AttentionInput, type Backend, type TsaOptions } from '../index.js';
import type { LayerAttentionInfo, PrefillAttention } from './llama.js';

type Attended = { output: Float32Array; info: LayerAttentionInfo };

export async function denseLayer(backend: Backend, layer: number, input: AttentionInput, detail: string): Promise<Attended> {
  return { output: await backend.dense(input), info: { layer, mode: 'dense', keptFraction: 1, detail } };
}

export function layerList(layers: readonly number[]): string {
  return layers.length ? layers.join(',') : 'none';
}

/** Every layer dense. */
export function denseAttention(backend: Backend): PrefillAttention {
  return {
    label: 'dense',
    selects: () => false,
    attend: (layer, input) => denseLayer(backend, layer, input, 'dense layer'),
  };
}

/**
 * Token Sparse Attention in `sparseLayers`, dense elsewhere (short prompts run dense inside the
 * library). With options.blockSparse it is XAttention: on TSA's kept rows (coverage > 0), or
 * alone on every row (coverage 0); the layer info then holds the selected blocks per head.
 */
export function tsaAttention(backend: Backend, sparseLayers: readonly number[], options: TsaOptions): PrefillAttention {
  const o = resolveOptions(options);
  const sparse = new Set(sparseLayers);
  const xattn = o.blockSparse ? ` + xattention B ${o.blockSparse.blockSize} S ${o.blockSparse.stride} T ${o.blockSparse.threshold}` : '';
  return {
    label: `tsa tau=${o.coverage}${xattn} layers ${layerList(sparseLayers)}`,
    selects: (layer) => sparse.has(layer),
    async attend(layer, input) {
      if (!sparse.has(layer)) return denseLayer(backend, layer, input, 'dense layer');
      const r = await backend.tokenSparseAttention(input, o);
      const detail = r.budget.mode === 'sparse' ? `keep ${r.budget.keep} + window ${o.window} (pruned ${r.budget.pruned})` : `${r.budget.reason}: ${r.budget.detail}`;
      const info: LayerAttentionInfo = { layer, mode: r.budget.mode, keptFraction: r.keptFraction, detail };
      if (r.blockSparse) info.blocks = blocksOf(r.blockSparse.mask, input.heads, r.blockSparse.blocks);
      return { output: r.output, info };
    },
  };
}

/** Per head the selected blocks of a mask [H][nb][nb], and the causal count nb (nb + 1) / 2. */
export function blocksOf(mask: Uint8Array, H: number, nb: number): { selected: number[]; causal: number } {
  const selected = Array.from({ length: H }, (_, h) => mask.subarray(h * nb * nb, (h + 1) * nb * nb).reduce((n, x) => n + x, 0));
  return { selected, causal: (nb * (nb + 1)) / 2 };
}

/** keep prefix tokens such that (keep + W) / L is closest to `fraction`, within [1, L - W]. */
export function keepForFraction(fraction: number, seqLen: number, window: number): number {
  return Math.min(seqLen - window, Math.max(1, Math.round(fraction * seqLen) - window));
}

function sparseInfo(layer: number, keep: number, window: number, L: number, how: string): LayerAttentionInfo {
  return { layer, mode: 'sparse', keptFraction: (keep + window) / L, detail: `${how}: keep ${keep} + window ${window}` };
}

/**
 * Fixed-ratio baseline: in `sparseLayers` keep the top `fraction` of positions (window included)
 * by the same pooled scores TSA uses, whatever the attention distribution looks like.
 */
export function fixedRatioAttention(backend: Backend, sparseLayers: readonly number[], options: TsaOptions, fraction: number): PrefillAttention {
  const o = resolveOptions(options);
  const sparse = new Set(sparseLayers);
  return {
    label: `fixed-ratio ${fraction.toFixed(3)} layers ${layerList(sparseLayers)}`,
    selects: (layer) => sparse.has(layer),
    async attend(layer, input) {
      const L = input.seqLen;
      if (!sparse.has(layer) || L <= o.window) return denseLayer(backend, layer, input, 'dense layer');
      const keep = keepForFraction(fraction, L, o.window);
      const shape = { heads: input.heads, prefixLen: L - o.window };
      const pooled = await backend.pool(await backend.scores(input, o), shape, o);
      const indices = await backend.select(pooled, shape, keep, o);
      const output = await backend.attendSelected(input, indices, keep + o.window);
      return { output, info: sparseInfo(layer, keep, o.window, L, 'fixed ratio') };
    },
  };
}

/**
 * randomIndices: per head, `keep` distinct prefix positions drawn uniformly (partial
 * Fisher-Yates), sorted, then the window L-W..L-1; [H][keep + W].
 */
export function randomIndices(rng: Rng, heads: number, L: number, window: number, keep: number): Int32Array {
  const P = L - window;
  const Lc = keep + window;
  const out = new Int32Array(heads * Lc);
  const pool = new Int32Array(P);
  for (let h = 0; h < heads; h++) {
    for (let t = 0; t < P; t++) pool[t] = t;
    for (let i = 0; i < keep; i++) {
      const j = i + Math.floor(rng.uniform() * (P - i));
      const tmp = pool[i]!;
      pool[i] = pool[j]!;
      pool[j] = tmp;
    }
    out.set(pool.slice(0, keep).sort(), h * Lc);
    for (let w = 0; w < window; w++) out[h * Lc + keep + w] = P + w;
  }
  return out;
}

/** Random baseline: the same keep count as fixed-ratio, positions drawn at random (seeded). */
export function randomAttention(backend: Backend, sparseLayers: readonly number[], options: TsaOptions, fraction: number, seed: number): PrefillAttention {
  const o = resolveOptions(options);
  const sparse = new Set(sparseLayers);
  const rng = new Rng(seed);
  return {
    label: `random ${fraction.toFixed(3)} layers ${layerList(sparseLayers)} seed ${seed}`,
    selects: (layer) => sparse.has(layer),
    async attend(layer, input) {
      const L = input.seqLen;
      if (!sparse.has(layer) || L <= o.window) return denseLayer(backend, layer, input, 'dense layer');
      const keep = keepForFraction(fraction, L, o.window);
      const indices = randomIndices(rng, input.heads, L, o.window, keep);
      const output = await backend.attendSelected(input, indices, keep + o.window);
      return { output, info: sparseInfo(layer, keep, o.window, L, 'random') };
    },
  };
}
