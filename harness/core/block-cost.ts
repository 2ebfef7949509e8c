/**
 * The cost rule's half for block-sparse attention (options.blockSparse), shared by every backend.
 * After the token decision (cost.ts, rules.ts) a layer attends n rows: L' on TSA's compact set, or
 * all L. XAttention's block stages run on them only where they are estimated to beat attending
 * those rows without them; otherwise the layer attends them plainly (attendSelected, or dense) and
 * says so in TsaResult.blockDecision (verdict 'not-worth-it', the estimate in detail). Whenever the
 * rule lets the block stages run, they run unchanged: the same mask and output as with the rule off.
 *
 * Estimated times (ms) of n rows, H query heads, nb = ceil(n / B), R = nb B / S strided rows,
 * F(n) = 4 H D n(n+1)/2 (cost.ts):
 *   plain(n)     = attendFixedMs + p F(n) / attendRate        p = compactPenalty on TSA's rows, else 1
 *   scoreFlops   = 2 H S D R(R+1)/2                           the causal strided GEMM (inner dimension S D)
 *   work(s)      = ((s nb(nb+1)/2 - nb) B^2 + nb B(B+1)/2) / (N(N+1)/2), N = nb B   the share of F the
 *                  selected blocks compute (off-diagonal blocks whole, diagonal blocks causal halves)
 *   blocks(n, s) = blockScoreMsPerRow H n + scoreFlops / blockScoreRate + blockSelectMsPerBlock H nb^2
 *                  + attendFixedMs + p blockAttendPenalty work(s) F(n) / attendRate
 * (on TSA's rows both paths pay p: gathered copies without GQA sharing, and the scatter back).
 * The decision:
 *   1. before probing: plain unless even the rule's floor s_min (every block row keeps its
 *      diagonal and one more block) beats plain by minGain;
 *   2. the probe: the backend's own blockScores and blockSelect (the spec's rule) on the first
 *      m = max(2, ceil(nb / 4)) block rows of one query head per KV group. Causal rows depend only
 *      on the keys before them, so these are exact rows of the full map, at about (m / nb)^2 Hkv / H
 *      of the full scoring. The selected count k_i of block row i (mean over the probed heads) over
 *      rows [floor(m / 2), m) is fitted by least squares as k_i = a + b (i + 1), b clamped to
 *      [0, 1], and extrapolated to every row, each clamped to [min(i + 1, 2), i + 1] (the rule
 *      keeps the diagonal and one more block): s_est = sum_i k_i / (nb (nb + 1) / 2). With fewer
 *      than two rows to fit, s_est is their selected / causal blocks;
 *   3. plain unless blocks(n, s_est) <= (1 - minGain) plain(n).
 * Local attention keeps about the same number of blocks per row (b near 0: a small share at
 * nb rows); near-uniform attention (Gaussian inputs) keeps a fixed fraction of every row (b near
 * 1, the share near 1): it is routed to plain attention at the probe's cost wherever that share
 * plus the scoring would not beat plain attention by minGain.
 *
 * A backend plugs in by supplying the four block rates of its CostModel: calibrate.ts fits them
 * whenever the stages it times include the block stages (a GPU backend that hands calibrate its
 * block stages gets them timed on its device by its CallTimer). A model without them (a pinned
 * older model, gpu/cost.ts's fallback) lets the block stages run, and the decision says so.
 */
import type { BlockStages } from './block-sparse.js';
import { BLOCK_RATES, causalFlops, type CostModel } from './cost.js';
import type { AttentionInput, BlockDecision, ResolvedBlockSparse, ResolvedTsaOptions } from './interface.js';

type Shape = { heads: number; headDim: number };

/** blockScores' FLOPs on n rows: 2 H S D R(R+1)/2 with R = ceil(n / B) B / S strided rows. */
export function blockScoreFlops(shape: Shape, n: number, bs: ResolvedBlockSparse): number {
  const R = (Math.ceil(n / bs.blockSize) * bs.blockSize) / bs.stride;
  return 2 * shape.heads * bs.stride * shape.headDim * ((R * (R + 1)) / 2);
}

