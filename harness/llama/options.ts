/** Command-line plumbing shared by `tsa generate` and `tsa eval`: model files, backend, numbers, layers. */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { createWasmMatmul, DEFAULT_BLOCK_SPARSE, DEFAULT_OPTIONS, selectBackend, TsaInputError, type Backend, type ResolvedBlockSparse } from '../index.js';
import { jsMatmul } from './blocks.js';
import { loadCheckpoint } from './checkpoint.js';
import { chooseSparseLayers, defaultDriftProfile, parseLayerList, profileDrift, PROFILE_SEED } from './drift.js';
import { Llama } from './llama.js';
import { loadTokenizer, type Tokenizer } from './tokenizer.js';

/** parseArgs option specs of the model flags. */
export const MODEL_FLAGS = {
  model: { type: 'string' },
  tokenizer: { type: 'string' },
  backend: { type: 'string' },
  threads: { type: 'string' },
} as const;

/** TSA flags; window, min-tokens and pool-kernel default by the model's context (tsaDefaultsFor). */
export const TSA_FLAGS = {
  window: { type: 'string' },
  'min-tokens': { type: 'string' },
  'pool-kernel': { type: 'string' },
  'sparse-layers': { type: 'string' },
  'drift-text': { type: 'string' },
  delta: { type: 'string', default: '0.5' },
} as const;

/** A model context of at least this many tokens gets the library's TSA defaults. */
export const LONG_CONTEXT = 2048;

/**
 * TSA's window, minTokens and pool kernel for a model of context seqLen: the library's defaults
 * from LONG_CONTEXT tokens on, below that scaled to a 512-position model (the library's engage
 * only above 1152 tokens); `which` says which.
 */
export function tsaDefaultsFor(seqLen: number): { window: number; minTokens: number; poolKernel: number; which: string } {
  const { window, minTokens, poolKernel } = DEFAULT_OPTIONS;
  if (seqLen >= LONG_CONTEXT) return { window, minTokens, poolKernel, which: `the library's defaults (context ${seqLen} >= ${LONG_CONTEXT})` };
  return { window: 32, minTokens: 64, poolKernel, which: `scaled to a short context (${seqLen} < ${LONG_CONTEXT}; library: W ${window}, minTokens ${minTokens})` };
}

/**
 * XAttention's block size, stride and threshold for a model of context seqLen: the library's
 * defaults (the authors' composition settings) from LONG_CONTEXT tokens on; below, scaled to a
 * 512-position model: block 16, stride 4 (a 384-token prefill has 24 block rows, as block 128
 * has 28 on a 3584-token one; 4 strided rows per block), threshold unchanged; `which` says which.
 */
export function xattnDefaultsFor(seqLen: number): { blockSparse: ResolvedBlockSparse; which: string } {
  const d = DEFAULT_BLOCK_SPARSE;
  if (seqLen >= LONG_CONTEXT) return { blockSparse: { ...d }, which: `the library's defaults (context ${seqLen} >= ${LONG_CONTEXT})` };
  return {
    blockSparse: { ...d, blockSize: 16, stride: 4 },
    which: `scaled to a short context (${seqLen} < ${LONG_CONTEXT}; library: block ${d.blockSize}, stride ${d.stride})`,
  };
}

/** The TSA flags given, else tsaDefaultsFor(seqLen); `which` notes any flag given. */
export function tsaOptionsFrom(
  values: { window?: string; 'min-tokens'?: string; 'pool-kernel'?: string },
  seqLen: number,
): { window: number; minTokens: number; poolKernel: number; which: string } {
  const d = tsaDefaultsFor(seqLen);
  const given = (['window', 'min-tokens', 'pool-kernel'] as const).filter((k) => values[k] !== undefined);
  return {
    window: values.window === undefined ? d.window : int('window', values.window, 1),
    minTokens: values['min-tokens'] === undefined ? d.minTokens : int('min-tokens', values['min-tokens'], 1),
    poolKernel: values['pool-kernel'] === undefined ? d.poolKernel : int('pool-kernel', values['pool-kernel'], 1),
    which: given.length ? `--${given.join(', --')} given, otherwise ${d.which}` : d.which,
  };
}

