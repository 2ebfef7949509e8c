/**
 * The benchmark: for each backend, context length and input kind, dense vs
 * token-sparse attention timed with tinybench (median of several calls after
 * a warmup), plus peers (other runtimes) on the same shapes.
 */
import { Bench } from 'tinybench';
import { maxAbsErr } from '../core/compare.js';
import { generateInput, type InputKind } from '../core/generators.js';
import type { AttentionInput, AttentionShape, Backend, TsaOptions } from '../core/interface.js';
import { PEERS, type Peer } from './peers/index.js';

/** What a record times: dense attention, TSA, XAttention alone (coverage 0) or TSA then XAttention. */
export type BenchMethod = 'dense' | 'tsa' | 'xattn' | 'tsa+xattn';
export const BENCH_METHODS: readonly BenchMethod[] = ['dense', 'tsa', 'xattn', 'tsa+xattn'];

/** The call options of a non-dense method (XAttention at the authors' settings: block 128, stride 16, threshold 0.9). */
function methodOptions(method: Exclude<BenchMethod, 'dense'>, coverage: number): TsaOptions {
  const blockSparse = { method: 'xattention' } as const;
  if (method === 'tsa') return { coverage };
  return method === 'xattn' ? { coverage: 0, blockSparse } : { coverage, blockSparse };
}

export interface BenchRecord {
  backend: string;
  mode: BenchMethod;
  seqLen: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  inputs: InputKind;
  threads: number;
  coverage: number;
  /** Median wall time of one call, ms (uploads and readback included on GPU). */
  medianMs: number;
  /** Median accelerator-side time, where the backend measures it. */
  deviceMedianMs: number | null;
  samples: number;
  /** Attention FLOPs actually executed (causal half: 4 H D n(n+1)/2, n = L or L') / median time. */
  gflops: number;
  /** L' / L (1 for dense). */
  keptFraction: number;
  /** This backend's dense median / this record's median (1 for dense; peers: dense of the compared backend / peer). */
  speedup: number;
  /** Ideal speedup (L / L')^2 / (block share) for sparse records, 1 for dense. */
  idealSpeedup: number;
  /** Median of scores + pool + budget + select, ms (0 for dense). */
  selectionMs: number;
  /** XAttention modes: mean selected-block share over heads, and the median of blockScores + blockSelect, ms. */
  blockShare?: number;
  blockScoringMs?: number;
  /** Set when the record is a peer runtime timed beside `comparedWith`. */
  peer?: { comparedWith: string; maxAbsErrVsBackend: number };
  /** Why a measurement could not be made (e.g. a peer failing at this length). */
  error?: string;
}

export interface BenchConfig {
  backends: Backend[];
  lengths: number[];
  heads: number;
  kvHeads: number;
  headDim: number;
  inputs: InputKind[];
  coverage: number;
  threads: number;
  /** Time peers beside the backends they compare with. */
  peers: boolean;
  /** Methods timed besides dense (always timed: the speedup base); default tsa. */
  methods?: readonly BenchMethod[];
  seed: number;
}

export type Progress = (msg: string) => void;

