/**
 * `tsa bench`: dense vs token-sparse attention across context lengths on the
 * best available backend (or --backend), with peers, a table, JSON and an SVG plot.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import '../../backends.js';
import { runBench, type BenchRecord } from '../bench.js';
import { benchTable } from '../bench-table.js';
import { TsaInputError } from '../../core/errors.js';
import { INPUT_KINDS, type InputKind } from '../../core/generators.js';
import type { Backend } from '../../core/interface.js';
import { benchSvg } from '../plot.js';
import { createBackend, probeBackends, selectBackend } from '../../registry.js';

/** Default sweeps, sized so each ends within about 3 minutes on a 2-core machine. */
const DEFAULT_LENGTHS: Record<string, number[]> = {
  reference: [1280, 2048],
  wasm: [2048, 4096, 8192, 16384],
  webgpu: [4096, 8192, 16384, 32768],
};

const HELP = `usage: tsa bench [options]

Times dense and token-sparse attention (median of several calls after a warmup)
for each context length and input kind, on the best available backend unless
--backend says otherwise, with peer runtimes on the same shapes.

  --backend NAME[,NAME]   backends to run ('all' = every available one)
  --lengths 1024,4096     context lengths (default: a per-backend sweep of ~3 min)
  --heads 8 --kv-heads 2 --head-dim 128
  --inputs structured     gaussian | structured | gaussian,structured
  --threads N             CPU threads (default: the number of cores)
  --coverage 0.005        tau
  --no-peers              skip peer runtimes
  --seed 1
  --json FILE             (default bench-results/latest.json)
  --svg FILE              (default bench-results/latest.svg)`;

function intList(name: string, s: string): number[] {
  const xs = s.split(',').map((x) => Number(x.trim()));
  if (xs.some((x) => !Number.isInteger(x) || x <= 0)) throw new TsaInputError(`--${name} must be positive integers separated by commas, got '${s}'`, 'OPTION');
  return xs;
}

function positive(name: string, s: string): number {
  const x = Number(s);
  if (!Number.isInteger(x) || x <= 0) throw new TsaInputError(`--${name} must be a positive integer, got '${s}'`, 'OPTION');
  return x;
}

async function chooseBackends(spec: string | undefined, threads: number): Promise<Backend[]> {
  if (spec === undefined) {
    const s = await selectBackend({ threads });
    console.error(`backend: ${s.why}`);
    return [s.backend];
  }
  if (spec === 'all') {
    const rows = await probeBackends({ threads });
    for (const r of rows.filter((r) => !r.available)) console.error(`skipping ${r.name}: ${r.reason}`);
    return Promise.all(rows.filter((r) => r.available).map((r) => createBackend(r.name, { threads })));
  }
  const out: Backend[] = [];
  for (const name of spec.split(',')) out.push(await createBackend(name.trim(), { threads }));
  return out;
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      backend: { type: 'string' },
      lengths: { type: 'string' },
      heads: { type: 'string', default: '8' },
      'kv-heads': { type: 'string', default: '2' },
      'head-dim': { type: 'string', default: '128' },
      inputs: { type: 'string', default: 'structured' },
      threads: { type: 'string' },
      coverage: { type: 'string', default: '0.005' },
      'no-peers': { type: 'boolean', default: false },
      seed: { type: 'string', default: '1' },
      json: { type: 'string', default: 'bench-results/latest.json' },
      svg: { type: 'string', default: 'bench-results/latest.svg' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const inputs = values.inputs.split(',').map((s) => s.trim()) as InputKind[];
  for (const k of inputs) {
    if (!INPUT_KINDS.includes(k)) throw new TsaInputError(`--inputs must be ${INPUT_KINDS.join(' | ')} (comma-separated), got '${k}'`, 'OPTION');
  }
  const coverage = Number(values.coverage);
  if (!(coverage >= 0 && coverage < 1)) throw new TsaInputError(`--coverage must be in [0, 1), got '${values.coverage}'`, 'OPTION');
  const threads = values.threads === undefined ? availableParallelism() : positive('threads', values.threads);
  const heads = positive('heads', values.heads);
  const kvHeads = positive('kv-heads', values['kv-heads']);
  if (heads % kvHeads !== 0) throw new TsaInputError(`--heads (${heads}) must be a multiple of --kv-heads (${kvHeads})`, 'HEADS');

  const backends = await chooseBackends(values.backend, threads);
  const records: BenchRecord[] = [];
  try {
    for (const backend of backends) {
      const lengths = values.lengths ? intList('lengths', values.lengths) : DEFAULT_LENGTHS[backend.name] ?? [1024, 2048, 4096];
      console.error(`${backend.name}: ${backend.description}; lengths ${lengths.join(', ')}`);
      const t0 = performance.now();
      const recs = await runBench(
        {
          backends: [backend],
          lengths,
          heads,
          kvHeads,
          headDim: positive('head-dim', values['head-dim']),
          inputs,
          coverage,
          threads,
          peers: !values['no-peers'],
          seed: positive('seed', values.seed),
        },
        (msg) => console.error(`  ${((performance.now() - t0) / 1000).toFixed(0).padStart(4)}s ${msg}`),
      );
      records.push(...recs);
    }
  } finally {
    for (const b of backends) await b.dispose();
  }
  console.log(benchTable(records));
  for (const [file, text] of [
    [values.json, JSON.stringify(records, null, 2)],
    [values.svg, benchSvg(records, `H=${heads} Hkv=${kvHeads} D=${values['head-dim']}`)],
  ] as const) {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, text);
  }
  console.log(`\nwrote ${values.json} and ${values.svg}`);
  return 0;
}