/** Attention of n rows without the block stages: attendSelected on TSA's rows (compact), else dense. */
export function plainAttendMs(shape: Shape, n: number, compact: boolean, m: CostModel): number {
  return m.attendFixedMs + ((compact ? m.compactPenalty : 1) * causalFlops(shape, n)) / m.attendRate;
}

/** work(s): the share of causal query-key pairs that nb block rows of B compute at a selected-block share s. */
export function blockWork(nb: number, B: number, share: number): number {
  const N = nb * B;
  const pairs = (share * ((nb * (nb + 1)) / 2) - nb) * B * B + (nb * B * (B + 1)) / 2;
  return pairs / ((N * (N + 1)) / 2);
}

/** blockScores + blockSelect + attendBlocks of n rows (TSA's when `compact`) at selected share s (a model with the block rates). */
export function blockPathMs(shape: Shape, n: number, compact: boolean, share: number, bs: ResolvedBlockSparse, m: Required<CostModel>): number {
  const nb = Math.ceil(n / bs.blockSize);
  const p = compact ? m.compactPenalty : 1;
  return (
    m.blockScoreMsPerRow * shape.heads * n +
    blockScoreFlops(shape, n, bs) / m.blockScoreRate +
    m.blockSelectMsPerBlock * shape.heads * nb * nb +
    m.attendFixedMs +
    (p * m.blockAttendPenalty * blockWork(nb, bs.blockSize, share) * causalFlops(shape, n)) / m.attendRate
  );
}

/** The rule's floor on the share of nb block rows: the diagonal, and one more block in every row but the first. */
export function minBlockShare(nb: number): number {
  return (2 * nb - 1) / ((nb * (nb + 1)) / 2);
}

/** Block rows the probe scores of nb. */
export function probeBlockRows(nb: number): number {
  return Math.min(nb, Math.max(2, Math.ceil(nb / 4)));
}

const ms = (x: number): string => `${x.toFixed(x < 10 ? 2 : 1)} ms`;

function hasBlockRates(m: CostModel): m is Required<CostModel> {
  return BLOCK_RATES.every((key) => m[key] !== undefined);
}

/**
 * The first `rows` rows of the layer's n rows (TSA's `indices` [H][n] when composed) for the
 * first query head of each KV group, as a sequence of Hkv heads. blockScores reads no values:
 * v is k.
 */
function probeInput(input: AttentionInput, indices: Int32Array | null, n: number, rows: number): AttentionInput {
  const { heads: H, kvHeads: Hkv, headDim: D, seqLen: L } = input;
  const G = H / Hkv;
  const q = new Float32Array(Hkv * rows * D);
  const k = new Float32Array(Hkv * rows * D);
  for (let g = 0; g < Hkv; g++) {
    const h = g * G;
    for (let r = 0; r < rows; r++) {
      const t = (indices ? indices[h * n + r]! : r) * D;
      q.set(input.q.subarray(h * L * D + t, h * L * D + t + D), (g * rows + r) * D);
      k.set(input.k.subarray(g * L * D + t, g * L * D + t + D), (g * rows + r) * D);
    }
  }
  return { heads: Hkv, kvHeads: Hkv, headDim: D, seqLen: rows, q, k, v: k };
}

/**
 * step 2's s_est from the probe's mask [heads][m][m] for nb block rows: the per-row selected
 * counts of rows [floor(m / 2), m) fitted as a + b (i + 1) and extrapolated (see above).
 */
export function extrapolatedShare(mask: Uint8Array, heads: number, m: number, nb: number): number {
  const from = m >> 1;
  const xs: number[] = [];
  const ks: number[] = [];
  for (let i = from; i < m; i++) {
    let k = 0;
    for (let h = 0; h < heads; h++) for (let j = 0; j <= i; j++) k += mask[(h * m + i) * m + j]!;
    xs.push(i + 1);
    ks.push(k / heads);
  }
  const sum = (v: number[]) => v.reduce((a, b) => a + b, 0);
  if (xs.length < 2) return sum(ks) / sum(xs);
  const mx = sum(xs) / xs.length;
  const mk = sum(ks) / ks.length;
  const b = Math.min(1, Math.max(0, sum(xs.map((x, t) => (x - mx) * (ks[t]! - mk))) / sum(xs.map((x) => (x - mx) ** 2))));
  const a = mk - b * mx;
  let total = 0;
  for (let i = 0; i < nb; i++) total += Math.min(i + 1, Math.max(Math.min(i + 1, 2), a + b * (i + 1)));
  return total / ((nb * (nb + 1)) / 2);
}

