/**
 * `tsa eval`: the quality report on a real model: continuation NLL and top-1 agreement of
 * token-sparse prefill against all-dense, per coverage tau, with fixed-ratio and random
 * baselines at the same kept fraction, and XAttention rows (alone, random blocks at its share, and
 * on TSA's rows), on real documents (--texts) or sampled stories.
 */
import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseLayerList } from '../../llama/drift.js';
import { NEAR_TIE, qualityTable } from '../../llama/metrics.js';
import { checkBackendNames, parseCommandArgs } from '../args.js';
import { resolveOptions, type ResolvedBlockSparse } from '../../index.js';
import { chooseBackend, driftTextFor, int, loadModel, MODEL_FLAGS, MODEL_HELP, num, readText, requireFiles, TSA_FLAGS, TSA_HELP, tsaOptionsFrom } from '../../llama/options.js';
import { DEFAULT_QUALITY_SETTINGS as D, RANDOM_BLOCKS_SEED, runQualityEval, settingsForContext, type NamedText, type QualityReport, type QualitySettings } from '../../llama/quality.js';

const HELP = `usage: tsa eval --model M --tokenizer T [--texts DIR|FILE ...] [--json FILE] [options]

On real documents (--texts), or else on ${D.stories} stories sampled from the dense model
(temperature ${D.storyTemperature}, seeds 1..N) plus one fixed text the model did not write:
prefills the first --prefill tokens of each text with token-sparse attention in the sparse
layers, teacher-forces the rest with dense attention (as dense decode), and compares the
continuation with the all-dense model: NLL change, top-1 agreement, flips and KL per tau,
beside a fixed-ratio budget and random selection that keep the same fraction; and XAttention
(block-sparse attention) alone, random blocks at its selected share (per text, layer and head;
diagonal kept) and XAttention on TSA's kept rows at each tau, with the selected-block share.

${MODEL_HELP}
  --texts DIR|FILE        documents to evaluate on (repeatable; a directory gives its *.txt,
                          sorted): tokenised with BOS first and cut to --text-length; a shorter
                          document is used whole, its prefill shortened by the same amount
  --json FILE             write the records (one per tau and method) as JSON
  --taus T1,T2,...        coverages (default ${D.taus.join(',')}; from a 2048-token context on ${settingsForContext(2048).taus.join(',')})
  --stories ${D.stories}              sampled stories (plus the fixture text), without --texts
  --text-length N         tokens per text, BOS included (default: the context from 2048 on, else 512)
  --prefill N             prefilled tokens; the rest is scored (default: text length - 512, else 384)
  --seed ${D.randomSeed}                seed of the random baselines
  --block-size B          XAttention's block (default: 128 from a 2048-token context on, else 16;
                          0: no XAttention rows)
  --block-stride S        its antidiagonal stride (default: 16 from 2048 on, else 4)
  --block-threshold T     its mass threshold (default ${D.xattention!.threshold})
${TSA_HELP}`;

