/// <reference types="@webgpu/types" preserve="true" />
/**
 * The shader features the f16 attention path uses, and Dawn's experimental
 * toggles that unlock them on Vulkan:
 * - `allow_unsafe_apis`: exposes experimental features, here
 *   `chromium-experimental-subgroup-matrix` (WGSL subgroup matrices, Vulkan
 *   cooperative matrices: the GPU's matrix units);
 * - `vulkan_enable_f16_on_nvidia`: `shader-f16` on NVIDIA's Vulkan driver
 *   (Dawn leaves it off there by default);
 * - `use_vulkan_memory_model`: the SPIR-V memory model cooperative matrices need.
 * On by default on Vulkan (never on OpenGL); the backend option
 * `experimentalFeatures: false` leaves them off.
 */

export const EXPERIMENTAL_TOGGLES = ['allow_unsafe_apis', 'vulkan_enable_f16_on_nvidia', 'use_vulkan_memory_model'] as const;

export const MATRIX_FEATURE = 'chromium-experimental-subgroup-matrix';
const OPTIONAL_FEATURES = ['shader-f16', 'subgroups', MATRIX_FEATURE] as const;

/** One entry of adapter.info.subgroupMatrixConfigs (its fields read by name: spreading gives {}). */
export interface MatrixConfig {
  componentType: string;
  resultComponentType: string;
  M: number;
  N: number;
  K: number;
}

export interface ShaderFeatures {
  /** `shader-f16` on the device. */
  f16: boolean;
  /** Subgroup matrices with f16 operands and f32 results at 16x16x16, 32-wide subgroups (attend-f16). */
  matrix: boolean;
  /** Every subgroup-matrix config the adapter lists. */
  configs: MatrixConfig[];
}

/** The optional features of OPTIONAL_FEATURES that the adapter has (to request on the device). */
export function wantedFeatures(adapter: GPUAdapter): GPUFeatureName[] {
  return OPTIONAL_FEATURES.filter((f) => adapter.features.has(f)) as GPUFeatureName[];
}

function configsOf(info: GPUAdapterInfo): MatrixConfig[] {
  const list = (info as GPUAdapterInfo & { subgroupMatrixConfigs?: readonly MatrixConfig[] }).subgroupMatrixConfigs ?? [];
  return [...list].map((c) => ({ componentType: c.componentType, resultComponentType: c.resultComponentType, M: c.M, N: c.N, K: c.K }));
}

/** What the f16 path can use on a device opened with wantedFeatures. */
export function shaderFeatures(device: GPUDevice, info: GPUAdapterInfo | undefined): ShaderFeatures {
  const configs = info ? configsOf(info) : [];
  const f16 = device.features.has('shader-f16');
  const sub = info as (GPUAdapterInfo & { subgroupMinSize?: number; subgroupMaxSize?: number }) | undefined;
  const matrix =
    f16 &&
    device.features.has(MATRIX_FEATURE) &&
    sub?.subgroupMinSize === 32 &&
    sub?.subgroupMaxSize === 32 &&
    configs.some((c) => c.componentType === 'f16' && c.resultComponentType === 'f32' && c.M === 16 && c.N === 16 && c.K === 16);
  return { f16, matrix, configs };
}

/** E.g. "shader-f16, subgroup matrices f16>f32 16x16x16, f16>f32 16x8x16" (for descriptions and `tsa backends`). */
export function describeFeatures(f: ShaderFeatures): string {
  const m = f.configs.map((c) => `${c.componentType}>${c.resultComponentType} ${c.M}x${c.N}x${c.K}`);
  return `${f.f16 ? 'shader-f16' : 'no shader-f16'}, ${m.length ? `subgroup matrices ${m.join(', ')}` : 'no subgroup matrices'}`;
}
