/**
 * Loader for llama2.c checkpoints (the format of stories260K.bin).
 *
 * Layout (little-endian): 7 int32 header (dim, hiddenDim, layers, heads,
 * kvHeads, vocabSize, seqLen; vocabSize > 0 means the classifier shares the
 * token embedding, < 0 means a separate classifier of |vocabSize| rows follows),
 * then float32 tensors, each matrix (out, in) row-major so y = W x:
 *   tokenEmbedding [V][dim], rmsAtt [layers][dim], wq [layers][H*hd][dim],
 *   wk [layers][Hkv*hd][dim], wv [layers][Hkv*hd][dim], wo [layers][dim][H*hd],
 *   rmsFfn [layers][dim], w1 [layers][hidden][dim], w2 [layers][dim][hidden],
 *   w3 [layers][hidden][dim], rmsFinal [dim], RoPE tables [seqLen][hd] (unused),
 *   then the classifier [V][dim] when it is not shared.
 * Every size is checked against the header before any tensor is read.
 */
import { readFileSync } from 'node:fs';
import { TsaError } from '../index.js';

export type ModelFormatCode = 'HEADER' | 'TRUNCATED' | 'TRAILING' | 'NON_FINITE' | 'READ';

/** A checkpoint or tokenizer file that does not match its format; nothing was loaded. */
export class ModelFormatError extends TsaError {
  constructor(message: string, readonly formatCode: ModelFormatCode) {
    super(message, `TSA_MODEL_${formatCode}`);
  }
}

export interface LlamaConfig {
  dim: number;
  hiddenDim: number;
  layers: number;
  heads: number;
  kvHeads: number;
  vocabSize: number;
  /** Context length (positions 0 .. seqLen-1). */
  seqLen: number;
  /** dim / heads. */
  headDim: number;
  /** The classifier is the token embedding (header vocabSize > 0). */
  sharedClassifier: boolean;
}

/** One transformer block's weights: views into the checkpoint buffer. */
export interface LayerWeights {
  rmsAtt: Float32Array; // [dim]
  wq: Float32Array; // [H*hd][dim]
  wk: Float32Array; // [Hkv*hd][dim]
  wv: Float32Array; // [Hkv*hd][dim]
  wo: Float32Array; // [dim][H*hd]
  rmsFfn: Float32Array; // [dim]
  w1: Float32Array; // [hidden][dim]
  w2: Float32Array; // [dim][hidden]
  w3: Float32Array; // [hidden][dim]
}

export interface LlamaModel {
  config: LlamaConfig;
  tokenEmbedding: Float32Array; // [V][dim]
  layers: LayerWeights[];
  rmsFinal: Float32Array; // [dim]
  classifier: Float32Array; // [V][dim]
}

const HEADER_BYTES = 7 * 4;
/** Sanity bounds on header fields: a wrong file (text, a tokenizer) fails here, not in an allocation. */
const MAX_FIELD = 1 << 20;

function parseHeader(view: DataView, source: string): LlamaConfig {
  const names = ['dim', 'hiddenDim', 'layers', 'heads', 'kvHeads', 'vocabSize', 'seqLen'] as const;
  const raw = names.map((_, i) => view.getInt32(i * 4, true));
  const [dim, hiddenDim, layers, heads, kvHeads, vocabSigned, seqLen] = raw as [number, number, number, number, number, number, number];
  const vocabSize = Math.abs(vocabSigned);
  const fields = { dim, hiddenDim, layers, heads, kvHeads, vocabSize, seqLen };
  for (const [name, value] of Object.entries(fields)) {
    if (!(value > 0 && value <= MAX_FIELD)) {
      throw new ModelFormatError(
        `${source}: not a llama2.c checkpoint: header field ${name} is ${value}, expected an integer in [1, ${MAX_FIELD}] ` +
          `(header: ${names.map((n, i) => `${n}=${raw[i]}`).join(', ')})`,
        'HEADER',
      );
    }
  }
  if (dim % heads !== 0 || (dim / heads) % 2 !== 0) {
    throw new ModelFormatError(`${source}: header: dim ${dim} must be heads ${heads} x an even head dimension (RoPE rotates pairs)`, 'HEADER');
  }
  if (heads % kvHeads !== 0) {
    throw new ModelFormatError(`${source}: header: heads ${heads} must be a multiple of kvHeads ${kvHeads}`, 'HEADER');
  }
  return { dim, hiddenDim, layers, heads, kvHeads, vocabSize, seqLen, headDim: dim / heads, sharedClassifier: vocabSigned > 0 };
}

