/** The peer contract of `tsa bench` (harness/tools/peers/index.ts lists the peers). */
import type { AttentionInput, AttentionShape } from '../../core/interface.js';

/** A peer's runtime is not installed or finds no device here (the reason is the message). */
export class PeerUnavailableError extends Error {
  override readonly name = 'PeerUnavailableError';
}

/** The names `--peers` takes: each names a family of peers. */
export const PEER_GROUPS = ['onnx', 'torch'] as const;
export type PeerGroup = (typeof PEER_GROUPS)[number];

export interface Peer {
  /** e.g. 'onnxruntime-web (wasm)'. */
  readonly name: string;
  /** Dense causal attention, output [L][H*D]. */
  dense(input: AttentionInput): Promise<Float32Array>;
  dispose(): Promise<void>;
}

export interface PeerFactory {
  name: string;
  group: PeerGroup;
  /** Backends this peer is compared with (e.g. CPU peers beside 'wasm'). */
  comparesWith: string[];
  /** Creates the peer for one shape, or throws saying why it cannot run here (PeerUnavailableError: not installed). */
  create(shape: AttentionShape, threads: number): Promise<Peer>;
}

/** One variant of a self-timed peer at one length: device ms of each timed call, or why it failed. */
export interface PeerTiming {
  /** The variant's display name, e.g. 'torch SDPA bf16 (FlashAttention)'. */
  name: string;
  seqLen: number;
  samplesMs: number[];
  /** Max abs error of this variant against the reference on the check shape. */
  checkErr: number;
  /** The check shape, e.g. 'L=64 vs reference'. */
  checkedAgainst: string;
  error?: string;
}

export interface SelfTimedPeerFactory {
  name: string;
  group: PeerGroup;
  comparesWith: string[];
  /** Times every variant at every length (one process for the sweep); PeerUnavailableError when it cannot run here. */
  time(shape: Omit<AttentionShape, 'seqLen'>, lengths: number[], progress: (msg: string) => void): Promise<PeerTiming[]>;
}

