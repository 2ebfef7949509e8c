/**
 * Quality of token-sparse prefill on a real model: for each text, prefill the first P tokens with
 * a plan (TSA at a coverage tau, or a baseline at TSA's kept fraction, in the sparse layers),
 * teacher-force the rest with dense attention (what dense decode computes), and compare the
 * continuation's next-token distributions with the all-dense run (metrics.ts). Texts are either
 * real documents (`documents`) or stories sampled from the dense model plus a fixed text.
 * Baselines get the kept fraction TSA reached at the same tau (mean over texts and sparse
 * layers), as one fixed ratio for every layer and text.
 *
 * With XAttention settings, three more rows: XAttention alone (coverage 0: every row, tau 0),
 * random blocks at XAttention's selected count per (text, layer, head) (tau 0), and XAttention on
 * TSA's kept rows at each tau ('tsa+xattn'); their records add the selected-block share.
 *
 * Every plan is dense before the first sparse layer, so each text's residual stream entering it,
 * that layer's Q/K/V and its continuation rows' attention are computed once (by the dense run)
 * and every other run resumes from there.
 */
import { resolveOptions, TsaInputError, type Backend, type ResolvedBlockSparse, type TsaOptions } from '../index.js';
import { denseAttention, fixedRatioAttention, randomAttention, tsaAttention } from './attention.js';
import { randomBlocksAttention } from './block-attention.js';
import { chooseSparseLayers, defaultDriftProfile, profileDrift, PROFILE_SEED } from './drift.js';
import type { LayerState, Llama, PrefillAttention } from './llama.js';
import { logSoftmaxRow, median, summarise, top2Gap, NEAR_TIE, type Continuation, type QualityRecord } from './metrics.js';
import { LONG_CONTEXT, tsaDefaultsFor, xattnDefaultsFor } from './options.js';
import { sampleText } from './sampling.js';
import { FROG_KING } from './texts.js';
import type { Tokenizer } from './tokenizer.js';

/** The random-blocks baseline of text i draws with seed randomSeed + RANDOM_BLOCKS_SEED + i. */
export const RANDOM_BLOCKS_SEED = 500;

/** A text by name. */
export interface NamedText {
  name: string;
  text: string;
}

export interface QualitySettings {
  taus: number[];
  /** TSA options (window, minTokens, poolKernel); see settingsForContext. */
  window: number;
  minTokens: number;
  poolKernel: number;
  /** Which rule or flags gave window, minTokens and poolKernel (for the report). */
  tsaSource: string;
  /** XAttention's settings for the block-sparse rows; null: no such rows. See settingsForContext. */
  xattention: ResolvedBlockSparse | null;
  /** Which rule or flags gave them (for the report). */
  xattentionSource: string;
  /** Tokens per text (BOS included) and how many of them are prefilled (less for a shorter document). */
  textLength: number;
  prefillLength: number;
  /** Real documents to evaluate on; without them, sampled stories plus the fixture text. */
  documents?: NamedText[];
  /** Stories sampled from the dense model with seeds 1..stories, plus the fixture text. */
  stories: number;
  storyTemperature: number;
  /** The drift profile's prompt: this text (cut to the context), else a story sampled with profileSeed. */
  driftText?: NamedText;
  profileSeed: number;
  /** Share of layers made sparse by drift, unless sparseLayers is given. */
  delta: number;
  sparseLayers?: number[];
  /** Base seed of the random baseline. */
  randomSeed: number;
}

/**
 * TSA options (tsaDefaultsFor), XAttention's (xattnDefaultsFor), text lengths and taus for a model of context seqLen: from
 * LONG_CONTEXT on, texts fill the context with the last 512 tokens scored, taus 0.005..0.02;
 * below, 512-token texts with 384 prefilled, taus up to 0.05.
 */
export function settingsForContext(
  seqLen: number,
): Pick<QualitySettings, 'taus' | 'window' | 'minTokens' | 'poolKernel' | 'tsaSource' | 'xattention' | 'xattentionSource' | 'textLength' | 'prefillLength'> {
  const { which, ...t } = tsaDefaultsFor(seqLen);
  const x = xattnDefaultsFor(seqLen);
  const rest =
    seqLen >= LONG_CONTEXT
      ? { taus: [0.005, 0.01, 0.02], textLength: seqLen, prefillLength: seqLen - 512 }
      : { taus: [0.005, 0.01, 0.02, 0.05], textLength: Math.min(seqLen, 512), prefillLength: 384 };
  return { ...t, tsaSource: which, xattention: x.blockSparse, xattentionSource: x.which, ...rest };
}

export const DEFAULT_QUALITY_SETTINGS: Readonly<QualitySettings> = Object.freeze({
  ...settingsForContext(512),
  stories: 15,
  storyTemperature: 1,
  profileSeed: PROFILE_SEED,
  delta: 0.5,
  randomSeed: 7,
});

