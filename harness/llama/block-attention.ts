/**
 * The random-blocks baseline of XAttention: in each sparse layer and head, as many causal
 * (query block, key block) pairs as XAttention selected there, the diagonal blocks always kept
 * and the rest drawn uniformly (seeded) from the strictly lower ones, attended exactly over every
 * row by the public attendBlocks stage. Against XAttention at the same share it shows what the
 * antidiagonal scores add over chance.
 */
import { resolveOptions, Rng, TsaInputError, type Backend, type BlockSparseBackend, type TsaOptions } from '../index.js';
import { denseLayer, layerList } from './attention.js';
import type { PrefillAttention } from './llama.js';

/** The backend's block-sparse stages, or TsaInputError('OPTION') naming the backend without them. */
export function blockBackend(backend: Backend): BlockSparseBackend {
  const b = backend as Partial<BlockSparseBackend>;
  if (typeof b.blockScores !== 'function' || typeof b.blockSelect !== 'function' || typeof b.attendBlocks !== 'function') {
    throw new TsaInputError(`the ${backend.name} backend has no block-sparse stages (blockScores, blockSelect, attendBlocks): choose another with --backend`, 'OPTION');
  }
  return backend as BlockSparseBackend;
}

/**
 * randomBlockMask: a mask [H][nb][nb] with, in head h, the nb diagonal blocks and selected[h] - nb
 * of the nb (nb - 1) / 2 strictly lower blocks, drawn uniformly without replacement (partial
 * Fisher-Yates over the lower blocks in row-major order). nb <= selected[h] <= nb (nb + 1) / 2.
 */
export function randomBlockMask(rng: Rng, H: number, nb: number, selected: readonly number[]): Uint8Array {
  const causal = (nb * (nb + 1)) / 2;
  const lower = new Int32Array(causal - nb);
  const mask = new Uint8Array(H * nb * nb);
  for (let h = 0; h < H; h++) {
    const c = selected[h]!;
    if (!(Number.isInteger(c) && c >= nb && c <= causal)) {
      throw new TsaInputError(`random blocks: head ${h} asks for ${String(c)} blocks; with ${nb} block rows it needs ${nb}..${causal} (the diagonal is always kept)`, 'SHAPE');
    }
    let m = 0;
    for (let i = 0; i < nb; i++) {
      mask[(h * nb + i) * nb + i] = 1;
      for (let j = 0; j < i; j++) lower[m++] = i * nb + j;
    }
    for (let r = 0; r < c - nb; r++) {
      const x = r + Math.floor(rng.uniform() * (m - r));
      const pick = lower[x]!;
      lower[x] = lower[r]!;
      lower[r] = pick;
      mask[h * nb * nb + pick] = 1;
    }
  }
  return mask;
}

/**
 * Random blocks in `sparseLayers` (options.blockSparse gives the block size), dense elsewhere:
 * `selectedOf(layer)` is XAttention's selected count per head there, on the same rows.
 */
export function randomBlocksAttention(
  backend: Backend,
  sparseLayers: readonly number[],
  options: TsaOptions,
  selectedOf: (layer: number) => readonly number[],
  seed: number,
): PrefillAttention {
  const o = resolveOptions(options);
  if (!o.blockSparse) throw new TsaInputError('random blocks need options.blockSparse (the block size)', 'OPTION');
  const B = o.blockSparse.blockSize;
  const blocks = blockBackend(backend);
  const sparse = new Set(sparseLayers);
  const rng = new Rng(seed);
  return {
    label: `random blocks B ${B} layers ${layerList(sparseLayers)} seed ${seed}`,
    selects: (layer) => sparse.has(layer),
    async attend(layer, input) {
      if (!sparse.has(layer)) return denseLayer(backend, layer, input, 'dense layer');
      const nb = Math.ceil(input.seqLen / B);
      const selected = [...selectedOf(layer)];
      const output = await blocks.attendBlocks(input, randomBlockMask(rng, input.heads, nb, selected), o);
      const causal = (nb * (nb + 1)) / 2;
      const detail = `random blocks: ${selected.reduce((a, b) => a + b, 0)} of ${input.heads * causal} causal blocks`;
      return { output, info: { layer, mode: 'dense', keptFraction: 1, detail, blocks: { selected, causal } } };
    },
  };
}
