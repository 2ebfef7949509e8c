/**
 * One benchmark case: a backend, an input kind and a shape, ready to run
 * dense and token-sparse attention repeatedly on the same inputs.
 *   - CPU backends: Float32Array inputs from generateInput.
 *   - webgpu: the GPU-resident path (tokenSparseAttentionGpu) on inputs
 *     generated on the device from the same distribution, writing into one
 *     output buffer reused across calls; dense is the same call with tau 0.
 */
import { generateInput, type InputKind } from '../core/generators.js';
import type { AttentionInput, AttentionShape, Backend, StageTimings, TsaOptions, TsaResult } from '../core/interface.js';
import { mean } from '../core/stats.js';
import type { GpuAttentionInput, WebGpuBackend } from '../../gpu/backend.js';
import { isWebGpuBackend } from '../../gpu/create.js';
import { generateInputOnGpu } from '../../gpu/generate.js';

export interface BenchCase {
  /** Host inputs, for peers that take them (null on the GPU-resident path). */
  readonly hostInput: AttentionInput | null;
  /** One dense call; its host output where the backend returns one. */
  dense(): Promise<Float32Array | null>;
  /** One token-sparse call with `options` (TSA, XAttention or both): what it kept and spent on selection. */
  sparse(options: TsaOptions): Promise<SparseRun>;
  dispose(): void;
}

/**
 * L', the selection time (scores + pool + budget + select, ms; NaN where not measured) and, with
 * blockSparse, the mean block share and blockScores + blockSelect ms (the cost rule's probe
 * included), or where the cost rule skipped the block stages the probe's estimated share (NaN:
 * decided without probing) and its time.
 */
export interface SparseRun {
  keptLength: number;
  selectionMs: number;
  blockShare?: number;
  blockScoringMs?: number;
  blockSkipped?: { estimatedShare: number };
}

const selection = (t: Pick<StageTimings, 'scores' | 'pool' | 'budget' | 'select'>): number => t.scores + t.pool + t.budget + t.select;

function sparseRun(r: TsaResult): SparseRun {
  const bs = r.blockSparse;
  const t = r.timings;
  const skipped = r.blockDecision?.verdict === 'not-worth-it' ? { estimatedShare: r.blockDecision.estimatedShare ?? NaN } : null;
  if (skipped) return { keptLength: r.keptLength, selectionMs: selection(t), blockScoringMs: t.blockScores ?? 0, blockSkipped: skipped };
  if (!bs) return { keptLength: r.keptLength, selectionMs: selection(t) };
  const blockShare = mean(bs.selectedShare);
  return { keptLength: r.keptLength, selectionMs: selection(t), blockShare, blockScoringMs: (t.blockScores ?? 0) + (t.blockSelect ?? 0) };
}

/** A generator's inputs (made on the device for webgpu), or given host inputs (e.g. captured from a model). */
export type CaseSource = { kind: InputKind; seed: number } | AttentionInput;

export async function openCase(backend: Backend, source: CaseSource, shape: AttentionShape): Promise<BenchCase> {
  if (isWebGpuBackend(backend)) return gpuCase(backend, source, shape);
  const input = 'kind' in source ? generateInput(source.kind, shape, source.seed) : source;
  return {
    hostInput: input,
    dense: () => backend.dense(input),
    sparse: async (options) => sparseRun(await backend.tokenSparseAttention(input, options)),
    dispose() {},
  };
}

/** Host inputs as GPUBuffers on `device` (the layouts of AttentionInput). */
function uploadInput(device: GPUDevice, input: AttentionInput): GpuAttentionInput {
  const put = (label: string, data: Float32Array): GPUBuffer => {
    const b = device.createBuffer({ label, size: data.byteLength, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    device.queue.writeBuffer(b, 0, data);
    return b;
  };
  const { heads, kvHeads, headDim, seqLen } = input;
  return { heads, kvHeads, headDim, seqLen, q: put('bench q', input.q), k: put('bench k', input.k), v: put('bench v', input.v) };
}

async function gpuCase(backend: WebGpuBackend, source: CaseSource, shape: AttentionShape): Promise<BenchCase> {
  const input = 'kind' in source ? await generateInputOnGpu(backend.device, source.kind, shape, source.seed) : uploadInput(backend.device, source);
  const output = backend.device.createBuffer({
    label: 'bench output',
    size: shape.seqLen * shape.heads * shape.headDim * 4,
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC,
  });
  const run = async (options: TsaOptions) => {
    const r = await backend.tokenSparseAttentionGpu({ ...input, output }, options);
    await r.done;
    return r;
  };
  return {
    hostInput: null,
    async dense() {
      await run({ coverage: 0 });
      return null;
    },
    async sparse(options) {
      const r = await run(options);
      const { keptLength, blockSparse } = await r.info(); // also releases the call's readback buffers
      const s = await r.stageMs;
      const selectionMs = selection({ scores: s.scores ?? 0, pool: s.pool ?? 0, budget: s.budget ?? 0, select: s.select ?? 0 });
      if (!blockSparse) return { keptLength, selectionMs };
      const blockShare = mean(blockSparse.selectedShare);
      return { keptLength, selectionMs, blockShare, blockScoringMs: (s.blockScores ?? 0) + (s.blockSelect ?? 0) };
    },
    dispose() {
      for (const b of [input.q, input.k, input.v, output]) b.destroy();
    },
  };
}