/** One evaluated text: its tokens (BOS first) and how many of them are prefilled. */
export interface EvalText {
  name: string;
  tokens: number[];
  prefill: number;
}

/** What a baseline plan is built from: TSA's mean kept fraction at this tau and a per-text seed. */
export interface BaselineContext {
  backend: Backend;
  sparseLayers: readonly number[];
  options: TsaOptions;
  fraction: number;
  seed: number;
}

/** A method compared with TSA at each tau, at TSA's kept fraction; report rows follow this order. */
export interface BaselineMethod {
  name: string;
  plan(c: BaselineContext): PrefillAttention;
}

export const BASELINES: readonly BaselineMethod[] = [
  { name: 'fixed-ratio', plan: (c) => fixedRatioAttention(c.backend, c.sparseLayers, c.options, c.fraction) },
  { name: 'random', plan: (c) => randomAttention(c.backend, c.sparseLayers, c.options, c.fraction, c.seed) },
];

export interface QualityReport {
  backend: string;
  settings: QualitySettings;
  /** Where the drift profile came from. */
  driftSource: string;
  drift: number[];
  sparseLayers: number[];
  texts: { name: string; tokens: number; prefill: number }[];
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

/** The texts: documents tokenised (BOS first) and cut to textLength, or sampled stories plus the fixture. */
export async function buildTexts(llama: Llama, tokenizer: Tokenizer, backend: Backend, s: QualitySettings): Promise<EvalText[]> {
  const P = s.prefillLength;
  if (s.documents) {
    return s.documents.map((d) => {
      const tokens = tokenizer.encode(d.text).slice(0, s.textLength);
      const prefill = P - (s.textLength - tokens.length);
      if (prefill < 1) {
        throw new TsaInputError(`document '${d.name}' has ${tokens.length} tokens: too short for a continuation of ${s.textLength - P}`, 'SHAPE');
      }
      return { name: d.name, tokens, prefill };
    });
  }
  const texts: EvalText[] = [];
  for (let seed = 1; seed <= s.stories; seed++) {
    texts.push({ name: `story seed ${seed}`, tokens: await sampleText(llama, backend, s.textLength, s.storyTemperature, seed), prefill: P });
  }
  texts.push({ name: FROG_KING.name, tokens: tokenizer.encode(FROG_KING.text).slice(0, s.textLength), prefill: P });
  for (const t of texts) {
    if (t.tokens.length <= P) throw new TsaInputError(`text '${t.name}' has ${t.tokens.length} tokens; the prefill takes ${P}, nothing is left to score`, 'SHAPE');
  }
  return texts;
}

/** A dense plan that also records, per sparse layer, the smallest tau that would prune a token. */
function onsetProbe(backend: Backend, sparseLayers: readonly number[], o: TsaOptions, onset: Map<number, number[]>): PrefillAttention {
  const dense = denseAttention(backend);
  const opts = resolveOptions(o);
  return {
    label: 'dense (with pruning-onset probe)',
    selects: (layer) => sparseLayers.includes(layer),
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

/** Drift of every layer on the settings' profile prompt, and a description of it. */
async function driftProfile(llama: Llama, tokenizer: Tokenizer, backend: Backend, s: QualitySettings): Promise<{ drift: number[]; source: string }> {
  if (!s.driftText) return { drift: await defaultDriftProfile(llama, backend, s.profileSeed), source: `story seed ${s.profileSeed}` };
  const tokens = tokenizer.encode(s.driftText.text).slice(0, llama.config.seqLen);
  return { drift: await profileDrift(llama, backend, tokens), source: `${s.driftText.name}, first ${tokens.length} tokens` };
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
  const clock = () => `[${((performance.now() - start) / 1000).toFixed(0).padStart(4)} s]`;
  const { drift, source: driftSource } = await driftProfile(llama, tokenizer, backend, s);
  const sparseLayers = s.sparseLayers ?? chooseSparseLayers(drift, s.delta);
  log(`${clock()} drift R_l (${driftSource}): ${drift.map((r, l) => `L${l} ${r.toFixed(3)}`).join(', ')}; sparse layers: ${sparseLayers.join(',') || 'none'}`);

  const texts = await buildTexts(llama, tokenizer, backend, s);
  const minPrefill = Math.min(...texts.map((t) => t.prefill));
  if (!(minPrefill > s.minTokens + s.window)) {
    log(`warning: prefill ${minPrefill} <= minTokens ${s.minTokens} + window ${s.window}: TSA runs those layers dense`);
  }
  log(`${clock()} ${texts.length} texts: ${texts.map((t) => `${t.tokens.length}/${t.prefill}`).join(' ')} tokens/prefill`);

  // The method's quality, not the backend's speed rule: costRule off, so no layer is routed to dense for speed.
  const tsaOptions = (tau: number): TsaOptions => ({ coverage: tau, window: s.window, minTokens: s.minTokens, poolKernel: s.poolKernel, costRule: false });
  const firstSparse = sparseLayers.length ? Math.min(...sparseLayers) : llama.config.layers;
  const states: (LayerState | undefined)[] = [];
  const continuation = async (i: number, plan: PrefillAttention): Promise<Continuation> => {
    const t = texts[i]!;
    const r = await llama.teacherForce(t.tokens, t.prefill, plan, states[i] ? { start: states[i] } : { keepAt: firstSparse });
    states[i] ??= r.kept;
    const V = llama.config.vocabSize;
    const logProbs = Array.from({ length: r.logits.length / V }, (_, j) => logSoftmaxRow(r.logits.subarray(j * V, (j + 1) * V)));
    return { logProbs, targets: t.tokens.slice(t.prefill), layers: new Map(r.layers.map((x) => [x.layer, x])) };
  };
  const runAll = async (what: string, plan: (i: number) => PrefillAttention): Promise<Continuation[]> => {
    const runs: Continuation[] = [];
    for (let i = 0; i < texts.length; i++) {
      runs.push(await continuation(i, plan(i)));
      log(`${clock()} ${what}: text ${i + 1}/${texts.length}`);
    }
    return runs;
  };

  const onset = new Map(sparseLayers.map((l) => [l, [] as number[]]));
  const dense = await runAll('dense', () => onsetProbe(backend, sparseLayers, tsaOptions(0.005), onset));
  const names = texts.map((t) => t.name);
  const records: QualityRecord[] = [];
  const bs = s.xattention;
  const rowLog = (what: string, r: readonly QualityRecord[]) =>
    log(
      `${what}: ` +
        r.map((x) => `${x.method} kept ${x.keptFraction.toFixed(3)}${x.blockShare === null ? '' : ` blocks ${x.blockShare.toFixed(3)}`} dNLL ${x.nllDeltaPct.toFixed(3)}% top1 ${(100 * x.top1Agreement).toFixed(2)}%`).join('; '),
    );
  if (bs) {
    const o: TsaOptions = { ...tsaOptions(0), blockSparse: bs };
    const xattn = await runAll('xattn', () => tsaAttention(backend, sparseLayers, o));
    records.push(summarise(0, 'xattn', names, dense, xattn, sparseLayers));
    const selected = (i: number) => (layer: number) => xattn[i]!.layers.get(layer)!.blocks!.selected;
    const random = await runAll('random-blocks', (i) => randomBlocksAttention(backend, sparseLayers, o, selected(i), s.randomSeed + RANDOM_BLOCKS_SEED + i));
    records.push(summarise(0, 'random-blocks', names, dense, random, sparseLayers));
    rowLog(`XAttention B ${bs.blockSize} S ${bs.stride} T ${bs.threshold}`, records.slice(-2));
  }
  for (const [ti, tau] of s.taus.entries()) {
    const o = tsaOptions(tau);
    const tsa = summarise(tau, 'tsa', names, dense, await runAll(`tau ${tau} tsa`, () => tsaAttention(backend, sparseLayers, o)), sparseLayers);
    records.push(tsa);
    for (const m of BASELINES) {
      const plan = (i: number) => m.plan({ backend, sparseLayers, options: o, fraction: tsa.keptFraction, seed: s.randomSeed + 1000 * ti + i });
      records.push(summarise(tau, m.name, names, dense, await runAll(`tau ${tau} ${m.name}`, plan), sparseLayers));
    }
    if (bs) records.push(summarise(tau, 'tsa+xattn', names, dense, await runAll(`tau ${tau} tsa+xattn`, () => tsaAttention(backend, sparseLayers, { ...o, blockSparse: bs })), sparseLayers));
    rowLog(`tau ${tau}`, records.slice(-1 - BASELINES.length - (bs ? 1 : 0)));
  }
  return {
    backend: backend.description ? `${backend.name} (${backend.description})` : backend.name,
    settings: s,
    driftSource,
    drift,
    sparseLayers,
    texts: texts.map((t) => ({ name: t.name, tokens: t.tokens.length, prefill: t.prefill })),
    pruningOnset: sparseLayers.map((layer) => {
      const xs = onset.get(layer)!;
      return { layer, min: Math.min(...xs), median: median(xs), max: Math.max(...xs) };
    }),
    denseNearTies: dense.reduce((n, d) => n + d.logProbs.filter((p) => top2Gap(p) < NEAR_TIE).length, 0),
    records,
    elapsedMs: performance.now() - start,
  };
}
