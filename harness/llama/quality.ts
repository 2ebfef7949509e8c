/**
 * Quality of token-sparse prefill on a real model: for each text, prefill the first
 * `prefillLength` tokens with a plan (TSA at a coverage tau, a fixed-ratio budget, or random
 * selection, in the sparse layers), teacher-force the rest with dense decode, and compare
 * the continuation's next-token distributions with the all-dense run:
 *   NLL = mean_t -log p(x_{t+1} | x_<=t) over continuation positions (pooled over texts),
 *   top-1 agreement = share of positions where argmax equals the dense argmax,
 *   KL = mean_t KL(p_dense || p_method).
 * Baselines get the kept fraction TSA reached at the same tau (mean over texts and sparse
 * layers), as one fixed ratio for every layer and text.
 */
import { resolveOptions, TsaInputError, type Backend, type TsaOptions } from '../index.js';
import { denseAttention, fixedRatioAttention, randomAttention, tsaAttention } from './attention.js';
import { chooseSparseLayers, defaultDriftProfile, PROFILE_SEED } from './drift.js';
import type { LayerAttentionInfo, Llama, PrefillAttention } from './llama.js';
import { argmax, logSoftmaxAt, sampleText } from './sampling.js';
import { FROG_KING } from './texts.js';
import type { Tokenizer } from './tokenizer.js';

export type Method = 'tsa' | 'fixed-ratio' | 'random';

export interface QualitySettings {
  taus: number[];
  /** TSA options scaled to a 512-position model (window, minTokens, poolKernel). */
  window: number;
  minTokens: number;
  poolKernel: number;
  /** Tokens per text (BOS included) and how many of them are prefilled. */
  textLength: number;
  prefillLength: number;
  /** Stories sampled from the dense model with seeds 1..stories, plus the fixture text. */
  stories: number;
  storyTemperature: number;
  /** Seed of the separate full-context story the drift profile runs on. */
  profileSeed: number;
  /** Share of layers made sparse by drift, unless sparseLayers is given. */
  delta: number;
  sparseLayers?: number[];
  /** Base seed of the random baseline. */
  randomSeed: number;
}

export const DEFAULT_QUALITY_SETTINGS: Readonly<QualitySettings> = Object.freeze({
  taus: [0.005, 0.01, 0.02, 0.05],
  window: 32,
  minTokens: 64,
  poolKernel: 7,
  textLength: 512,
  prefillLength: 384,
  stories: 15,
  storyTemperature: 1,
  profileSeed: PROFILE_SEED,
  delta: 0.5,
  randomSeed: 7,
});

export interface EvalText {
  name: string;
  tokens: number[];
}

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
  method: Method;
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
  /** For tsa: (text, layer) pairs where the coverage rule pruned nothing (the layer ran dense). */
  denseByRule: number;
  /** Continuation tokens scored, over all texts. */
  tokens: number;
  perText: TextResult[];
}

export interface QualityReport {
  backend: string;
  settings: QualitySettings;
  drift: number[];
  sparseLayers: number[];
  texts: { name: string; tokens: number }[];
  /**
   * Per sparse layer, over texts: the smallest tau that prunes anything (the layer's smallest
   * normalised pooled mass; the rule prunes iff tau exceeds it): min, median, max.
   */
  pruningOnset: { layer: number; min: number; median: number; max: number }[];
  /** Continuation positions where the dense top-1 leads its runner-up by less than NEAR_TIE (any perturbation may flip them). */
  denseNearTies: number;
  records: QualityRecord[];
  elapsedMs: number;
}

/** Dense continuation of one text: per position the log-softmax row and the target. */
interface Continuation {
  logProbs: Float64Array[];
  targets: number[];
  layers: LayerAttentionInfo[];
}

/**
 * teacherForce: prefill tokens[0..P) with `attention`, then feed tokens P..N-2 with dense decode;
 * returns log-softmax rows predicting tokens P..N-1.
 */
async function teacherForce(llama: Llama, tokens: readonly number[], P: number, attention: PrefillAttention): Promise<Continuation> {
  const V = llama.config.vocabSize;
  const pre = await llama.prefill(tokens.slice(0, P), attention);
  const logProbs: Float64Array[] = [logSoftmaxRow(pre.logits.subarray((P - 1) * V, P * V))];
  for (let t = P; t + 1 < tokens.length; t++) logProbs.push(logSoftmaxRow(llama.decodeStep(pre.cache, tokens[t]!)));
  return { logProbs, targets: tokens.slice(P), layers: pre.layers };
}

