/**
 * Peers: other attention runtimes timed beside ours in `tsa bench` on the
 * same shapes (each checks its output against the reference before timing).
 */
import type { AttentionInput, AttentionShape } from '../../core/interface.js';
import { ONNX_PEERS } from './onnx.js';

export interface Peer {
  /** e.g. 'onnxruntime-web (wasm)'. */
  readonly name: string;
  /** Dense causal attention, output [L][H*D]. */
  dense(input: AttentionInput): Promise<Float32Array>;
  dispose(): Promise<void>;
}

export interface PeerFactory {
  name: string;
  /** Backends this peer is compared with (e.g. CPU peers beside 'wasm'). */
  comparesWith: string[];
  /** Creates the peer for one shape, or throws saying why it cannot run here. */
  create(shape: AttentionShape, threads: number): Promise<Peer>;
}

/** Peers known to the bench; backends' issues add theirs here. */
export const PEERS: PeerFactory[] = [...ONNX_PEERS];
