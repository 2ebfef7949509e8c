/**
 * What the quality report measures of one method on a set of texts, against the all-dense run on
 * the same tokens, over the continuation positions (pooled over texts):
 *   NLL = mean_t -log p(x_{t+1} | x_<=t),  top-1 agreement = share of positions whose argmax equals
 *   the dense argmax,  KL = mean_t KL(p_dense || p_method),  flips = positions whose top-1 differs
 *   (and how many of them the dense model nearly tied).
 */
import { argmax, logSoftmaxAt } from './sampling.js';
import type { LayerAttentionInfo } from './llama.js';

/** One text's continuation: per position the log-softmax row and the target, and how each layer ran. */
export interface Continuation {
  logProbs: Float64Array[];
  targets: number[];
  /** By layer number (the layers a resumed run skipped are absent). */
  layers: Map<number, LayerAttentionInfo>;
}

/** A dense top-1 whose log-probability leads the runner-up by less than this (nats) is a near tie. */
export const NEAR_TIE = 0.1;

/** One text's numbers for one (tau, method). */
export interface TextResult {
  text: string;
  tokens: number;
  nllDense: number;
  nll: number;
  top1Agreement: number;
  keptFraction: number;
}

export interface QualityRecord {
  tau: number;
  method: string;
  /** Mean over texts and sparse layers of kept positions / L. */
  keptFraction: number;
  nllDense: number;
  nll: number;
  /** 100 * (nll - nllDense) / nllDense. */
  nllDeltaPct: number;
  top1Agreement: number;
  /** Mean KL(p_dense || p_method) over continuation positions, nats. */
  klDense: number;
  /** Positions where the top-1 token differs from dense, and how many of them the dense model nearly tied (gap < NEAR_TIE). */
  flips: number;
  flipsNearTie: number;
  /** Flips and mean KL in each quarter of the continuation (positions in order), showing where damage lands. */
  flipsByQuarter: number[];
  klByQuarter: number[];
  sparseLayers: number[];
  /** Kept fraction of each sparse layer (same order as sparseLayers), mean over texts. */
  layerKeptFraction: number[];
  /**
   * With block-sparse attention (XAttention, random blocks): mean over texts, sparse layers and
   * heads of selected blocks / causal blocks (of the compact rows when composed with TSA); else null.
   */
  blockShare: number | null;
  /** The block share of each sparse layer, mean over texts and heads; null without block-sparse attention. */
  layerBlockShare: number[] | null;
  /**
   * (text, layer) pairs where a sparse layer's token selection ran dense (for tsa: the coverage
   * rule pruned nothing; for XAttention alone and random blocks, coverage 0: every pair).
   */
  denseByRule: number;
  /** Continuation tokens scored, over all texts. */
  tokens: number;
  perText: TextResult[];
}

/** log-softmax of one logit row, in float64. */
export function logSoftmaxRow(logits: Float32Array): Float64Array {
  const lse = logits[0]! - logSoftmaxAt(logits, 0, logits.length, 0);
  return Float64Array.from(logits, (x) => x - lse);
}

/** top2Gap: log p of the best token minus log p of the second best. */
export function top2Gap(p: Float64Array): number {
  let a = -Infinity;
  let b = -Infinity;
  for (const x of p) {
    if (x > a) [a, b] = [x, a];
    else if (x > b) b = x;
  }
  return a - b;
}

/** One continuation position compared with dense. */
interface Position {
  nll: number;
  nllDense: number;
  agree: boolean;
  /** The dense top-1 led its runner-up by less than NEAR_TIE. */
  nearTie: boolean;
  kl: number;
}

/** compare: per position, -log p of the target (method and dense), top-1 agreement, KL(dense || method). */
function compare(dense: Continuation, run: Continuation): Position[] {
  return run.targets.map((target, i) => {
    const p = dense.logProbs[i]!;
    const q = run.logProbs[i]!;
    let kl = 0;
    for (let j = 0; j < p.length; j++) kl += Math.exp(p[j]!) * (p[j]! - q[j]!);
    return { nll: -q[target]!, nllDense: -p[target]!, agree: argmax(p) === argmax(q), nearTie: top2Gap(p) < NEAR_TIE, kl };
  });
}

