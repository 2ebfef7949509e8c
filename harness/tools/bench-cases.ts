/**
 * One benchmark case: a backend, an input kind and a shape, ready to run
 * dense and token-sparse attention repeatedly on the same inputs.
 *   - CPU backends: Float32Array inputs from generateInput.
 *   - webgpu: the GPU-resident path (tokenSparseAttentionGpu) on inputs
 *     generated on the device from the same distribution, writing into one
 *     output buffer reused across calls; dense is the same call with tau 0.
 */
import { generateInput, type InputKind } from '../core/generators.js';
import type { AttentionInput, AttentionShape, Backend, StageTimings } from '../core/interface.js';
import { generateInputOnGpu, isWebGpuBackend, type WebGpuBackend } from '../../gpu/index.js';

export interface BenchCase {
  /** Host inputs, for peers that take them (null on the GPU-resident path). */
  readonly hostInput: AttentionInput | null;
  /** One dense call; its host output where the backend returns one. */
  dense(): Promise<Float32Array | null>;
  /** One token-sparse call: L' and the selection time (scores + pool + budget + select, ms; NaN where not measured). */
  tsa(): Promise<{ keptLength: number; selectionMs: number }>;
  dispose(): void;
}

const selection = (t: Pick<StageTimings, 'scores' | 'pool' | 'budget' | 'select'>): number => t.scores + t.pool + t.budget + t.select;

export async function openCase(backend: Backend, kind: InputKind, shape: AttentionShape, seed: number, coverage: number): Promise<BenchCase> {
  if (isWebGpuBackend(backend)) return gpuCase(backend, kind, shape, seed, coverage);
  const input = generateInput(kind, shape, seed);
  return {
    hostInput: input,
    dense: () => backend.dense(input),
    async tsa() {
      const r = await backend.tokenSparseAttention(input, { coverage });
      return { keptLength: r.keptLength, selectionMs: selection(r.timings) };
    },
    dispose() {},
  };
}

async function gpuCase(backend: WebGpuBackend, kind: InputKind, shape: AttentionShape, seed: number, coverage: number): Promise<BenchCase> {
  const input = await generateInputOnGpu(backend.device, kind, shape, seed);
  const output = backend.device.createBuffer({
    label: 'bench output',
    size: shape.seqLen * shape.heads * shape.headDim * 4,
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC,
  });
  const run = async (tau: number) => {
    const r = await backend.tokenSparseAttentionGpu({ ...input, output }, { coverage: tau });
    await r.done;
    return r;
  };
  return {
    hostInput: null,
    async dense() {
      await run(0);
      return null;
    },
    async tsa() {
      const r = await run(coverage);
      const { keptLength } = await r.info(); // also releases the call's readback buffers
      const s = await r.stageMs;
      return { keptLength, selectionMs: selection({ scores: s.scores ?? 0, pool: s.pool ?? 0, budget: s.budget ?? 0, select: s.select ?? 0 }) };
    },
    dispose() {
      for (const b of [input.q, input.k, input.v, output]) b.destroy();
    },
  };
}
