/**
 * The benchmark: for each backend, context length and input kind, dense vs
 * token-sparse attention (medians of interleaved rounds, dense then each method, after a warmup), plus
 * peers (other runtimes) on the same shapes; or, with `stage`, one stage of
 * the pipeline timed alone (bench-stages.ts). On webgpu it times the
 * GPU-resident path on inputs generated on the device (bench-cases.ts).
 */
import type { InputKind } from '../core/generators.js';
import { TsaInputError } from '../core/errors.js';
import type { AttentionInput, AttentionShape, Backend, TsaOptions } from '../core/interface.js';
import type { StageMethod } from '../core/stages.js';
import { openCase, type CaseSource, type SparseRun } from './bench-cases.js';
import { hasBlockStages } from '../core/block-sparse.js';
import type { PeerChoice, PeerRunner } from './bench-peers.js';
import { runStage } from './bench-stages.js';
import { causalFlops } from '../core/cost.js';
import { median } from '../core/stats.js';
import { measureRounds, type Measurement } from './measure.js';

/** What a record times: dense attention, TSA, XAttention alone (coverage 0) or TSA then XAttention. */
export type BenchMethod = 'dense' | 'tsa' | 'xattn' | 'tsa+xattn';
export const BENCH_METHODS: readonly BenchMethod[] = ['dense', 'tsa', 'xattn', 'tsa+xattn'];

/** The call options of a sparse method (XAttention at the authors' settings: block 128, stride 16, threshold 0.9). */
function methodOptions(method: Exclude<BenchMethod, 'dense'>, coverage: number): TsaOptions {
  const blockSparse = { method: 'xattention' } as const;
  if (method === 'tsa') return { coverage };
  return method === 'xattn' ? { coverage: 0, blockSparse } : { coverage, blockSparse };
}

export interface BenchRecord {
  backend: string;
  /** dense, a sparse method, or the stage timed alone (stage mode). */
  mode: BenchMethod | StageMethod;
  seqLen: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  inputs: BenchInputKind;
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
  /** Ideal speedup (L / L')^2 / (block share) for sparse records, 1 for dense. */
  idealSpeedup: number;
  /** Median of scores + pool + budget + select, ms (0 for dense; NaN where not measured). */
  selectionMs: number;
  /** XAttention methods: mean selected-block share over heads, and the median of blockScores + blockSelect, ms. */
  blockShare?: number;
  blockScoringMs?: number;
  /** XAttention methods where the cost rule skipped the block stages: the probe's estimated share (NaN: decided without probing). */
  blockSkipped?: { estimatedShare: number };
  /** Set when the record is a peer runtime timed beside `comparedWith`. */
  peer?: { comparedWith: string; maxAbsErr: number; checkedAgainst: string };
  /** Why a measurement could not be made (e.g. a peer failing at this length). */
  error?: string;
}

/** A generator's kind, or 'model': attention captured from a model (BenchConfig.captured). */
export type BenchInputKind = InputKind | 'model';

export interface BenchConfig {
  backends: Backend[];
  lengths: number[];
  heads: number;
  kvHeads: number;
  headDim: number;
  inputs: BenchInputKind[];
  /** The input of kind 'model' (its shape must match heads, kvHeads, headDim and the one length). */
  captured?: AttentionInput;
  coverage: number;
  threads: number;
  /** Peers to time beside the backends they compare with: none, every installed one, or these groups. */
  peers: PeerChoice;
  seed: number;
  /** Time this stage alone instead of dense vs token-sparse attention. */
  stage?: StageMethod;
  /** Sparse methods timed after dense (always timed: the speedup base); default tsa. */
  methods?: readonly BenchMethod[];
}

export type Progress = (msg: string) => void;

/** The time a ratio uses: device time where measured, else wall. */
export const timeOf = (m: Pick<Measurement, 'medianMs' | 'deviceMedianMs'>): number => m.deviceMedianMs ?? m.medianMs;

/**
 * Runs the sweep. `peers` times the peer runtimes (bench-peers.ts's nodePeers in Node; none in a
 * page, where the peers' runtimes do not load).
 */
