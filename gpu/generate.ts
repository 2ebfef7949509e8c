/// <reference types="@webgpu/types" preserve="true" />
/**
 * Seeded attention inputs generated on the device (kernels/generate.wgsl.ts):
 * the distribution of `generateInput` (harness/core/generators.ts) without a
 * host copy of Q, K and V, for benchmarks at lengths whose inputs would take
 * the host longer to make and upload than the attention takes to run.
 */
import { TsaInputError } from '../harness/core/errors.js';
import { LOCAL, Rng, STRUCTURED, unitVector, type InputKind } from '../harness/core/generators.js';
import type { AttentionShape } from '../harness/core/interface.js';
import { validateShape } from '../harness/core/validate.js';
import type { GpuAttentionInput } from './backend.js';
import { GENERATE } from './kernels/generate.wgsl.js';
import { Pipelines } from './kernels/kernel.js';
import { Recorder } from './recorder.js';
import { wholeWindow } from './resources.js';

const pipelines = new WeakMap<GPUDevice, Pipelines>();

function pipelinesOf(device: GPUDevice): Pipelines {
  let p = pipelines.get(device);
  if (!p) {
    p = new Pipelines(device);
    pipelines.set(device, p);
  }
  return p;
}

/**
 * The locality term of `local` inputs (harness/core/generators.ts): c w [D] (w of norm sqrt(2/D)
 * in every RoPE pair, random phases; c = LOCAL.cScale D^(1/4)), then theta_i = 10000^(-2i/D).
 */
function localityTable(rng: Rng, D: number): Float32Array {
  const c = LOCAL.cScale * Math.sqrt(Math.sqrt(D));
  const half = Math.ceil(D / 2);
  const table = new Float32Array(D + half);
  for (let i = 0; i < half; i++) {
    const phase = 2 * Math.PI * rng.uniform();
    table[2 * i] = c * Math.sqrt(2 / D) * Math.cos(phase);
    if (2 * i + 1 < D) table[2 * i + 1] = c * Math.sqrt(2 / D) * Math.sin(phase);
    table[D + i] = 10000 ** ((-2 * i) / D);
  }
  return table;
}

/**
 * Q [H][L][D], K and V [Hkv][L][D] of `kind` on `device` (STORAGE, COPY_SRC,
 * COPY_DST buffers the caller destroys), written once this resolves.
 */
export async function generateInputOnGpu(device: GPUDevice, kind: InputKind, shape: AttentionShape, seed = 1): Promise<GpuAttentionInput> {
  validateShape(shape);
  const { heads: H, kvHeads: Hkv, headDim: D, seqLen: L } = shape;
  const headBytes = L * D * 4;
  const { maxStorageBufferBindingSize: maxBinding, minStorageBufferOffsetAlignment: align, maxComputeWorkgroupsPerDimension: maxGroups } = device.limits;
  if (headBytes > maxBinding) throw new TsaInputError(`one head of L*D = ${L * D} floats exceeds this device's storage binding limit (${maxBinding} bytes)`, 'SHAPE');
  const headsPerDispatch = Math.min(Math.floor(maxBinding / headBytes), maxGroups);
  if (headsPerDispatch < H && headBytes % align !== 0) {
    throw new TsaInputError(`L*D*4 = ${headBytes} bytes is not a multiple of the device's offset alignment ${align}, needed to split Q over dispatches`, 'SHAPE');
  }
  const rng = new Rng(seed);
  const local = kind === 'local';
  const dirs = new Float32Array(Hkv * D + (local ? D + Math.ceil(D / 2) : 0));
  for (let g = 0; g < Hkv; g++) dirs.set(unitVector(rng, D), g * D);
  if (local) dirs.set(localityTable(rng, D), Hkv * D);
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const dir = device.createBuffer({ label: 'generate.dir', size: dirs.byteLength, usage });
  device.queue.writeBuffer(dir, 0, dirs);
  const rec = new Recorder(device, pipelinesOf(device), maxGroups, false);
  const tensor = (id: number, heads: number): GPUBuffer => {
    const buf = device.createBuffer({ label: `generate.${'qkv'[id]}`, size: heads * headBytes, usage });
    for (let head0 = 0; head0 < heads; head0 += headsPerDispatch) {
      const n = Math.min(headsPerDispatch, heads - head0);
      const params = {
        ...{ count: L * D, L, D, group: H / Hkv, seed: seed >>> 0, tensor: id, structured: kind === 'gaussian' ? 0 : 1, head0 },
        ...{ heavyMin: (local ? LOCAL.structured : STRUCTURED).heavyMin, local: local ? 1 : 0, localAt: Hkv * D },
      };
      const x = { binding: { buffer: buf, offset: head0 * headBytes, size: n * headBytes }, base: 0 };
      rec.dispatch(GENERATE, params, { dir: wholeWindow(dir), x }, [Math.min(maxGroups, Math.ceil((L * D) / GENERATE.workgroupSize)), n]);
    }
    return buf;
  };
  const input = { ...shape, q: tensor(0, H), k: tensor(1, Hkv), v: tensor(2, Hkv) };
  await rec.submit().submitted;
  dir.destroy();
  return input;
}
