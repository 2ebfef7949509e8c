/** Command-line plumbing shared by `tsa generate` and `tsa eval`: model files, backend, numbers, layers. */
import { selectBackend, TsaInputError, type Backend } from '../index.js';
import { loadCheckpoint } from './checkpoint.js';
import { chooseSparseLayers, defaultDriftProfile, parseLayerList, PROFILE_SEED } from './drift.js';
import { Llama } from './llama.js';
import { loadTokenizer, type Tokenizer } from './tokenizer.js';

/** parseArgs option specs of the model flags. */
export const MODEL_FLAGS = {
  model: { type: 'string' },
  tokenizer: { type: 'string' },
  backend: { type: 'string' },
  threads: { type: 'string' },
} as const;

/** TSA flags; defaults scaled to a 512-position model (the library's assume >= 1152-token prompts). */
export const TSA_FLAGS = {
  window: { type: 'string', default: '32' },
  'min-tokens': { type: 'string', default: '64' },
  'pool-kernel': { type: 'string', default: '7' },
  'sparse-layers': { type: 'string' },
  delta: { type: 'string', default: '0.5' },
} as const;

export const MODEL_HELP = `  --model FILE            llama2.c checkpoint, e.g. stories260K.bin (required)
  --tokenizer FILE        its tokenizer, e.g. tok512.bin (required)
  --backend NAME          force a backend (default: the best that works here)
  --threads N             CPU threads for CPU backends`;

export const TSA_HELP = `  --window 32             W: scoring window, always kept (library default 128)
  --min-tokens 64         floor on kept prefix tokens (library default 1024)
  --pool-kernel 7         P: pooling kernel
  --sparse-layers 2,3     explicit sparse layers (overrides --delta)
  --delta 0.5             share of layers made sparse, lowest drift first (rounded half down)`;

export function requireFiles(model: string | undefined, tokenizer: string | undefined): { model: string; tokenizer: string } {
  if (model === undefined || tokenizer === undefined) {
    const missing = [model === undefined ? '--model' : '', tokenizer === undefined ? '--tokenizer' : ''].filter(Boolean);
    throw new TsaInputError(
      `needs ${missing.join(' and ')}: --model is a llama2.c checkpoint (e.g. stories260K.bin) and --tokenizer ` +
        `its sentencepiece vocabulary (e.g. tok512.bin), both from https://github.com/karpathy/llama2.c ` +
        `(e.g. --model stories260K.bin --tokenizer tok512.bin)`,
      'OPTION',
    );
  }
  return { model, tokenizer };
}

export function loadModel(files: { model: string; tokenizer: string }): { llama: Llama; tokenizer: Tokenizer } {
  const model = loadCheckpoint(files.model);
  return { llama: new Llama(model), tokenizer: loadTokenizer(files.tokenizer, model.config.vocabSize) };
}

/** The forced backend, or the best available one; says which and why on stderr. */
export async function chooseBackend(name: string | undefined, threads: string | undefined): Promise<Backend> {
  const s = await selectBackend({ backend: name, threads: threads === undefined ? undefined : int('threads', threads, 1) });
  console.error(`backend: ${s.why}`);
  return s.backend;
}

export function int(name: string, s: string, min: number): number {
  const x = Number(s);
  if (!Number.isInteger(x) || x < min) throw new TsaInputError(`--${name} must be an integer >= ${min}, got '${s}'`, 'OPTION');
  return x;
}

export function num(name: string, s: string, min: number, max = Infinity): number {
  const x = Number(s);
  if (s.trim() === '' || !(x >= min && x <= max)) throw new TsaInputError(`--${name} must be a number in [${min}, ${max}], got '${s}'`, 'OPTION');
  return x;
}

/**
 * The sparse layers: an explicit --sparse-layers list, or the lowest-drift --delta share on the
 * default profile prompt; returns the drift too when it was profiled.
 */
export async function sparseLayersFrom(
  values: { 'sparse-layers'?: string; delta: string },
  llama: Llama,
  backend: Backend,
): Promise<{ layers: number[]; drift: number[] | null; how: string }> {
  if (values['sparse-layers'] !== undefined) {
    const layers = parseLayerList(values['sparse-layers'], llama.config.layers);
    return { layers, drift: null, how: 'given by --sparse-layers' };
  }
  const delta = num('delta', values.delta, 0, 1);
  const drift = await defaultDriftProfile(llama, backend);
  const layers = chooseSparseLayers(drift, delta);
  const shown = drift.map((r, l) => `L${l} ${r.toFixed(3)}`).join(', ');
  return { layers, drift, how: `lowest-drift share ${delta} (drift on a sampled story, seed ${PROFILE_SEED}: ${shown})` };
}