export async function runBench(config: BenchConfig, progress: Progress = () => {}, peers: PeerRunner | null = null): Promise<BenchRecord[]> {
  const records: BenchRecord[] = [];
  const total = config.lengths.length * config.inputs.length * config.backends.length;
  let step = 0;
  const methods = (config.methods ?? ['tsa']).filter((m): m is Exclude<BenchMethod, 'dense'> => m !== 'dense');
  for (const backend of config.backends) {
    if (methods.some((m) => m !== 'tsa') && !hasBlockStages(backend)) {
      throw new TsaInputError(`the XAttention methods need the block-sparse stages, which the ${backend.name} backend does not have yet`, 'OPTION');
    }
    const ours: BenchRecord[] = [];
    for (const seqLen of config.lengths) {
      for (const kind of config.inputs) {
        const shape: AttentionShape = { heads: config.heads, kvHeads: config.kvHeads, headDim: config.headDim, seqLen };
        const tag = `[${++step}/${total}] ${backend.name} L=${seqLen} ${kind}`;
        const base = { backend: backend.name, ...shape, inputs: kind, threads: backend.threads ?? 1, coverage: config.coverage };
        const source: CaseSource = kind === 'model' ? config.captured! : { kind, seed: config.seed + seqLen };
        if (config.stage) {
          ours.push(await runStage(backend, config.stage, base, source, `${tag}:`, progress));
          continue;
        }
        progress(`${tag}: generating inputs H=${shape.heads} Hkv=${shape.kvHeads} D=${shape.headDim}`);
        const c = await openCase(backend, source, shape);
        try {
          progress(`${tag}: dense${methods.length ? ` and ${methods.join(', ')} in interleaved rounds` : ''}`);
          let denseOut: Float32Array | null = null;
          // Dense and every method alternate call by call, so each speedup compares calls made
          // in the same minutes (this host's speed drifts by up to 2x).
          const runs = methods.map((): SparseRun[] => []);
          const [dense, ...timed] = await measureRounds(
            [
              async () => {
                denseOut = await c.dense();
              },
              ...methods.map((method, i) => async () => {
                runs[i]!.push(await c.sparse(methodOptions(method, config.coverage)));
              }),
            ],
            backend,
          );
          const denseRec: BenchRecord = {
            ...base,
            mode: 'dense',
            ...dense!,
            gflops: causalFlops(shape, seqLen) / timeOf(dense!) / 1e6,
            keptFraction: 1,
            speedup: 1,
            idealSpeedup: 1,
            selectionMs: 0,
          };
          ours.push(denseRec);
          progress(`${tag}: dense ${timeOf(dense!).toFixed(1)} ms, ${denseRec.gflops.toFixed(1)} GFLOP/s`);
          for (const [i, method] of methods.entries()) {
            const m = timed[i]!;
            const { keptLength, blockShare, blockSkipped, blockScoringMs } = runs[i]![runs[i]!.length - 1]!;
            const ratio = seqLen / keptLength;
            const rec: BenchRecord = {
              ...base,
              mode: method,
              ...m,
              gflops: ((blockShare ?? 1) * causalFlops(shape, keptLength)) / timeOf(m) / 1e6,
              keptFraction: keptLength / seqLen,
              speedup: timeOf(dense!) / timeOf(m),
              idealSpeedup: (ratio * ratio) / (blockShare ?? 1),
              selectionMs: median(runs[i]!.map((r) => r.selectionMs)),
              ...(blockShare !== undefined ? { blockShare } : {}),
              ...(blockScoringMs !== undefined ? { blockScoringMs: median(runs[i]!.map((r) => r.blockScoringMs!)) } : {}),
              ...(blockSkipped ? { blockSkipped } : {}),
            };
            ours.push(rec);
            progress(
              `${tag}: ${method} ${timeOf(m).toFixed(1)} ms, kept ${(rec.keptFraction * 100).toFixed(1)}%` +
                `${blockShare !== undefined ? `, blocks ${(blockShare * 100).toFixed(1)}%` : ''}${blockSkipped ? ', block stages skipped (cost rule)' : ''}, speedup ${rec.speedup.toFixed(2)}x (ideal ${rec.idealSpeedup.toFixed(2)}x)`,
            );
          }
          if (peers && c.hostInput && denseOut) ours.push(...(await peers.host(backend, c.hostInput, denseOut, denseRec, config, `${tag}:`, progress)));
        } finally {
          c.dispose();
        }
      }
    }
    const selfTimed = config.stage || !peers ? [] : await peers.selfTimed(backend, ours, config, progress);
    // Each self-timed peer record after the last of our records of its length.
    const lastOfLength = new Map(ours.map((r) => [r.seqLen, r]));
    for (const r of ours) {
      records.push(r);
      if (lastOfLength.get(r.seqLen) === r) records.push(...selfTimed.filter((p) => p.seqLen === r.seqLen));
    }
  }
  return records;
}
