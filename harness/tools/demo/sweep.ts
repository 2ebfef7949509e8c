/**
 * The demo page's benchmark (index.html, page.mjs): its settings from URL parameters, and the sweep
 * itself, run in the page on the browser entry's backends with the bench's own measurement
 * (tools/bench.ts), one (backend, length) step at a time so the page can show progress.
 * Platform-neutral: no DOM and no node: imports (the page does the drawing).
 */
import { createBackend, TsaInputError, INPUT_KINDS, type Backend, type InputKind } from '../../browser.js';
import { runBench, type BenchRecord } from '../bench.js';

export interface DemoConfig {
  /** Backend names, in the order they run. */
  backends: string[];
  lengths: number[];
  heads: number;
  kvHeads: number;
  headDim: number;
  inputs: InputKind;
  coverage: number;
  seed: number;
}

export const DEMO_DEFAULTS = {
  backend: 'wasm',
  lengths: '1024,2048,4096',
  heads: '4',
  kvHeads: '2',
  headDim: '64',
  inputs: 'structured',
  coverage: '0.005',
  seed: '1',
} as const;

export type DemoParam = keyof typeof DEMO_DEFAULTS;

function positiveInts(name: string, text: string): number[] {
  const xs = text.split(',').map((x) => Number(x.trim()));
  if (xs.length === 0 || xs.some((x) => !Number.isInteger(x) || x <= 0)) {
    throw new TsaInputError(`${name} must be positive integers separated by commas, got '${text}'`, 'OPTION');
  }
  return xs;
}

/** The sweep a page URL asks for (`?backend=wasm,webgpu&lengths=1024,2048&heads=4&...`); missing parameters take DEMO_DEFAULTS. */
export function parseDemoParams(params: URLSearchParams): DemoConfig {
  const get = (name: DemoParam): string => params.get(name) ?? DEMO_DEFAULTS[name];
  const one = (name: DemoParam): number => {
    const [x, ...rest] = positiveInts(name, get(name));
    if (rest.length) throw new TsaInputError(`${name} must be one positive integer, got '${get(name)}'`, 'OPTION');
    return x!;
  };
  const inputs = get('inputs') as InputKind;
  if (!INPUT_KINDS.includes(inputs)) throw new TsaInputError(`inputs must be ${INPUT_KINDS.join(' or ')}, got '${inputs}'`, 'OPTION');
  const coverage = Number(get('coverage'));
  if (!(coverage >= 0 && coverage < 1)) throw new TsaInputError(`coverage must be in [0, 1), got '${get('coverage')}'`, 'OPTION');
  const config: DemoConfig = {
    backends: get('backend').split(',').map((s) => s.trim()).filter((s) => s.length > 0),
    lengths: positiveInts('lengths', get('lengths')),
    heads: one('heads'),
    kvHeads: one('kvHeads'),
    headDim: one('headDim'),
    inputs,
    coverage,
    seed: one('seed'),
  };
  if (config.backends.length === 0) throw new TsaInputError('backend must name at least one backend', 'OPTION');
  if (config.heads % config.kvHeads !== 0) {
    throw new TsaInputError(`heads (${config.heads}) must be a multiple of kvHeads (${config.kvHeads})`, 'HEADS');
  }
  return config;
}

export interface DemoResult {
  config: DemoConfig;
  backends: { name: string; description: string }[];
  records: BenchRecord[];
}

/**
 * Runs the sweep: dense and token-sparse attention per backend and length (the bench's
 * measurement, no peers). `progress(done, total, message)` after each message of the bench.
 * A backend that cannot run here fails the sweep with its reason (BackendUnavailableError).
 */
export async function runDemoSweep(config: DemoConfig, progress: (done: number, total: number, message: string) => void): Promise<DemoResult> {
  const backends: Backend[] = [];
  try {
    for (const name of config.backends) backends.push(await createBackend(name));
    const total = backends.length * config.lengths.length;
    const records: BenchRecord[] = [];
    let done = 0;
    for (const backend of backends) {
      for (const seqLen of config.lengths) {
        const bench = {
          backends: [backend],
          lengths: [seqLen],
          heads: config.heads,
          kvHeads: config.kvHeads,
          headDim: config.headDim,
          inputs: [config.inputs],
          coverage: config.coverage,
          threads: backend.threads ?? 1,
          peers: false as const,
          seed: config.seed,
        };
        records.push(...(await runBench(bench, (message) => progress(done, total, `${backend.name} L=${seqLen}: ${message}`))));
        done++;
        progress(done, total, `${backend.name} L=${seqLen} measured`);
      }
    }
    return { config, backends: backends.map((b) => ({ name: b.name, description: b.description })), records };
  } finally {
    for (const b of backends) await b.dispose();
  }
}