/** The documents named by --texts: files as given, directories by their *.txt files in name order. */
function documents(paths: string[]): NamedText[] {
  const files = paths.flatMap((p) => {
    const isDir = (() => {
      try {
        return statSync(p).isDirectory();
      } catch {
        return false;
      }
    })();
    return isDir ? readdirSync(p).filter((f) => f.endsWith('.txt')).sort().map((f) => join(p, f)) : [p];
  });
  return files.map(readText);
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs({
    args: argv,
    options: {
      ...MODEL_FLAGS,
      ...TSA_FLAGS,
      texts: { type: 'string', multiple: true },
      json: { type: 'string' },
      taus: { type: 'string' },
      stories: { type: 'string', default: String(D.stories) },
      'text-length': { type: 'string' },
      prefill: { type: 'string' },
      seed: { type: 'string', default: String(D.randomSeed) },
      'block-size': { type: 'string' },
      'block-stride': { type: 'string' },
      'block-threshold': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  checkBackendNames(values.backend);
  const files = requireFiles(values.model, values.tokenizer);
  const docs = values.texts ? documents(values.texts) : undefined;
  if (docs?.length === 0) {
    console.error(`tsa eval: --texts ${values.texts!.join(' ')} names no .txt file`);
    return 2;
  }
  const driftText = driftTextFor(values['drift-text'], files.model);
  const { llama, tokenizer, dispose } = await loadModel(files, values.threads);
  const seqLen = llama.config.seqLen;
  const byContext = settingsForContext(seqLen);
  const { which, ...tsa } = tsaOptionsFrom(values, seqLen);
  const textLength = values['text-length'] === undefined ? byContext.textLength : Math.min(seqLen, int('text-length', values['text-length'], 2));
  const settings: QualitySettings = {
    ...D,
    ...tsa,
    tsaSource: which,
    taus: values.taus === undefined ? byContext.taus : values.taus.split(',').map((t) => num('taus', t, 0, 0.999)),
    textLength,
    prefillLength: values.prefill === undefined ? textLength - (byContext.textLength - byContext.prefillLength) : int('prefill', values.prefill, 1),
    documents: docs,
    stories: int('stories', values.stories, 0),
    driftText,
    delta: num('delta', values.delta, 0, 1),
    sparseLayers: values['sparse-layers'] === undefined ? undefined : parseLayerList(values['sparse-layers'], llama.config.layers),
    randomSeed: int('seed', values.seed, 0),
    ...xattentionFrom(values, byContext),
  };
  if (settings.prefillLength >= settings.textLength || settings.prefillLength < 1) {
    console.error(`tsa eval: --prefill ${settings.prefillLength} must be in [1, --text-length ${settings.textLength})`);
    await dispose();
    return 2;
  }
  let report: QualityReport;
  const cpu0 = process.cpuUsage();
  try {
    const backend = await chooseBackend(values.backend, values.threads);
    try {
      report = await runQualityEval(llama, tokenizer, backend, settings, (line) => console.error(line));
    } finally {
      await backend.dispose();
    }
  } finally {
    await dispose();
  }
  const cpu = process.cpuUsage(cpu0);
  console.log(describe(report, (cpu.user + cpu.system) / 1e6));
  if (values.json) {
    const config = {
      backend: report.backend,
      window: settings.window,
      minTokens: settings.minTokens,
      poolKernel: settings.poolKernel,
      textLength: settings.textLength,
      prefillLength: settings.prefillLength,
      xattention: settings.xattention,
      texts: report.texts.length,
    };
    mkdirSync(dirname(values.json), { recursive: true });
    writeFileSync(values.json, JSON.stringify(report.records.map((r) => ({ ...r, config })), null, 2) + '\n');
    console.error(`wrote ${values.json}`);
  }
  return 0;
}

/** XAttention's settings: the flags given over the context's defaults (the library validates them); block size 0 turns the rows off. */
function xattentionFrom(
  values: { 'block-size'?: string; 'block-stride'?: string; 'block-threshold'?: string },
  byContext: Pick<QualitySettings, 'xattention' | 'xattentionSource'>,
): Pick<QualitySettings, 'xattention' | 'xattentionSource'> {
  const given = (['block-size', 'block-stride', 'block-threshold'] as const).filter((k) => values[k] !== undefined);
  if (values['block-size'] !== undefined && int('block-size', values['block-size'], 0) === 0) return { xattention: null, xattentionSource: '--block-size 0' };
  const d = byContext.xattention!;
  const blockSparse: ResolvedBlockSparse = {
    method: 'xattention',
    blockSize: values['block-size'] === undefined ? d.blockSize : int('block-size', values['block-size'], 1),
    stride: values['block-stride'] === undefined ? d.stride : int('block-stride', values['block-stride'], 1),
    threshold: values['block-threshold'] === undefined ? d.threshold : num('block-threshold', values['block-threshold'], 0, 1),
  };
  return { xattention: resolveOptions({ blockSparse }).blockSparse!, xattentionSource: given.length ? `--${given.join(', --')} given, otherwise ${byContext.xattentionSource}` : byContext.xattentionSource };
}

/** Which texts, how long, and how much of each is prefilled. */
function textsLine(r: QualityReport): string[] {
  const s = r.settings;
  const cont = s.textLength - s.prefillLength;
  const scored = r.records[0]?.tokens ?? 0;
  if (!s.documents) {
    return [
      `texts: ${r.texts.length} (${s.stories} stories sampled from the dense model at temperature ${s.storyTemperature}, seeds 1..${s.stories}, ` +
        `plus ${r.texts[r.texts.length - 1]!.name}); ${s.textLength} tokens each: prefill ${s.prefillLength}, ` +
        `continuation ${cont} teacher-forced with dense decode (${scored} scored tokens)`,
    ];
  }
  return [
    `texts: ${r.texts.length} documents, cut to ${s.textLength} tokens (BOS included): prefill ${s.prefillLength}, continuation ${cont} ` +
      `teacher-forced with dense attention (${scored} scored tokens); a shorter document is used whole with its prefill shortened:`,
    ...r.texts.map((t) => `  ${t.name.padEnd(28)} ${String(t.tokens).padStart(5)} tokens, prefill ${t.prefill}`),
  ];
}

/** Settings, table, pruning onset and per-text agreement at the first tau, as Markdown-friendly text. */
function describe(r: QualityReport, cpuSeconds: number): string {
  const s = r.settings;
  const first = r.records.find((x) => x.method === 'tsa')!;
  const lines = [
    `backend: ${r.backend}`,
    `TSA settings: window W = ${s.window}, minTokens = ${s.minTokens}, pool kernel P = ${s.poolKernel} (${s.tsaSource})`,
    s.xattention
      ? `XAttention settings: block B = ${s.xattention.blockSize}, stride S = ${s.xattention.stride}, threshold T = ${s.xattention.threshold} (${s.xattentionSource}); ` +
        `rows at tau 0: xattn alone and random-blocks (its selected count per text, layer and head, diagonal kept, seed --seed + ${RANDOM_BLOCKS_SEED} + text); tsa+xattn at each tau; "blocks" = selected / causal blocks`
      : `XAttention rows: none (${s.xattentionSource})`,
    ...textsLine(r),
    `sparse layers: ${r.sparseLayers.join(',') || 'none'}` +
      (s.sparseLayers
        ? ' (given)'
        : ` (lowest-drift share ${s.delta}, rounded half down; drift R_l on ${r.driftSource}: ${r.drift.map((x, l) => `L${l} ${x.toFixed(3)}`).join(', ')})`),
    `near ties: at ${r.denseNearTies} of ${first.tokens} positions the dense top-1 leads by < ${NEAR_TIE} nats ("flips (near-tie)" counts flips there)`,
    '',
    qualityTable(r.records, r.sparseLayers),
    '',
    'pruning onset (the smallest tau that prunes any token; min / median / max over texts):',
    ...r.pruningOnset.map((o) => `  layer ${o.layer}: ${o.min.toExponential(2)} / ${o.median.toExponential(2)} / ${o.max.toExponential(2)}`),
    '',
    `where the damage lands: top-1 flips and mean KL per quarter of each text's continuation:`,
    ...r.records.map(
      (x) => `  tau ${String(x.tau).padEnd(6)} ${x.method.padEnd(13)} flips ${x.flipsByQuarter.join(' / ')}; KL ${x.klByQuarter.map((k) => k.toExponential(1)).join(' / ')}`,
    ),
    '',
    `per text at tau ${first.tau} (tsa): top-1 agreement % / kept fraction / NLL change %`,
    ...first.perText.map(
      (t) => `  ${t.text.padEnd(34)} ${(100 * t.top1Agreement).toFixed(1).padStart(5)} / ${t.keptFraction.toFixed(3)} / ${((100 * (t.nll - t.nllDense)) / t.nllDense).toFixed(3)}`,
    ),
    '',
    `elapsed: ${(r.elapsedMs / 1000).toFixed(1)} s (process CPU time ${cpuSeconds.toFixed(1)} s, all threads)`,
  ];
  return lines.join('\n');
}
