/**
 * `tsa bench`: dense vs token-sparse attention across context lengths on the
 * best available backend (or --backend), with peers, a table, JSON and an SVG
 * plot; or one stage timed alone (--stage). Every flag is checked before any
 * backend is probed.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname } from 'node:path';
import '../../backends.js';
import { checkBackendNames, parseCommandArgs, positiveInt, UsageError } from '../args.js';
import { BENCH_METHODS, runBench, type BenchInputKind, type BenchMethod, type BenchRecord } from '../bench.js';
import { runMeta } from '../bench-report.js';
import { benchTable } from '../bench-table.js';
import { NODE_PEERS, type PeerChoice } from '../bench-peers.js';
import { BackendUnavailableError } from '../../core/errors.js';
import { benchInputFromModel } from '../../llama/capture.js';
import { INPUT_KINDS, type InputKind } from '../../core/generators.js';
import type { Backend, BackendCreateOptions } from '../../core/interface.js';
import { STAGE_METHODS, type StageMethod } from '../../core/stages.js';
import { PEER_GROUPS, type PeerGroup } from '../peers/index.js';
import { benchSvg } from '../plot.js';
import { createBackend, probeBackends, selectBackend } from '../../registry.js';

/** Default sweeps, sized so each ends within about 3 minutes on a 2-core machine. */
const DEFAULT_LENGTHS: Record<string, number[]> = {
  reference: [1280, 2048],
  wasm: [2048, 4096, 8192, 16384],
  webgpu: [4096, 8192, 16384, 32768],
};

const ADAPTERS = ['vulkan', 'opengl'] as const;

const HELP = `usage: tsa bench [options]

Times dense and token-sparse attention (medians of interleaved rounds after a
warmup: dense, then each method, call by call) for each context length and input kind, on the best available backend unless
--backend says otherwise, with peer runtimes on the same shapes. On webgpu it
times the GPU-resident path on inputs generated on the device.

  --backend NAME[,NAME]   backends to run ('all' = every available one)
  --adapter vulkan|opengl Dawn backend of the webgpu backend (implies --backend webgpu)
  --no-cost-rule          webgpu: sparse whenever the budget says so (the spec's pipeline)
  --precision f32|f16     webgpu: the attention's precision (README "Precision"; default f32)
  --lengths 1024,4096     context lengths (default: a per-backend sweep of ~3 min)
  --heads 8 --kv-heads 2 --head-dim 128
  --inputs structured     gaussian | structured | local (comma-separated), or model:
                          --model M --tokenizer T --text FILE --layer N capture Q, K (after
                          RoPE), V of layer N prefilling FILE (shape and L from the model)
  --threads N             CPU threads (default: the number of cores)
  --coverage 0.005        tau
  --peers onnx,torch      peers to time (${PEER_GROUPS.join(', ')}; default: every installed one)
  --no-peers              skip peer runtimes
  --methods dense,tsa     dense | tsa | xattn | tsa+xattn (comma-separated; dense always runs, the
                          speedup base): xattn = XAttention alone, tsa+xattn = XAttention on TSA's rows
  --stage NAME            time one stage alone instead: ${STAGE_METHODS.join(' | ')}
  --seed 1
  --json FILE             (default bench-results/latest.json)
  --svg FILE              (default bench-results/latest.svg)`;

const usage = (message: string) => new UsageError(message);

function intList(name: string, s: string): number[] {
  const xs = s.split(',').map((x) => Number(x.trim()));
  if (xs.some((x) => !Number.isInteger(x) || x <= 0)) throw usage(`--${name} must be positive integers separated by commas, got '${s}'`);
  return xs;
}

const positive = positiveInt;

/** Each comma-separated value of --name, which must be one of `allowed`. */
function oneOf<T extends string>(name: string, s: string, allowed: readonly T[]): T[] {
  const xs = s.split(',').map((x) => x.trim());
  for (const x of xs) if (!allowed.includes(x as T)) throw usage(`--${name} must be ${allowed.join(' | ')}${allowed.length > 2 ? ' (comma-separated)' : ''}, got '${x}'`);
  return xs as T[];
}