function logSoftmaxRow(logits: Float32Array): Float64Array {
  const lse = logits[0]! - logSoftmaxAt(logits, 0, logits.length, 0);
  return Float64Array.from(logits, (x) => x - lse);
}

/** A dense top-1 whose log-probability leads the runner-up by less than this (nats) is a near tie. */
export const NEAR_TIE = 0.1;

/** top2Gap: log p of the best token minus log p of the second best. */
function top2Gap(p: Float64Array): number {
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

function mean(xs: readonly number[]): number {
  return xs.reduce((s, x) => s + x, 0) / xs.length;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Sampled stories (dense model, seeds 1..n, BOS boundaries kept) plus the fixture text, each textLength tokens. */
export async function buildTexts(llama: Llama, tokenizer: Tokenizer, backend: Backend, s: QualitySettings): Promise<EvalText[]> {
  const texts: EvalText[] = [];
  for (let seed = 1; seed <= s.stories; seed++) {
    texts.push({ name: `story seed ${seed}`, tokens: await sampleText(llama, backend, s.textLength, s.storyTemperature, seed) });
  }
  const fixture = tokenizer.encode(FROG_KING.text).slice(0, s.textLength);
  texts.push({ name: FROG_KING.name, tokens: fixture });
  return texts;
}

/** A dense plan that also records, per sparse layer, the smallest tau that would prune a token. */
function onsetProbe(backend: Backend, sparseLayers: readonly number[], o: TsaOptions, onset: Map<number, number[]>): PrefillAttention {
  const dense = denseAttention(backend);
  const opts = resolveOptions(o);
  return {
    label: 'dense (with pruning-onset probe)',
    async attend(layer, input) {
      if (sparseLayers.includes(layer) && input.seqLen > opts.window) {
        const shape = { heads: input.heads, prefixLen: input.seqLen - opts.window };
        const pooled = await backend.pool(await backend.scores(input, opts), shape, opts);
        onset.get(layer)!.push(smallestLayerMass(pooled, shape.heads, shape.prefixLen));
      }
      return dense.attend(layer, input);
    },
  };
}

/** smallestLayerMass: min_t g_t / (sum_t g_t + 1e-8) with g_t = mean_h pooled[h][t] (the budget's first cumulative sum). */
function smallestLayerMass(pooled: Float32Array, H: number, P: number): number {
  let total = 0;
  let min = Infinity;
  for (let t = 0; t < P; t++) {
    let g = 0;
    for (let h = 0; h < H; h++) g += pooled[h * P + t]!;
    g /= H;
    total += g;
    min = Math.min(min, g);
  }
  return min / (total + 1e-8);
}

/** Runs the whole sweep; `log` receives progress lines. */
export async function runQualityEval(
  llama: Llama,
  tokenizer: Tokenizer,
  backend: Backend,
  settings: QualitySettings,
  log: (line: string) => void = () => {},
): Promise<QualityReport> {
  const start = performance.now();
  const s = settings;
  const P = s.prefillLength;
  if (!(P > s.minTokens + s.window)) {
    log(`warning: prefill ${P} <= minTokens ${s.minTokens} + window ${s.window}: TSA will run every layer dense`);
  }
  const drift = await defaultDriftProfile(llama, backend, s.profileSeed);
  const sparseLayers = s.sparseLayers ?? chooseSparseLayers(drift, s.delta);
  log(`drift R_l (story seed ${s.profileSeed}): ${drift.map((r, l) => `L${l} ${r.toFixed(3)}`).join(', ')}; sparse layers: ${sparseLayers.join(',') || 'none'}`);

  const texts = await buildTexts(llama, tokenizer, backend, s);
  for (const t of texts) {
    if (t.tokens.length <= P) {
      throw new TsaInputError(`text '${t.name}' has ${t.tokens.length} tokens; the prefill takes ${P}, nothing is left to score`, 'SHAPE');
    }
  }
  log(`${texts.length} texts of ${texts.map((t) => t.tokens.length).join('/')} tokens; prefill ${P}`);

  // The method's quality, not the backend's speed rule: costRule off, so no layer is routed to dense for speed.
  const tsaOptions = (tau: number): TsaOptions => ({ coverage: tau, window: s.window, minTokens: s.minTokens, poolKernel: s.poolKernel, costRule: false });
  const onset = new Map(sparseLayers.map((l) => [l, [] as number[]]));
  const dense: Continuation[] = [];
  for (const t of texts) dense.push(await teacherForce(llama, t.tokens, P, onsetProbe(backend, sparseLayers, tsaOptions(0.005), onset)));

  const records: QualityRecord[] = [];
  for (const [ti, tau] of s.taus.entries()) {
    const o = tsaOptions(tau);
    const tsaRuns: Continuation[] = [];
    for (const t of texts) tsaRuns.push(await teacherForce(llama, t.tokens, P, tsaAttention(backend, sparseLayers, o)));
    const tsaRecord = summarise(tau, 'tsa', texts, dense, tsaRuns, sparseLayers);
    records.push(tsaRecord);
    // Baselines at TSA's mean kept fraction for this tau.
    const f = tsaRecord.keptFraction;
    const fixed: Continuation[] = [];
    const random: Continuation[] = [];
    for (const [i, t] of texts.entries()) {
      fixed.push(await teacherForce(llama, t.tokens, P, fixedRatioAttention(backend, sparseLayers, o, f)));
      random.push(await teacherForce(llama, t.tokens, P, randomAttention(backend, sparseLayers, o, f, s.randomSeed + 1000 * ti + i)));
    }
    records.push(summarise(tau, 'fixed-ratio', texts, dense, fixed, sparseLayers));
    records.push(summarise(tau, 'random', texts, dense, random, sparseLayers));
    const r = records.slice(-3);
    log(`tau ${tau}: ` + r.map((x) => `${x.method} kept ${x.keptFraction.toFixed(3)} dNLL ${x.nllDeltaPct.toFixed(3)}% top1 ${(100 * x.top1Agreement).toFixed(2)}%`).join('; '));
  }
  return {
    backend: backend.description ? `${backend.name} (${backend.description})` : backend.name,
    settings: s,
    drift,
    sparseLayers,
    texts: texts.map((t) => ({ name: t.name, tokens: t.tokens.length })),
    pruningOnset: sparseLayers.map((layer) => {
      const xs = onset.get(layer)!;
      return { layer, min: Math.min(...xs), median: median(xs), max: Math.max(...xs) };
    }),
    denseNearTies: dense.reduce((n, d) => n + d.logProbs.filter((p) => top2Gap(p) < NEAR_TIE).length, 0),
    records,
    elapsedMs: performance.now() - start,
  };
}

function summarise(tau: number, method: Method, texts: EvalText[], dense: Continuation[], runs: Continuation[], sparseLayers: number[]): QualityRecord {
  const perPosition = runs.map((run, i) => compare(dense[i]!, run));
  const all = perPosition.flat();
  const perText: TextResult[] = perPosition.map((pos, i) => ({
    text: texts[i]!.name,
    tokens: pos.length,
    nllDense: sum(pos, (x) => x.nllDense) / pos.length,
    nll: sum(pos, (x) => x.nll) / pos.length,
    top1Agreement: sum(pos, (x) => +x.agree) / pos.length,
    keptFraction: mean(sparseLayers.map((l) => runs[i]!.layers[l]!.keptFraction)),
  }));
  // Quarters of the continuation, by position within each text.
  const quarter = (q: number) => perPosition.flatMap((pos) => pos.filter((_, j) => Math.floor((4 * j) / pos.length) === q));
  const quarters = [0, 1, 2, 3].map(quarter);
  const layerKeptFraction = sparseLayers.map((l) => mean(runs.map((r) => r.layers[l]!.keptFraction)));
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
    denseByRule: runs.reduce((s, r) => s + sparseLayers.filter((l) => r.layers[l]!.mode === 'dense').length, 0),
    tokens: all.length,
    perText,
  };
}

/** The report as a Markdown table, one row per (tau, method). */
export function qualityTable(report: QualityReport): string {
  const L = report.sparseLayers;
  const head = ['tau', 'method', 'kept', ...L.map((l) => `kept L${l}`), 'NLL dense', 'NLL', 'dNLL %', 'top-1 agree %', `flips (near-tie)`, 'KL (nats)'];
  const rows = report.records.map((r) => [
    String(r.tau),
    r.method,
    r.keptFraction.toFixed(3),
    ...r.layerKeptFraction.map((x) => x.toFixed(3)),
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