function sum(xs: readonly Position[], f: (x: Position) => number): number {
  return xs.reduce((s, x) => s + f(x), 0);
}

export function mean(xs: readonly number[]): number {
  return xs.reduce((s, x) => s + x, 0) / xs.length;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** The record of one (tau, method) over texts named `names`: runs[i] against dense[i]. */
export function summarise(tau: number, method: string, names: string[], dense: Continuation[], runs: Continuation[], sparseLayers: number[]): QualityRecord {
  const perPosition = runs.map((run, i) => compare(dense[i]!, run));
  const all = perPosition.flat();
  const kept = (r: Continuation, l: number) => r.layers.get(l)!.keptFraction;
  const perText: TextResult[] = perPosition.map((pos, i) => ({
    text: names[i]!,
    tokens: pos.length,
    nllDense: sum(pos, (x) => x.nllDense) / pos.length,
    nll: sum(pos, (x) => x.nll) / pos.length,
    top1Agreement: sum(pos, (x) => +x.agree) / pos.length,
    keptFraction: mean(sparseLayers.map((l) => kept(runs[i]!, l))),
  }));
  // Quarters of the continuation, by position within each text.
  const quarter = (q: number) => perPosition.flatMap((pos) => pos.filter((_, j) => Math.floor((4 * j) / pos.length) === q));
  const quarters = [0, 1, 2, 3].map(quarter);
  const layerKeptFraction = sparseLayers.map((l) => mean(runs.map((r) => kept(r, l))));
  const blockShareOf = (r: Continuation, l: number): number | null => {
    const b = r.layers.get(l)!.blocks;
    return b ? mean(b.selected.map((n) => n / b.causal)) : null;
  };
  const shares = sparseLayers.map((l) => runs.map((r) => blockShareOf(r, l)));
  const layerBlockShare = shares.length && shares.every((xs) => xs.every((x) => x !== null)) ? shares.map((xs) => mean(xs as number[])) : null;
  const nll = sum(all, (x) => x.nll);
  const nllDense = sum(all, (x) => x.nllDense);
  return {
    tau,
    method,
    keptFraction: layerKeptFraction.length ? mean(layerKeptFraction) : 1,
    nllDense: nllDense / all.length,
    nll: nll / all.length,
    nllDeltaPct: (100 * (nll - nllDense)) / nllDense,
    top1Agreement: sum(all, (x) => +x.agree) / all.length,
    klDense: sum(all, (x) => x.kl) / all.length,
    flips: sum(all, (x) => +!x.agree),
    flipsNearTie: sum(all, (x) => +(!x.agree && x.nearTie)),
    flipsByQuarter: quarters.map((xs) => sum(xs, (x) => +!x.agree)),
    klByQuarter: quarters.map((xs) => sum(xs, (x) => x.kl) / xs.length),
    sparseLayers,
    layerKeptFraction,
    blockShare: layerBlockShare && mean(layerBlockShare),
    layerBlockShare,
    denseByRule: runs.reduce((s, r) => s + sparseLayers.filter((l) => r.layers.get(l)!.mode === 'dense').length, 0),
    tokens: all.length,
    perText,
  };
}

/** Records as a Markdown table, one row per (tau, method); `blocks` is the selected-block share ('-': no block-sparse attention). */
export function qualityTable(records: readonly QualityRecord[], sparseLayers: readonly number[]): string {
  const head = ['tau', 'method', 'kept', ...sparseLayers.map((l) => `kept L${l}`), 'blocks', 'NLL dense', 'NLL', 'dNLL %', 'top-1 agree %', `flips (near-tie)`, 'KL (nats)'];
  const rows = records.map((r) => [
    String(r.tau),
    r.method,
    r.keptFraction.toFixed(3),
    ...r.layerKeptFraction.map((x) => x.toFixed(3)),
    r.blockShare === null ? '-' : r.blockShare.toFixed(3),
    r.nllDense.toFixed(4),
    r.nll.toFixed(4),
    (r.nllDeltaPct >= 0 ? '+' : '') + r.nllDeltaPct.toFixed(3),
    (100 * r.top1Agreement).toFixed(2),
    `${r.flips} (${r.flipsNearTie})`,
    r.klDense.toExponential(2),
  ]);
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}
