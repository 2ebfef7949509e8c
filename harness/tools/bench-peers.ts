/**
 * Peers in the benchmark: host peers (ONNX Runtime) run on each case's
 * inputs after our dense call, checked against its output before timing;
 * self-timed peers (PyTorch) run once per backend over the whole sweep.
 * A peer that is not installed is skipped when peers were not named
 * (`--peers` absent), and reported as a failed record when named.
 */
import { maxAbsErr } from '../core/compare.js';
import type { AttentionInput, Backend } from '../core/interface.js';
import type { BenchConfig, BenchRecord, Progress } from './bench.js';
import { timeOf } from './bench.js';
import { causalFlops } from '../core/cost.js';
import { median } from '../core/stats.js';
import { measure } from './measure.js';
import { PEERS, PeerUnavailableError, SELF_TIMED_PEERS, type Peer, type PeerGroup } from './peers/index.js';

/** No peers, every installed peer, or the named groups (an unavailable named peer is a failed record). */
export type PeerChoice = false | 'installed' | readonly PeerGroup[];

const chosen = (choice: PeerChoice, group: PeerGroup): boolean => choice === 'installed' || (choice !== false && choice.includes(group));

const messageOf = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** A peer's record beside our dense record, before its measurement. */
function peerRecord(denseRec: BenchRecord, name: string, comparedWith: string, threads: number): BenchRecord {
  return {
    ...denseRec,
    backend: name,
    threads,
    medianMs: NaN,
    deviceMedianMs: null,
    samples: 0,
    gflops: NaN,
    speedup: NaN,
    peer: { comparedWith, maxAbsErr: NaN, checkedAgainst: `${comparedWith} dense at this shape` },
  };
}

export async function runHostPeers(
  backend: Backend,
  input: AttentionInput,
  reference: Float32Array,
  denseRec: BenchRecord,
  config: BenchConfig,
  tag: string,
  progress: Progress,
): Promise<BenchRecord[]> {
  const out: BenchRecord[] = [];
  for (const factory of PEERS.filter((p) => p.comparesWith.includes(backend.name) && chosen(config.peers, p.group))) {
    const rec = peerRecord(denseRec, factory.name, backend.name, config.threads);
    progress(`${tag} peer ${factory.name}`);
    let peer: Peer | null = null;
    try {
      peer = await factory.create(input, config.threads);
      const check = await peer.dense(input);
      const err = maxAbsErr(check, reference);
      rec.peer!.maxAbsErr = err;
      // Both compute the same f32 softmax attention; 1e-3 absolute on O(1) outputs catches wrong graphs, not rounding.
      if (!(err <= 1e-3)) throw new Error(`output differs from ${backend.name} dense by ${err} (> 1e-3): not timed`);
      const m = await measure(async () => {
        await peer!.dense(input);
      });
      Object.assign(rec, m, { gflops: causalFlops(input, input.seqLen) / m.medianMs / 1e6, speedup: timeOf(denseRec) / m.medianMs });
      progress(`${tag} peer ${factory.name} ${m.medianMs.toFixed(1)} ms: ${(m.medianMs / timeOf(denseRec)).toFixed(2)}x the time of ${backend.name} dense`);
    } catch (e) {
      if (e instanceof PeerUnavailableError && config.peers === 'installed') {
        progress(`${tag} peer ${factory.name} skipped: ${e.message}`);
        continue;
      }
      rec.error = e instanceof PeerUnavailableError ? `unavailable: ${e.message}` : messageOf(e);
      progress(`${tag} peer ${factory.name} failed: ${rec.error}`);
    } finally {
      await peer?.dispose();
    }
    out.push(rec);
  }
  return out;
}

/** Self-timed peers of `backend` over the lengths of `ours` (its records), compared with its dense records. */
export async function runSelfTimedPeers(backend: Backend, ours: BenchRecord[], config: BenchConfig, progress: Progress): Promise<BenchRecord[]> {
  const out: BenchRecord[] = [];
  const dense = ours.filter((r) => r.mode === 'dense');
  // The peers time standard-normal inputs: compare with our gaussian dense run where there is one (dense speed does not depend on values).
  const denseAt = (L: number) => dense.find((r) => r.seqLen === L && r.inputs === 'gaussian') ?? dense.find((r) => r.seqLen === L)!;
  const lengths = [...new Set(dense.map((r) => r.seqLen))];
  for (const factory of SELF_TIMED_PEERS.filter((p) => p.comparesWith.includes(backend.name) && chosen(config.peers, p.group))) {
    if (!lengths.length) break;
    progress(`peer ${factory.name}: lengths ${lengths.join(', ')}`);
    try {
      const timings = await factory.time({ heads: config.heads, kvHeads: config.kvHeads, headDim: config.headDim }, lengths, (m) => progress(`  ${m}`));
      for (const t of timings) {
        const ref = denseAt(t.seqLen);
        const rec: BenchRecord = { ...peerRecord(ref, t.name, backend.name, 1), inputs: 'gaussian' };
        rec.peer = { comparedWith: backend.name, maxAbsErr: t.checkErr, checkedAgainst: t.checkedAgainst };
        if (t.error !== undefined) rec.error = t.error;
        else {
          const ms = median(t.samplesMs);
          Object.assign(rec, { medianMs: ms, deviceMedianMs: ms, samples: t.samplesMs.length, gflops: causalFlops(rec, rec.seqLen) / ms / 1e6, speedup: timeOf(ref) / ms });
        }
        out.push(rec);
      }
    } catch (e) {
      if (e instanceof PeerUnavailableError && config.peers === 'installed') {
        progress(`peer ${factory.name} skipped: ${e.message}`);
        continue;
      }
      const error = e instanceof PeerUnavailableError ? `unavailable: ${e.message}` : messageOf(e);
      progress(`peer ${factory.name} failed: ${error}`);
      for (const L of lengths) out.push({ ...peerRecord(denseAt(L), factory.name, backend.name, 1), error });
    }
  }
  return out;
}

/** How runBench times peers: beside each dense run on host inputs, and self-timed ones per backend. */
export interface PeerRunner {
  host: typeof runHostPeers;
  selfTimed: typeof runSelfTimedPeers;
}

/** The peers of Node (ONNX Runtime, PyTorch): what `tsa bench` passes to runBench. */
export const NODE_PEERS: PeerRunner = { host: runHostPeers, selfTimed: runSelfTimedPeers };