/** Float32 counts of each tensor region, in file order. */
function tensorPlan(c: LlamaConfig): { name: string; count: number }[] {
  const { dim, hiddenDim: F, layers: n, vocabSize: V, headDim: hd } = c;
  const qDim = c.heads * hd;
  const kvDim = c.kvHeads * hd;
  const plan = [
    { name: 'tokenEmbedding', count: V * dim },
    { name: 'rmsAtt', count: n * dim },
    { name: 'wq', count: n * qDim * dim },
    { name: 'wk', count: n * kvDim * dim },
    { name: 'wv', count: n * kvDim * dim },
    { name: 'wo', count: n * dim * qDim },
    { name: 'rmsFfn', count: n * dim },
    { name: 'w1', count: n * F * dim },
    { name: 'w2', count: n * dim * F },
    { name: 'w3', count: n * F * dim },
    { name: 'rmsFinal', count: dim },
    { name: 'ropeTables', count: c.seqLen * hd },
  ];
  if (!c.sharedClassifier) plan.push({ name: 'classifier', count: V * dim });
  return plan;
}

/**
 * Parses a checkpoint held in memory. Throws `ModelFormatError` when the header is
 * implausible, the data is shorter or longer than the header implies, or a weight is not finite.
 */
export function parseCheckpoint(bytes: Uint8Array, source = 'checkpoint'): LlamaModel {
  if (bytes.byteLength < HEADER_BYTES) {
    throw new ModelFormatError(`${source}: ${bytes.byteLength} bytes is shorter than the 28-byte header`, 'TRUNCATED');
  }
  const config = parseHeader(new DataView(bytes.buffer, bytes.byteOffset, HEADER_BYTES), source);
  const plan = tensorPlan(config);
  const floats = plan.reduce((s, p) => s + p.count, 0);
  const expected = HEADER_BYTES + floats * 4;
  if (bytes.byteLength < expected) {
    let offset = HEADER_BYTES;
    const cut = plan.find((p) => (offset += p.count * 4) > bytes.byteLength)!;
    throw new ModelFormatError(
      `${source}: truncated: the header (dim ${config.dim}, ${config.layers} layers, vocab ${config.vocabSize}, ` +
        `context ${config.seqLen}) implies ${expected} bytes, the file has ${bytes.byteLength} (ends inside ${cut.name})`,
      'TRUNCATED',
    );
  }
  if (bytes.byteLength > expected) {
    throw new ModelFormatError(
      `${source}: ${bytes.byteLength - expected} unexpected trailing bytes: the header implies ${expected} bytes, ` +
        `the file has ${bytes.byteLength} (a different model or a corrupted header?)`,
      'TRAILING',
    );
  }
  // Copy into an aligned buffer (a Node Buffer may start at any byte offset).
  const data = new Float32Array(floats);
  new Uint8Array(data.buffer).set(bytes.subarray(HEADER_BYTES, expected));
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i]!)) {
      throw new ModelFormatError(`${source}: weight ${i} is ${data[i]}; every weight must be finite`, 'NON_FINITE');
    }
  }
  const region: Record<string, Float32Array> = {};
  let at = 0;
  for (const p of plan) {
    region[p.name] = data.subarray(at, at + p.count);
    at += p.count;
  }
  const slice = (name: string, l: number): Float32Array => {
    const r = region[name]!;
    const per = r.length / config.layers;
    return r.subarray(l * per, (l + 1) * per);
  };
  const layers: LayerWeights[] = [];
  for (let l = 0; l < config.layers; l++) {
    layers.push({
      rmsAtt: slice('rmsAtt', l),
      wq: slice('wq', l),
      wk: slice('wk', l),
      wv: slice('wv', l),
      wo: slice('wo', l),
      rmsFfn: slice('rmsFfn', l),
      w1: slice('w1', l),
      w2: slice('w2', l),
      w3: slice('w3', l),
    });
  }
  return {
    config,
    tokenEmbedding: region.tokenEmbedding!,
    layers,
    rmsFinal: region.rmsFinal!,
    classifier: config.sharedClassifier ? region.tokenEmbedding! : region.classifier!,
  };
}

/** Reads and parses a checkpoint file (see `parseCheckpoint`). */
export function loadCheckpoint(path: string): LlamaModel {
  return parseCheckpoint(readBytes(path, 'checkpoint'), path);
}

/** Reads a whole file, turning a missing file into a `ModelFormatError` that names it. */
export function readBytes(path: string, what: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new ModelFormatError(`cannot read ${what} '${path}': ${e instanceof Error ? e.message : String(e)}`, 'READ');
  }
}
