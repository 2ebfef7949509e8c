/**
 * Reader for golden-vector directories in the format of ../shared/golden
 * (manifest.json + little-endian .bin files). Any directory in that format
 * works: cases are described entirely by their manifest entries.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TsaError } from '../core/errors.js';
import type { AttentionInput, ResolvedTsaOptions } from '../core/interface.js';

export interface FileEntry {
  file: string;
  shape: number[];
  dtype: string;
  sha256?: string;
}

interface ManifestRun {
  tau: number;
  dense_fallback: boolean;
  num_sparse_tokens?: number;
  keep_prefix_K?: number;
  L_prime: number;
  files: { indices?: FileEntry; out_sparse: FileEntry };
}

interface ManifestCase {
  H: number;
  HKV: number;
  D: number;
  L: number;
  W: number;
  pool_kernel: number;
  min_tokens: number;
  inputs: { q: FileEntry; k: FileEntry; v: FileEntry };
  files: Partial<Record<'scores_raw' | 'pooled' | 'pooled_norm' | 'global_norm' | 'global_sorted_cumsum' | 'dense_lastW', FileEntry>>;
  runs: Record<string, ManifestRun>;
}

export interface GoldenRun {
  tau: number;
  options: ResolvedTsaOptions;
  /** null when the authors' code ran dense. */
  keep: number | null;
  pruned: number | null;
  keptLength: number;
  indices: Int32Array | null;
  output: Float32Array;
}

export interface GoldenCase {
  name: string;
  input: AttentionInput;
  window: number;
  scoresRaw?: Float32Array;
  pooled?: Float32Array;
  denseLastW?: Float32Array;
  runs: GoldenRun[];
}

export class GoldenFormatError extends TsaError {
  constructor(message: string) {
    super(message, 'TSA_GOLDEN_FORMAT');
  }
}

/** The bytes of a manifest file entry, its size (count x `bytesPer`) and sha256 checked. */
export function readBin(dir: string, entry: FileEntry, bytesPer = 4): ArrayBuffer {
  const path = join(dir, entry.file);
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (e) {
    throw new GoldenFormatError(`cannot read ${path}: ${(e as Error).message}`);
  }
  const count = entry.shape.reduce((a, b) => a * b, 1);
  if (buf.length !== count * bytesPer) {
    throw new GoldenFormatError(`${path} has ${buf.length} bytes, expected ${count * bytesPer} for shape [${entry.shape}] of ${bytesPer}-byte values`);
  }
  if (entry.sha256) {
    const sum = createHash('sha256').update(buf).digest('hex');
    if (sum !== entry.sha256) throw new GoldenFormatError(`${path}: sha256 ${sum} does not match the manifest's ${entry.sha256}`);
  }
  // Copy into an aligned buffer (Buffer pool slices may be unaligned).
  return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length) as ArrayBuffer;
}

export function f32(dir: string, entry: FileEntry | undefined): Float32Array | undefined {
  if (!entry) return undefined;
  if (entry.dtype !== '<f4') throw new GoldenFormatError(`${entry.file}: expected dtype <f4, got ${entry.dtype}`);
  return new Float32Array(readBin(dir, entry));
}

function i32(dir: string, entry: FileEntry): Int32Array {
  if (entry.dtype !== '<i4') throw new GoldenFormatError(`${entry.file}: expected dtype <i4, got ${entry.dtype}`);
  return new Int32Array(readBin(dir, entry));
}

/** Lists the case names of a golden directory. */
export function goldenCaseNames(dir: string): string[] {
  return Object.keys(readManifest(dir).cases);
}

function readManifest(dir: string): { cases: Record<string, ManifestCase> } {
  const path = join(dir, 'manifest.json');
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new GoldenFormatError(`cannot read ${path}: ${(e as Error).message}`);
  }
  const m = JSON.parse(text) as { cases?: Record<string, ManifestCase> };
  if (!m.cases || typeof m.cases !== 'object') throw new GoldenFormatError(`${path} has no "cases" object`);
  return m as { cases: Record<string, ManifestCase> };
}

/** Loads one case (inputs, per-stage expectations, every tau run). */
export function loadGoldenCase(dir: string, name: string): GoldenCase {
  const c = readManifest(dir).cases[name];
  if (!c) throw new GoldenFormatError(`no case '${name}' in ${dir}/manifest.json`);
  const input: AttentionInput = {
    heads: c.H,
    kvHeads: c.HKV,
    headDim: c.D,
    seqLen: c.L,
    q: f32(dir, c.inputs.q)!,
    k: f32(dir, c.inputs.k)!,
    v: f32(dir, c.inputs.v)!,
  };
  const runs = Object.values(c.runs ?? {}).map((r): GoldenRun => {
    const options = { coverage: r.tau, window: c.W, poolKernel: c.pool_kernel, minTokens: c.min_tokens };
    const sparse = !r.dense_fallback;
    return {
      tau: r.tau,
      options,
      keep: sparse ? r.keep_prefix_K! : null,
      pruned: sparse ? r.num_sparse_tokens! : null,
      keptLength: r.L_prime,
      indices: sparse && r.files.indices ? i32(dir, r.files.indices) : null,
      output: f32(dir, r.files.out_sparse)!,
    };
  });
  return {
    name,
    input,
    window: c.W,
    scoresRaw: f32(dir, c.files.scores_raw),
    pooled: f32(dir, c.files.pooled),
    denseLastW: f32(dir, c.files.dense_lastW),
    runs,
  };
}