/** Causal attention FLOPs: QK^T and PV over the lower triangle, n rows. */
export function causalFlops(heads: number, headDim: number, n: number): number {
  return 4 * heads * headDim * ((n * (n + 1)) / 2);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * Times `fn`: one warmup call, then enough calls for a stable median within
 * a small budget (long calls get 3 samples, short ones run for ~1.5 s).
 */
async function measure(fn: () => Promise<void>): Promise<{ medianMs: number; samples: number }> {
  const t0 = performance.now();
  await fn();
  const warm = performance.now() - t0;
  const iterations = warm > 4000 ? 2 : warm > 300 ? 3 : 5;
  const bench = new Bench({ iterations, time: warm > 300 ? 0 : 1500, warmup: false, throws: true });
  bench.add('call', fn);
  await bench.run();
  const result = bench.tasks[0]!.result;
  if (result.state !== 'completed') throw new Error(`benchmark did not complete: ${result.state}`);
  return { medianMs: result.latency.p50, samples: result.latency.samplesCount };
}

/** `measure` of a backend call, plus the median accelerator time where the backend reports one. */
async function measureBackend(
  backend: Backend,
  fn: () => Promise<void>,
): Promise<{ medianMs: number; samples: number; deviceMedianMs: number | null }> {
  const device: number[] = [];
  const m = await measure(async () => {
    await fn();
    const dev = backend.lastDeviceTimeMs?.();
    if (dev != null) device.push(dev);
  });
  return { ...m, deviceMedianMs: device.length ? median(device) : null };
}

export async function runBench(config: BenchConfig, progress: Progress = () => {}): Promise<BenchRecord[]> {
  const records: BenchRecord[] = [];
  const total = config.lengths.length * config.inputs.length * config.backends.length;
  let step = 0;
  for (const seqLen of config.lengths) {
    for (const kind of config.inputs) {
      const shape: AttentionShape = { heads: config.heads, kvHeads: config.kvHeads, headDim: config.headDim, seqLen };
      progress(`generating ${kind} inputs L=${seqLen} H=${shape.heads} Hkv=${shape.kvHeads} D=${shape.headDim}`);
      const input = generateInput(kind, shape, config.seed + seqLen);
      for (const backend of config.backends) {
        step++;
        const tag = `[${step}/${total}] ${backend.name} L=${seqLen} ${kind}`;
        const base = {
          backend: backend.name,
          ...shape,
          inputs: kind,
          threads: backend.threads ?? 1,
          coverage: config.coverage,
        };
        progress(`${tag}: dense`);
        let denseOut: Float32Array | null = null;
        const dense = await measureBackend(backend, async () => {
          denseOut = await backend.dense(input);
        });
        const denseRec: BenchRecord = {
          ...base,
          mode: 'dense',
          ...dense,
          gflops: causalFlops(shape.heads, shape.headDim, seqLen) / dense.medianMs / 1e6,
          keptFraction: 1,
          speedup: 1,
          idealSpeedup: 1,
          selectionMs: 0,
        };
        records.push(denseRec);
        progress(`${tag}: dense ${dense.medianMs.toFixed(1)} ms, ${denseRec.gflops.toFixed(1)} GFLOP/s`);
        for (const method of (config.methods ?? ['tsa']).filter((m): m is Exclude<BenchMethod, 'dense'> => m !== 'dense')) {
          const selection: number[] = [];
          const scoring: number[] = [];
          let keptLength = seqLen;
          let share: number | undefined;
          const m = await measureBackend(backend, async () => {
            const r = await backend.tokenSparseAttention(input, methodOptions(method, config.coverage));
            selection.push(r.timings.scores + r.timings.pool + r.timings.budget + r.timings.select);
            scoring.push((r.timings.blockScores ?? 0) + (r.timings.blockSelect ?? 0));
            keptLength = r.keptLength;
            share = r.blockSparse && r.blockSparse.selectedShare.reduce((a, b) => a + b, 0) / r.blockSparse.selectedShare.length;
          });
          const ratio = seqLen / keptLength;
          const rec: BenchRecord = {
            ...base,
            mode: method,
            ...m,
            gflops: (share ?? 1) * causalFlops(shape.heads, shape.headDim, keptLength) / m.medianMs / 1e6,
            keptFraction: keptLength / seqLen,
            speedup: dense.medianMs / m.medianMs,
            idealSpeedup: (ratio * ratio) / (share ?? 1),
            selectionMs: median(selection),
            ...(share !== undefined ? { blockShare: share, blockScoringMs: median(scoring) } : {}),
          };
          records.push(rec);
          progress(
            `${tag}: ${method} ${m.medianMs.toFixed(1)} ms, kept ${(rec.keptFraction * 100).toFixed(1)}%` +
              `${share !== undefined ? `, blocks ${(share * 100).toFixed(1)}%` : ''}, speedup ${rec.speedup.toFixed(2)}x (ideal ${rec.idealSpeedup.toFixed(2)}x)`,
          );
        }
        if (config.peers) {
          for (const rec of await runPeers(backend, input, denseOut!, denseRec, config, `${tag}:`, progress)) records.push(rec);
        }
      }
    }
  }
  return records;
}

async function runPeers(
  backend: Backend,
  input: AttentionInput,
  reference: Float32Array,
  denseRec: BenchRecord,
  config: BenchConfig,
  tag: string,
  progress: Progress,
): Promise<BenchRecord[]> {
  const out: BenchRecord[] = [];
  for (const factory of PEERS.filter((p) => p.comparesWith.includes(backend.name))) {
    const rec: BenchRecord = {
      ...denseRec,
      backend: factory.name,
      threads: config.threads,
      medianMs: NaN,
      deviceMedianMs: null,
      samples: 0,
      gflops: NaN,
      speedup: NaN,
      peer: { comparedWith: backend.name, maxAbsErrVsBackend: NaN },
    };
    progress(`${tag} peer ${factory.name}`);
    let peer: Peer | null = null;
    try {
      peer = await factory.create(input, config.threads);
      const check = await peer.dense(input);
      const err = maxAbsErr(check, reference);
      rec.peer!.maxAbsErrVsBackend = err;
      // Both compute the same f32 softmax attention; 1e-3 absolute on O(1) outputs catches wrong graphs, not rounding.
      if (!(err <= 1e-3)) throw new Error(`output differs from ${backend.name} dense by ${err} (> 1e-3): not timed`);
      const m = await measure(async () => {
        await peer!.dense(input);
      });
      rec.medianMs = m.medianMs;
      rec.samples = m.samples;
      rec.gflops = causalFlops(input.heads, input.headDim, input.seqLen) / m.medianMs / 1e6;
      rec.speedup = denseRec.medianMs / m.medianMs;
      progress(`${tag} peer ${factory.name} ${m.medianMs.toFixed(1)} ms: ${(m.medianMs / denseRec.medianMs).toFixed(2)}x the time of ${backend.name} dense`);
    } catch (e) {
      rec.error = e instanceof Error ? e.message : String(e);
      progress(`${tag} peer ${factory.name} failed: ${rec.error}`);
    } finally {
      await peer?.dispose();
    }
    out.push(rec);
  }
  return out;
}