/**
 * Step 1 alone: 'not-worth-it' where even the rule's floor share would not beat attending the n
 * rows (TSA's when `compact`) without the block stages by minGain, else null (go on: probe, or
 * run). A model without block rates gives null. The GPU's fused layer decides by this step only,
 * on the host before recording (its probe would need a readback between stages).
 */
export function blockFloorVerdict(shape: Shape, n: number, compact: boolean, bs: ResolvedBlockSparse, m: CostModel): BlockDecision | null {
  if (!hasBlockRates(m)) return null;
  const nb = Math.ceil(n / bs.blockSize);
  const plain = plainAttendMs(shape, n, compact, m);
  const floor = minBlockShare(nb);
  const best = blockPathMs(shape, n, compact, floor, bs, m);
  if (best <= (1 - m.minGain) * plain) return null;
  const what = `${n} rows, ${nb} block rows, without the block stages ${ms(plain)}`;
  return { verdict: 'not-worth-it', estimatedShare: null, detail: `cost rule: even the least share ${floor.toFixed(3)} would not beat attention without the block stages by ${m.minGain * 100}% (${what}, with them ${ms(best)})` };
}

/** Step 1 as a decision (a fused GPU layer's whole block rule): its 'not-worth-it', else 'run' saying why. */
export function blockFloorDecision(shape: Shape, n: number, compact: boolean, bs: ResolvedBlockSparse, m: CostModel): BlockDecision {
  const floor = blockFloorVerdict(shape, n, compact, bs, m);
  if (floor) return floor;
  const detail = hasBlockRates(m)
    ? `cost rule: the least share would pay on ${n} rows; no probe on this backend, so the block stages run`
    : 'cost rule: the backend has no block-stage rates; the block stages run';
  return { verdict: 'run', estimatedShare: null, detail };
}

/**
 * The verdict on the block stages for a layer attending n rows of `input` (TSA's `indices`
 * [H][n] when composed, else all rows): steps 1-3 above, the probe on `stages`.
 */
export async function blockVerdict(
  stages: BlockStages,
  input: AttentionInput,
  indices: Int32Array | null,
  n: number,
  o: ResolvedTsaOptions,
  m: CostModel,
): Promise<BlockDecision> {
  const bs = o.blockSparse!;
  if (!hasBlockRates(m)) return { verdict: 'run', estimatedShare: null, detail: 'cost rule: the backend has no block-stage rates; the block stages run' };
  const compact = indices !== null;
  const floor = blockFloorVerdict(input, n, compact, bs, m);
  if (floor) return floor;
  const nb = Math.ceil(n / bs.blockSize);
  const plain = plainAttendMs(input, n, compact, m);
  const what = `${n} rows, ${nb} block rows, without the block stages ${ms(plain)}`;
  const rows = probeBlockRows(nb);
  const probe = probeInput(input, indices, n, Math.min(n, rows * bs.blockSize));
  const mask = await stages.blockSelect(await stages.blockScores(probe, o), { heads: probe.heads, blocks: rows }, o);
  const share = extrapolatedShare(mask, probe.heads, rows, nb);
  const est = blockPathMs(input, n, compact, share, bs, m);
  const verdict = est <= (1 - m.minGain) * plain ? 'run' : 'not-worth-it';
  const detail =
    `cost rule: the probe (block rows ${rows >> 1}..${rows - 1} of ${nb}, ${probe.heads} heads) estimates a share of ${share.toFixed(3)}: ` +
    `with the block stages ${ms(est)}, ${what}` + (verdict === 'run' ? '' : `: not ${m.minGain * 100}% faster`);
  return { verdict, estimatedShare: share, detail };
}
