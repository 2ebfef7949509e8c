/**
 * The reference XAttention stages (../shared/golden-xattn/README.md), float64 throughout:
 * antidiagonal block masses, the authors' code's selection rule, exact attention over the
 * selected blocks. Layouts are those of harness/core/interface.ts.
 */
import type { AttentionInput, BlockShape, ResolvedTsaOptions } from '../harness/core/interface.js';
import { blockSparseOf } from '../harness/core/validate.js';

/**
 * blockScores, per query head h over n = L rows, B = blockSize, S = stride, nb = ceil(n / B),
 * R = nb B / S strided rows (rows past n are zero padding):
 *   z[r][c] = sum_{u<S} q[rS + S-1-u] . k[cS + u] / (sqrt(D) S) for c <= r (causal at strided granularity);
 *   p[r][.] = softmax_c z[r][.], 0 for strided query rows made only of padding (rS >= n);
 *   M[i][j] = sum of p[r][c] over r in query block i, c in key block j.  Output [H][nb][nb].
 */
export function blockScores(input: AttentionInput, o: ResolvedTsaOptions): Float32Array {
  const { heads: H, kvHeads: Hkv, headDim: D, seqLen: n, q, k } = input;
  const { stride: S, blockSize: B } = blockSparseOf(o);
  const nb = Math.ceil(n / B);
  const R = (nb * B) / S;
  const per = B / S;
  const G = H / Hkv;
  const scale = 1 / (Math.sqrt(D) * S);
  const out = new Float32Array(H * nb * nb);
  const z = new Float64Array(R);
  for (let h = 0; h < H; h++) {
    const qBase = h * n * D;
    const kBase = Math.floor(h / G) * n * D;
    for (let r = 0; r * S < n; r++) {
      let m = -Infinity;
      for (let c = 0; c <= r; c++) {
        let x = 0;
        for (let u = 0; u < S; u++) {
          const qi = r * S + S - 1 - u;
          const kj = c * S + u;
          if (qi >= n || kj >= n) continue;
          for (let d = 0; d < D; d++) x += q[qBase + qi * D + d]! * k[kBase + kj * D + d]!;
        }
        z[c] = x * scale;
        if (z[c]! > m) m = z[c]!;
      }
      let l = 0;
      for (let c = 0; c <= r; c++) l += Math.exp(z[c]! - m);
      const row = (h * nb + Math.floor(r / per)) * nb;
      const acc = new Float64Array(nb);
      for (let c = 0; c <= r; c++) acc[Math.floor(c / per)]! += Math.exp(z[c]! - m) / l;
      for (let j = 0; j < nb; j++) out[row + j]! += acc[j]!;
    }
  }
  return out;
}

/**
 * blockSelect, per head and query block i, over the causal blocks j <= i (the authors' code):
 * the diagonal i always; R = T * sum_j M[i][j]; the other blocks by descending mass o_0, o_1, ...
 * (ties: lower index first): o_0 always, o_k (k >= 1) iff M[i][i] + M[o_0] + ... + M[o_{k-2}] < R,
 * stopping at the first that is not (the running sum lags one block); block 0 always. f64 sums.
 */
export function blockSelect(masses: Float32Array, shape: BlockShape, o: ResolvedTsaOptions): Uint8Array {
  const { heads: H, blocks: nb } = shape;
  const T = blockSparseOf(o).threshold;
  const mask = new Uint8Array(H * nb * nb);
  for (let h = 0; h < H; h++) {
    for (let i = 0; i < nb; i++) {
      const row = (h * nb + i) * nb;
      let total = 0;
      for (let j = 0; j < nb; j++) total += masses[row + j]!;
      const limit = T * total;
      mask[row + i] = 1;
      mask[row] = 1;
      const order = Array.from({ length: i }, (_, j) => j).sort((a, b) => masses[row + b]! - masses[row + a]! || a - b);
      let sum = masses[row + i]!;
      for (let k = 0; k < order.length; k++) {
        if (k >= 1) {
          if (!(sum < limit)) break;
          sum += masses[row + order[k - 1]!]!;
        }
        mask[row + order[k]!] = 1;
      }
    }
  }
  return mask;
}

/**
 * attendBlocks: out[t] = sum_{s <= t, mask[h][t/B][s/B]} p_ts v[s], p_ts = softmax over those keys of
 * q_t . k_s / sqrt(D) (token-level causal mask inside the diagonal block). Output [L][H*D].
 */
export function attendBlocks(input: AttentionInput, mask: Uint8Array, o: ResolvedTsaOptions): Float32Array {
  const { heads: H, kvHeads: Hkv, headDim: D, seqLen: L, q, k, v } = input;
  const B = blockSparseOf(o).blockSize;
  const nb = Math.ceil(L / B);
  const G = H / Hkv;
  const scale = 1 / Math.sqrt(D);
  const out = new Float32Array(L * H * D);
  const s = new Float64Array(L);
  const acc = new Float64Array(D);
  for (let h = 0; h < H; h++) {
    const qBase = h * L * D;
    const kvBase = Math.floor(h / G) * L * D;
    for (let t = 0; t < L; t++) {
      const row = (h * nb + Math.floor(t / B)) * nb;
      const qo = qBase + t * D;
      // Visible keys: j <= t in the selected blocks of t's query block, block by block.
      const blocks: number[] = [];
      for (let b = 0; b * B <= t; b++) if (mask[row + b] === 1) blocks.push(b);
      let m = -Infinity;
      for (const b of blocks) {
        for (let j = b * B; j < Math.min((b + 1) * B, t + 1); j++) {
          const ko = kvBase + j * D;
          let x = 0;
          for (let d = 0; d < D; d++) x += q[qo + d]! * k[ko + d]!;
          s[j] = x * scale;
          if (s[j]! > m) m = s[j]!;
        }
      }
      acc.fill(0);
      let l = 0;
      for (const b of blocks) {
        for (let j = b * B; j < Math.min((b + 1) * B, t + 1); j++) {
          const p = Math.exp(s[j]! - m);
          const vo = kvBase + j * D;
          l += p;
          for (let d = 0; d < D; d++) acc[d]! += p * v[vo + d]!;
        }
      }
      for (let d = 0; d < D; d++) out[(t * H + h) * D + d] = acc[d]! / l;
    }
  }
  return out;
}