export const MODEL_HELP = `  --model FILE            llama2.c checkpoint, e.g. stories260K.bin (required)
  --tokenizer FILE        its tokenizer, e.g. tok512.bin (required)
  --backend NAME          force a backend (default: the best that works here)
  --threads N             CPU threads for CPU backends`;

export const TSA_HELP = `  --window W              scoring window, always kept      (defaults: the library's W 128,
  --min-tokens N          floor on kept prefix tokens       minTokens 1024, P 7 for a model
  --pool-kernel P         pooling kernel                    context >= ${LONG_CONTEXT}, else W 32, minTokens 64, P 7)
  --sparse-layers 2,3     explicit sparse layers (overrides --delta)
  --delta 0.5             share of layers made sparse, lowest drift first (rounded half down)
  --drift-text FILE       the drift profile's prompt (default: a NAME-drift.txt beside the model
                          whose NAME begins the model's file name, e.g. sotu-drift.txt for
                          sotu5M.bin; else a story sampled from the model)`;

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

/**
 * The model and tokenizer, the prefill's matmuls on the wasm kernel (`threads` threads) or, where
 * wasm cannot run, plain loops (said on stderr); `dispose` releases the kernel's workers.
 */
export async function loadModel(
  files: { model: string; tokenizer: string },
  threads: string | undefined,
): Promise<{ llama: Llama; tokenizer: Tokenizer; dispose: () => Promise<void> }> {
  const model = loadCheckpoint(files.model);
  const tokenizer = loadTokenizer(files.tokenizer, model.config.vocabSize);
  const matmul = await createWasmMatmul({ threads: threads === undefined ? undefined : int('threads', threads, 1) }).catch((e: unknown) => {
    console.error(`matmul: plain loops (${e instanceof Error ? e.message : String(e)})`);
    return null;
  });
  if (matmul) console.error(`matmul: ${matmul.description}`);
  const llama = new Llama(model, matmul ? (a, b, m, k, n) => matmul.matmul(a, b, m, k, n) : jsMatmul);
  return { llama, tokenizer, dispose: async () => matmul?.dispose() };
}

/** A file's text by name; TsaInputError naming it when it cannot be read. */
export function readText(path: string): { name: string; text: string } {
  try {
    return { name: basename(path), text: readFileSync(path, 'utf8') };
  } catch (e) {
    throw new TsaInputError(`cannot read text '${path}': ${e instanceof Error ? e.message : String(e)}`, 'OPTION');
  }
}

/** The drift prompt: --drift-text, else a NAME-drift.txt beside the model whose NAME begins its file name, else none. */
export function driftTextFor(given: string | undefined, modelPath: string): { name: string; text: string } | undefined {
  if (given !== undefined) return readText(given);
  const dir = dirname(modelPath);
  const model = basename(modelPath);
  const found = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('-drift.txt') && model.startsWith(f.slice(0, -'-drift.txt'.length))) : [];
  return found.length ? readText(join(dir, found.sort()[0]!)) : undefined;
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
  tokenizer: Tokenizer,
  backend: Backend,
  driftText: { name: string; text: string } | undefined,
): Promise<{ layers: number[]; drift: number[] | null; how: string }> {
  if (values['sparse-layers'] !== undefined) {
    const layers = parseLayerList(values['sparse-layers'], llama.config.layers);
    return { layers, drift: null, how: 'given by --sparse-layers' };
  }
  const delta = num('delta', values.delta, 0, 1);
  const drift = driftText
    ? await profileDrift(llama, backend, tokenizer.encode(driftText.text).slice(0, llama.config.seqLen))
    : await defaultDriftProfile(llama, backend);
  const layers = chooseSparseLayers(drift, delta);
  const shown = drift.map((r, l) => `L${l} ${r.toFixed(3)}`).join(', ');
  const on = driftText ? driftText.name : `a sampled story, seed ${PROFILE_SEED}`;
  return { layers, drift, how: `lowest-drift share ${delta} (drift on ${on}: ${shown})` };
}
