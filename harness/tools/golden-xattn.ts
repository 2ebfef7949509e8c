/**
 * Reader for XAttention golden directories in the format of ../shared/golden-xattn
 * (xattn_manifest.json + .bin files): each run names its golden case (inputs, TSA indices at its
 * tau) in the golden directory given by the manifest's `inputs` (relative to it).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { AttentionInput, ResolvedTsaOptions } from '../core/interface.js';
import { f32, GoldenFormatError, loadGoldenCase, readBin, type FileEntry } from './golden.js';

export const XATTN_MANIFEST = 'xattn_manifest.json';

interface ManifestRun {
  case: string;
  tau: number | null;
  stride: number;
  threshold: number;
  compact_len: number;
  blocks: number;
  files: { mask: FileEntry; blocksum: FileEntry; out: FileEntry };
}

interface Manifest {
  inputs: string;
  block_size: number;
  runs: Record<string, ManifestRun>;
}

export interface XattnRun {
  name: string;
  case: string;
  input: AttentionInput;
  /** The call's options: TSA's of the case at tau (coverage 0 for an "alone" run) with blockSparse, cost rule off (the spec's pipeline). */
  options: ResolvedTsaOptions;
  /** TSA's kept rows [H][n] at tau, or null (XAttention on the full sequence). */
  indices: Int32Array | null;
  /** Rows XAttention runs on: L' when composed, else L. */
  n: number;
  blocks: number;
  masses: Float32Array;
  mask: Uint8Array;
  output: Float32Array;
}

/** Whether `dir` is an XAttention golden directory. */
export function isXattnDir(dir: string): boolean {
  return existsSync(join(dir, XATTN_MANIFEST));
}

function readManifest(dir: string): Manifest {
  const path = join(dir, XATTN_MANIFEST);
  let m: Manifest;
  try {
    m = JSON.parse(readFileSync(path, 'utf8')) as Manifest;
  } catch (e) {
    throw new GoldenFormatError(`cannot read ${path}: ${(e as Error).message}`);
  }
  if (!m.runs || typeof m.inputs !== 'string' || !Number.isInteger(m.block_size)) {
    throw new GoldenFormatError(`${path} needs "inputs" (the golden directory), "block_size" and "runs"`);
  }
  return m;
}

export function xattnRunNames(dir: string): string[] {
  return Object.keys(readManifest(dir).runs);
}

/** Loads one run with its case's inputs and TSA indices. */
export function loadXattnRun(dir: string, name: string): XattnRun {
  const m = readManifest(dir);
  const r = m.runs[name];
  if (!r) throw new GoldenFormatError(`no run '${name}' in ${join(dir, XATTN_MANIFEST)}`);
  const g = loadGoldenCase(resolve(dir, m.inputs), r.case);
  const blockSparse = { method: 'xattention' as const, threshold: r.threshold, stride: r.stride, blockSize: m.block_size };
  let options: ResolvedTsaOptions = { ...g.runs[0]!.options, coverage: 0, blockSparse, costRule: false };
  let indices: Int32Array | null = null;
  if (r.tau !== null) {
    const tsa = g.runs.find((x) => x.tau === r.tau);
    if (!tsa?.indices) throw new GoldenFormatError(`run ${name}: case ${r.case} has no sparse TSA run at tau ${r.tau}`);
    options = { ...tsa.options, blockSparse, costRule: false };
    indices = tsa.indices;
    if (tsa.keptLength !== r.compact_len) throw new GoldenFormatError(`run ${name}: compact_len ${r.compact_len} != the case's L' ${tsa.keptLength}`);
  }
  if (r.files.mask.dtype !== '<u1') throw new GoldenFormatError(`${r.files.mask.file}: expected dtype <u1, got ${r.files.mask.dtype}`);
  return {
    name,
    case: r.case,
    input: g.input,
    options,
    indices,
    n: r.compact_len,
    blocks: r.blocks,
    masses: f32(dir, r.files.blocksum)!,
    mask: new Uint8Array(readBin(dir, r.files.mask, 1)),
    output: f32(dir, r.files.out)!,
  };
}
