/**
 * Which of Dawn's backends the WebGPU tests open: TSA_WEBGPU_ADAPTER=vulkan
 * (lavapipe in CI, core mode) or opengl (llvmpipe, compatibility mode);
 * unset: the backend's default order (Vulkan, else OpenGL). .ci/run runs the
 * WebGPU tests on both.
 */
import { ADAPTER_CHOICES, type AdapterChoice } from '../../gpu/index.js';

function chosen(): AdapterChoice | undefined {
  const v = process.env.TSA_WEBGPU_ADAPTER;
  if (v === undefined || v === '') return undefined;
  if (!(ADAPTER_CHOICES as readonly string[]).includes(v)) throw new Error(`TSA_WEBGPU_ADAPTER=${v}: expected one of ${ADAPTER_CHOICES.join(', ')}`);
  return v as AdapterChoice;
}

/** Spread into createWebGpuBackend options: `{ adapter }` from TSA_WEBGPU_ADAPTER, or nothing. */
export const ADAPTER: { adapter?: AdapterChoice } = chosen() ? { adapter: chosen()! } : {};
