/**
 * `tsa eval`: the quality report on a real model: continuation NLL and top-1 agreement of
 * token-sparse prefill against all-dense, per coverage tau, with fixed-ratio and random
 * baselines at the same kept fraction.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { parseLayerList } from '../../llama/drift.js';
import { checkBackendNames, parseCommandArgs } from '../args.js';
import { chooseBackend, int, loadModel, MODEL_FLAGS, MODEL_HELP, num, requireFiles, TSA_FLAGS, TSA_HELP } from '../../llama/options.js';
import { DEFAULT_QUALITY_SETTINGS as D, NEAR_TIE, qualityTable, runQualityEval, type QualityReport, type QualitySettings } from '../../llama/quality.js';

const HELP = `usage: tsa eval --model M --tokenizer T [--json FILE] [options]

For ${D.stories} stories sampled from the dense model (temperature ${D.storyTemperature}, seeds 1..N) and one
fixed text not produced by the model, prefills the first --prefill tokens with
token-sparse attention in the sparse layers, teacher-forces the rest with dense
decode, and compares the continuation with the all-dense model: NLL change and
top-1 agreement per tau, beside a fixed-ratio budget and random selection that
keep the same fraction.

${MODEL_HELP}
  --json FILE             write the records (one per tau and method) as JSON
  --taus ${D.taus.join(',')}
  --stories ${D.stories}              sampled stories (plus the fixture text)
  --text-length ${D.textLength}        tokens per text (BOS included)
  --prefill ${D.prefillLength}            prefilled tokens; the rest is the scored continuation
  --seed ${D.randomSeed}                seed of the random baseline
${TSA_HELP}`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs({
    args: argv,
    options: {
      ...MODEL_FLAGS,
      ...TSA_FLAGS,
      json: { type: 'string' },
      taus: { type: 'string', default: D.taus.join(',') },
      stories: { type: 'string', default: String(D.stories) },
      'text-length': { type: 'string', default: String(D.textLength) },
      prefill: { type: 'string', default: String(D.prefillLength) },
      seed: { type: 'string', default: String(D.randomSeed) },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  checkBackendNames(values.backend);
  const { llama, tokenizer } = loadModel(requireFiles(values.model, values.tokenizer));
  const seqLen = llama.config.seqLen;
  const settings: QualitySettings = {
    ...D,
    taus: values.taus.split(',').map((t) => num('taus', t, 0, 0.999)),
    window: int('window', values.window, 1),
    minTokens: int('min-tokens', values['min-tokens'], 1),
    poolKernel: int('pool-kernel', values['pool-kernel'], 1),
    textLength: Math.min(seqLen, int('text-length', values['text-length'], 2)),
    prefillLength: int('prefill', values.prefill, 1),
    stories: int('stories', values.stories, 0),
    delta: num('delta', values.delta, 0, 1),
    sparseLayers: values['sparse-layers'] === undefined ? undefined : parseLayerList(values['sparse-layers'], llama.config.layers),
    randomSeed: int('seed', values.seed, 0),
  };
  if (settings.prefillLength >= settings.textLength) {
    console.error(`tsa eval: --prefill ${settings.prefillLength} must be below --text-length ${settings.textLength}`);
    return 2;
  }
  const backend = await chooseBackend(values.backend, values.threads);
  let report: QualityReport;
  try {
    report = await runQualityEval(llama, tokenizer, backend, settings, (line) => console.error(line));
  } finally {
    await backend.dispose();
  }
  console.log(describe(report));
  if (values.json) {
    const config = {
      backend: report.backend,
      window: settings.window,
      minTokens: settings.minTokens,
      poolKernel: settings.poolKernel,
      textLength: settings.textLength,
      prefillLength: settings.prefillLength,
      texts: report.texts.length,
    };
    mkdirSync(dirname(values.json), { recursive: true });
    writeFileSync(values.json, JSON.stringify(report.records.map((r) => ({ ...r, config })), null, 2) + '\n');
    console.error(`wrote ${values.json}`);
  }
  return 0;
}

/** Settings, table, pruning onset and per-text agreement at the first tau, as Markdown-friendly text. */
function describe(r: QualityReport): string {
  const s = r.settings;
  const cont = s.textLength - s.prefillLength;
  const first = r.records.find((x) => x.method === 'tsa')!;
  const lines = [
    `backend: ${r.backend}`,
    `TSA settings: window W = ${s.window}, minTokens = ${s.minTokens}, pool kernel P = ${s.poolKernel} (scaled to a ${s.textLength}-token context)`,
    `texts: ${r.texts.length} (${s.stories} stories sampled from the dense model at temperature ${s.storyTemperature}, seeds 1..${s.stories}, ` +
      `plus ${r.texts[r.texts.length - 1]!.name}); ${s.textLength} tokens each: prefill ${s.prefillLength}, ` +
      `continuation ${cont} teacher-forced with dense decode (${first.tokens} scored tokens)`,
    `sparse layers: ${r.sparseLayers.join(',') || 'none'}` +
      (s.sparseLayers ? ' (given)' : ` (lowest-drift share ${s.delta}, rounded half down; drift R_l: ${r.drift.map((x, l) => `L${l} ${x.toFixed(3)}`).join(', ')})`),
    `near ties: at ${r.denseNearTies} of ${first.tokens} positions the dense top-1 leads by < ${NEAR_TIE} nats ("flips (near-tie)" counts flips there)`,
    '',
    qualityTable(r),
    '',
    'pruning onset (the smallest tau that prunes any token; min / median / max over texts):',
    ...r.pruningOnset.map((o) => `  layer ${o.layer}: ${o.min.toExponential(2)} / ${o.median.toExponential(2)} / ${o.max.toExponential(2)}`),
    '',
    `where the damage lands: top-1 flips and mean KL per quarter of the continuation (positions ${s.prefillLength}..${s.textLength - 1} in four parts):`,
    ...r.records.map(
      (x) => `  tau ${String(x.tau).padEnd(6)} ${x.method.padEnd(11)} flips ${x.flipsByQuarter.join(' / ')}; KL ${x.klByQuarter.map((k) => k.toExponential(1)).join(' / ')}`,
    ),
    '',
    `per text at tau ${first.tau} (tsa): top-1 agreement % / kept fraction / NLL change %`,
    ...first.perText.map(
      (t) => `  ${t.text.padEnd(34)} ${(100 * t.top1Agreement).toFixed(1).padStart(5)} / ${t.keptFraction.toFixed(3)} / ${((100 * (t.nll - t.nllDense)) / t.nllDense).toFixed(3)}`,
    ),
    '',
    `elapsed: ${(r.elapsedMs / 1000).toFixed(1)} s`,
  ];
  return lines.join('\n');
}
