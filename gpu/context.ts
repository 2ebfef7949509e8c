/// <reference types="@webgpu/types" />
/**
 * The platform-neutral half of device acquisition: what the backend needs to know about its device
 * (GpuContext), what every device of ours is asked for (deviceDescriptor), and how an adapter is
 * named and classed as software. The Node opener (device.ts, Dawn) and the browser opener
 * (device-browser.ts, navigator.gpu) both build on it. No node: imports here.
 */

import { shaderFeatures, wantedFeatures, type ShaderFeatures } from './features.js';

export interface GpuContext {
  device: GPUDevice;
  /** Whether the backend owns (and destroys on dispose) the device. */
  owned: boolean;
  /** A CPU rasterizer (llvmpipe, SwiftShader, lavapipe) or the adapter's fallback flag. */
  software: boolean;
  /** Adapter name and how it was opened, for `Backend.description`. */
  summary: string;
  timestamps: boolean;
  /** Whether new buffers on this device are zero-filled (null: a caller's device, unknown). */
  zeroInit: boolean | null;
  /** shader-f16 and subgroup matrices (features.ts). */
  features: ShaderFeatures;
}

const SOFTWARE = /llvmpipe|softpipe|swiftshader|lavapipe|software/i;

export function describeAdapter(info: GPUAdapterInfo): string {
  const parts = [info.vendor, info.architecture, info.device, info.description].filter((s) => s && s.length > 0);
  return [...new Set(parts)].join(' / ') || 'unnamed adapter';
}

/** A CPU rasterizer by name, or the adapter's own fallback flag. */
export function isSoftwareAdapter(info: GPUAdapterInfo): boolean {
  return info.isFallbackAdapter || SOFTWARE.test(describeAdapter(info));
}

/** Every numeric limit of the adapter, requested in full (WebGPU's defaults are small). */
function allLimits(adapter: GPUAdapter): Record<string, number> {
  const out: Record<string, number> = {};
  for (const key in adapter.limits) {
    const v = (adapter.limits as unknown as Record<string, unknown>)[key];
    if (typeof v === 'number') out[key] = v;
  }
  return out;
}

/**
 * The device every platform requests: all of the adapter's limits, timestamp queries where
 * offered, and shader-f16 / subgroups / subgroup matrices where the adapter has them (features.ts).
 */
export function deviceDescriptor(adapter: GPUAdapter): GPUDeviceDescriptor & { requiredFeatures: GPUFeatureName[] } {
  return {
    requiredLimits: allLimits(adapter),
    requiredFeatures: [...(adapter.features.has('timestamp-query') ? (['timestamp-query'] as GPUFeatureName[]) : []), ...wantedFeatures(adapter)],
  };
}

/** A caller's device (for GPU-resident inputs made elsewhere); the backend will not destroy it. */
export function wrapDevice(device: GPUDevice): GpuContext {
  const info = (device as GPUDevice & { adapterInfo?: GPUAdapterInfo }).adapterInfo;
  return {
    device,
    owned: false,
    software: info ? isSoftwareAdapter(info) : false,
    timestamps: device.features.has('timestamp-query'),
    zeroInit: null,
    features: shaderFeatures(device, info),
    summary: `the caller's device on ${info ? describeAdapter(info) : 'an adapter'}`,
  };
}
