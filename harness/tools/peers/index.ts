/**
 * Peers: other attention runtimes timed beside ours in `tsa bench` on the
 * same shapes. Two kinds:
 *   - host peers (ONNX Runtime) take our Float32Array inputs; the bench checks
 *     their output against the compared backend's dense output, then times them;
 *   - self-timed peers (PyTorch on a CUDA GPU) make their own inputs of the
 *     shape on their own device and time themselves; they check their output
 *     against the reference backend on a small shape first.
 */
import { ONNX_PEERS } from './onnx.js';
import type { PeerFactory, SelfTimedPeerFactory } from './peer.js';
import { TORCH_PEER } from './torch.js';

export * from './peer.js';

/** Peers known to the bench; backends' issues add theirs here. */
export const PEERS: PeerFactory[] = [...ONNX_PEERS];
export const SELF_TIMED_PEERS: SelfTimedPeerFactory[] = [TORCH_PEER];
