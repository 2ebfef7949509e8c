/**
 * The benchmark: for each backend, context length and input kind, dense vs
 * token-sparse attention (median of several calls after a warmup), plus
 * peers (other runtimes) on the same shapes; or, with `stage`, one stage of
 * the pipeline timed alone (bench-stages.ts). On webgpu it times the
 * GPU-resident path on inputs generated on the device (bench-cases.ts).
 */
import type { InputKind } from '../core/generators.js';
import type { AttentionShape, Backend } from '../core/interface.js';
import type { StageMethod } from '../core/stages.js';
import { openCase } from './bench-cases.js';
import { runHostPeers, runSelfTimedPeers, type PeerChoice } from './bench-peers.js';
import { runStage } from './bench-stages.js';
import { causalFlops } from '../core/cost.js';
import { median } from '../core/stats.js';
import { measure, type Measurement } from './measure.js';

export interface BenchRecord {
  backend: string;
  /** dense, tsa, or the stage timed alone (stage mode). */
  mode: 'dense' | 'tsa' | StageMethod;
  seqLen: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  inputs: InputKind;
  threads: number;
  coverage: number;
  /** Median wall time of one call, ms (on webgpu: GPU-resident inputs, submit to completion). */
  medianMs: number;
  /** Median accelerator-side time (timestamp queries, else the host clock around the GPU work), where measured. */
  deviceMedianMs: number | null;
  samples: number;
  /** Attention FLOPs executed (causal half: 4 H D n(n+1)/2, n = L or L') / median time (device time where measured); NaN for other stages. */
  gflops: number;
  /** L' / L (1 for dense). */
  keptFraction: number;
  /** This backend's dense time / this record's (device times where both have them; 1 for dense; peers: dense of the compared backend / peer). */
  speedup: number;
  /** Ideal speedup (L / L')^2 for tsa records, 1 for dense. */
  idealSpeedup: number;
  /** Median of scores + pool + budget + select, ms (0 for dense; NaN where not measured). */
  selectionMs: number;
  /** Set when the record is a peer runtime timed beside `comparedWith`. */
  peer?: { comparedWith: string; maxAbsErr: number; checkedAgainst: string };
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
  /** Peers to time beside the backends they compare with: none, every installed one, or these groups. */
  peers: PeerChoice;
  seed: number;
  /** Time this stage alone instead of dense vs token-sparse attention. */
  stage?: StageMethod;
}

export type Progress = (msg: string) => void;

/** The time a ratio uses: device time where measured, else wall. */
export const timeOf = (m: Pick<Measurement, 'medianMs' | 'deviceMedianMs'>): number => m.deviceMedianMs ?? m.medianMs;

export async function runBench(config: BenchConfig, progress: Progress = () => {}): Promise<BenchRecord[]> {
  const records: BenchRecord[] = [];
  const total = config.lengths.length * config.inputs.length * config.backends.length;
  let step = 0;
  for (const backend of config.backends) {
    const ours: BenchRecord[] = [];
    for (const seqLen of config.lengths) {
      for (const kind of config.inputs) {
        const shape: AttentionShape = { heads: config.heads, kvHeads: config.kvHeads, headDim: config.headDim, seqLen };
        const tag = `[${++step}/${total}] ${backend.name} L=${seqLen} ${kind}`;
        const base = { backend: backend.name, ...shape, inputs: kind, threads: backend.threads ?? 1, coverage: config.coverage };
        if (config.stage) {
          ours.push(await runStage(backend, config.stage, base, config.seed + seqLen, `${tag}:`, progress));
          continue;
        }
        progress(`${tag}: generating inputs H=${shape.heads} Hkv=${shape.kvHeads} D=${shape.headDim}`);
        const c = await openCase(backend, kind, shape, config.seed + seqLen, config.coverage);
        try {
          progress(`${tag}: dense`);
          let denseOut: Float32Array | null = null;
          const dense = await measure(async () => {
            denseOut = await c.dense();
          }, backend);
          const denseRec: BenchRecord = {
            ...base,
            mode: 'dense',
            ...dense,
            gflops: causalFlops(shape, seqLen) / timeOf(dense) / 1e6,
            keptFraction: 1,
            speedup: 1,
            idealSpeedup: 1,
            selectionMs: 0,
          };
          ours.push(denseRec);
          progress(`${tag}: dense ${timeOf(dense).toFixed(1)} ms, ${denseRec.gflops.toFixed(1)} GFLOP/s; tsa`);

          const selection: number[] = [];
          let keptLength = seqLen;
          const tsa = await measure(async () => {
            const r = await c.tsa();
            selection.push(r.selectionMs);
            keptLength = r.keptLength;
          }, backend);
          const ratio = seqLen / keptLength;
          const tsaRec: BenchRecord = {
            ...base,
            mode: 'tsa',
            ...tsa,
            gflops: causalFlops(shape, keptLength) / timeOf(tsa) / 1e6,
            keptFraction: keptLength / seqLen,
            speedup: timeOf(dense) / timeOf(tsa),
            idealSpeedup: ratio * ratio,
            selectionMs: median(selection),
          };
          ours.push(tsaRec);
          progress(
            `${tag}: tsa ${timeOf(tsa).toFixed(1)} ms, kept ${(tsaRec.keptFraction * 100).toFixed(1)}%, ` +
              `speedup ${tsaRec.speedup.toFixed(2)}x (ideal ${tsaRec.idealSpeedup.toFixed(2)}x)`,
          );
          if (c.hostInput && denseOut) ours.push(...(await runHostPeers(backend, c.hostInput, denseOut, denseRec, config, `${tag}:`, progress)));
        } finally {
          c.dispose();
        }
      }
    }
    const peers = config.stage ? [] : await runSelfTimedPeers(backend, ours, config, progress);
    // Each self-timed peer record after the last of our records of its length.
    const lastOfLength = new Map(ours.map((r) => [r.seqLen, r]));
    for (const r of ours) {
      records.push(r);
      if (lastOfLength.get(r.seqLen) === r) records.push(...peers.filter((p) => p.seqLen === r.seqLen));
    }
  }
  return records;
}
