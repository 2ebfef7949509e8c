/// <reference types="@webgpu/types" preserve="true" />
/** GPU buffers of a WebGPU backend's device for the tests of its GPU-resident entry. */
import type { WebGpuBackend } from '../../gpu/index.js';

export async function readBuffer(b: WebGpuBackend, buffer: GPUBuffer, bytes: number): Promise<Float32Array> {
  const staging = b.device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const enc = b.device.createCommandEncoder();
  enc.copyBufferToBuffer(buffer, 0, staging, 0, bytes);
  b.device.queue.submit([enc.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const out = new Float32Array(staging.getMappedRange().slice(0));
  staging.destroy();
  return out;
}

export function toGpu(b: WebGpuBackend, data: Float32Array): GPUBuffer {
  const buf = b.device.createBuffer({ size: data.byteLength, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC });
  b.device.queue.writeBuffer(buf, 0, data);
  return buf;
}
