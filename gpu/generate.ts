/// <reference types="@webgpu/types" preserve="true" />
/**
 * Seeded attention inputs generated on the device (kernels/generate.wgsl.ts):
 * the distribution of `generateInput` (harness/core/generators.ts) without a
 * host copy of Q, K and V, for benchmarks at lengths whose inputs would take
 * the host longer to make and upload than the attention takes to run.
 */
import { TsaInputError } from '../harness/core/errors.js';
import { Rng, unitVector, type InputKind } from '../harness/core/generators.js';
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
  const dirs = new Float32Array(Hkv * D);
  for (let g = 0; g < Hkv; g++) dirs.set(unitVector(rng, D), g * D);
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const dir = device.createBuffer({ label: 'generate.dir', size: dirs.byteLength, usage });
  device.queue.writeBuffer(dir, 0, dirs);
  const rec = new Recorder(device, pipelinesOf(device), maxGroups, false);
  const tensor = (id: number, heads: number): GPUBuffer => {
    const buf = device.createBuffer({ label: `generate.${'qkv'[id]}`, size: heads * headBytes, usage });
    for (let head0 = 0; head0 < heads; head0 += headsPerDispatch) {
      const n = Math.min(headsPerDispatch, heads - head0);
      const params = { count: L * D, L, D, group: H / Hkv, seed: seed >>> 0, tensor: id, structured: kind === 'structured' ? 1 : 0, head0 };
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