async function chooseBackends(spec: string | undefined, options: BackendCreateOptions): Promise<Backend[]> {
  if (spec === undefined) {
    const s = await selectBackend(options);
    console.error(`backend: ${s.why}`);
    return [s.backend];
  }
  if (spec === 'all') {
    const rows = await probeBackends(options);
    for (const r of rows.filter((r) => !r.available)) console.error(`skipping ${r.name}: ${r.reason}`);
    return Promise.all(rows.filter((r) => r.available).map((r) => createBackend(r.name, options)));
  }
  const out: Backend[] = [];
  for (const name of spec.split(',')) out.push(await createBackend(name.trim(), options));
  return out;
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs({
    args: argv,
    options: {
      backend: { type: 'string' },
      adapter: { type: 'string' },
      'no-cost-rule': { type: 'boolean', default: false },
      precision: { type: 'string' },
      lengths: { type: 'string' },
      heads: { type: 'string', default: '8' },
      'kv-heads': { type: 'string', default: '2' },
      'head-dim': { type: 'string', default: '128' },
      inputs: { type: 'string', default: 'structured' },
      model: { type: 'string' },
      tokenizer: { type: 'string' },
      text: { type: 'string' },
      layer: { type: 'string' },
      threads: { type: 'string' },
      coverage: { type: 'string', default: '0.005' },
      peers: { type: 'string' },
      'no-peers': { type: 'boolean', default: false },
      stage: { type: 'string' },
      methods: { type: 'string', default: 'dense,tsa' },
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
  // Every flag first: nothing is probed before the command line is known to be good.
  const kinds = values.inputs.split(',').map((k) => k.trim());
  if (kinds.includes('model') && kinds.length > 1) throw usage(`--inputs must be ${INPUT_KINDS.join(' | ')} (comma-separated), or model alone, got '${values.inputs}'`);
  const inputs: BenchInputKind[] = kinds[0] === 'model' ? ['model'] : oneOf<InputKind>('inputs', values.inputs, INPUT_KINDS);
  const fromModel = inputs.includes('model');
  const shapeFlag = argv.find((a) => /^--(heads|kv-heads|head-dim|lengths)(=|$)/.test(a));
  if (fromModel && shapeFlag) throw usage(`--inputs model takes its shape and length from the model: ${shapeFlag} cannot be given with it`);
  const coverage = Number(values.coverage);
  if (!(coverage >= 0 && coverage < 1)) throw usage(`--coverage must be in [0, 1), got '${values.coverage}'`);
  const threads = values.threads === undefined ? availableParallelism() : positive('threads', values.threads);
  const heads = positive('heads', values.heads);
  const kvHeads = positive('kv-heads', values['kv-heads']);
  const headDim = positive('head-dim', values['head-dim']);
  const seed = positive('seed', values.seed);
  if (heads % kvHeads !== 0) throw usage(`--heads (${heads}) must be a multiple of --kv-heads (${kvHeads})`);
  const lengths = values.lengths === undefined ? null : intList('lengths', values.lengths);
  if (values.peers !== undefined && values['no-peers']) throw usage('--peers and --no-peers contradict each other');
  const peers: PeerChoice = values['no-peers'] ? false : values.peers === undefined ? 'installed' : oneOf<PeerGroup>('peers', values.peers, PEER_GROUPS);
  const methods = oneOf<BenchMethod>('methods', values.methods, BENCH_METHODS);
  const stage = values.stage === undefined ? undefined : oneOf<StageMethod>('stage', values.stage, STAGE_METHODS)[0];
  const adapter = values.adapter === undefined ? undefined : oneOf('adapter', values.adapter, ADAPTERS)[0];
  const precision = values.precision === undefined ? undefined : oneOf('precision', values.precision, ['f32', 'f16'] as const)[0];
  const backendSpec = values.backend ?? (adapter ? 'webgpu' : undefined);
  const names = backendSpec === undefined || backendSpec === 'all' ? [] : backendSpec.split(',').map((s) => s.trim());
  checkBackendNames(backendSpec, true);
  if (adapter && backendSpec !== 'all' && !names.includes('webgpu')) throw usage('--adapter names a Dawn backend for webgpu: use it with --backend webgpu (or all)');

  // `adapter`: the webgpu factory's option naming Dawn's backend (other backends ignore it).
  // `precision`: the webgpu factory's default precision (f16 needs shader-f16; other backends have f32 only).
  const createOptions: BackendCreateOptions & { adapter?: (typeof ADAPTERS)[number]; precision?: 'f32' | 'f16' } = {
    threads,
    ...(adapter && { adapter }),
    ...(precision && { precision }),
    ...(values['no-cost-rule'] && { costRule: false }),
  };
  const backends = await chooseBackends(backendSpec, createOptions);
  const records: BenchRecord[] = [];
  let captured: Awaited<ReturnType<typeof benchInputFromModel>> | undefined;
  try {
    const gpu = backends.find((b) => b.name === 'webgpu');
    if (adapter && gpu && !gpu.description.includes(`Dawn ${adapter}`)) {
      throw new BackendUnavailableError(`--adapter ${adapter}: the webgpu backend opened another Dawn backend (${gpu.description})`);
    }
    captured = fromModel ? await benchInputFromModel(values, backends[0]!) : undefined;
    for (const backend of backends) {
      const sweep = captured ? [captured.seqLen] : lengths ?? DEFAULT_LENGTHS[backend.name] ?? [1024, 2048, 4096];
      console.error(`${backend.name}: ${backend.description}; lengths ${sweep.join(', ')}`);
      const t0 = performance.now();
      const shape = { heads: captured?.heads ?? heads, kvHeads: captured?.kvHeads ?? kvHeads, headDim: captured?.headDim ?? headDim };
      const config = { backends: [backend], lengths: sweep, ...shape, inputs, captured, coverage, threads, peers, seed, methods, ...(stage && { stage }) };
      records.push(...(await runBench(config, (msg) => console.error(`  ${((performance.now() - t0) / 1000).toFixed(0).padStart(4)}s ${msg}`), NODE_PEERS)));
    }
  } finally {
    for (const b of backends) await b.dispose();
  }
  console.log(benchTable(records));
  const meta = runMeta(backends, ['tsa', 'bench', ...argv]);
  for (const [file, text] of [
    [values.json, JSON.stringify({ meta, records }, null, 2)],
    [values.svg, benchSvg(records, `H=${captured?.heads ?? heads} Hkv=${captured?.kvHeads ?? kvHeads} D=${captured?.headDim ?? headDim}`)],
  ] as const) {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, text);
  }
  console.log(`\nwrote ${values.json} and ${values.svg}`);
  return 0;
}
