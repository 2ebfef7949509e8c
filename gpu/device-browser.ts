/// <reference types="@webgpu/types" />
/**
 * WebGPU adapter and device acquisition in a browser (or a worker) through `navigator.gpu`,
 * feature-detected: a core adapter, else a compatibility one, each recorded so an unavailable
 * backend says what was tried. The device request is the Node one's (context.ts). A lost device
 * (driver reset, tab in the background too long, `device.destroy()`) is seen by the backend through
 * `device.lost`. No node: imports here.
 */
import { shaderFeatures } from './features.js';
import { BackendUnavailableError } from '../harness/core/errors.js';
import { describeAdapter, deviceDescriptor, isSoftwareAdapter, type GpuContext } from './context.js';

const web = globalThis as unknown as { navigator?: { gpu?: GPU }; isSecureContext?: boolean };

const FEATURE_LEVELS = ['core', 'compatibility'] as const;

const ENABLE_HINT =
  'Chromium-based browsers ship WebGPU on Windows, macOS and ChromeOS; on Linux start Chromium with --enable-unsafe-webgpu; ' +
  'a blocklisted GPU shows in chrome://gpu';

/** Why this page has no navigator.gpu, as far as the page can tell. */
function noWebGpuReason(): string {
  if (web.isSecureContext === false) {
    return 'navigator.gpu is missing: WebGPU needs a secure context (https:, or http://localhost / 127.0.0.1)';
  }
  return `navigator.gpu is missing: this browser has no WebGPU or has it turned off (${ENABLE_HINT})`;
}

/** The browser's first adapter (core, else compatibility) that gives a device. */
export async function openBrowserGpu(powerPreference: GPUPowerPreference = 'high-performance'): Promise<GpuContext> {
  const gpu = web.navigator?.gpu;
  if (!gpu) throw new BackendUnavailableError(noWebGpuReason());
  const tried: string[] = [];
  for (const featureLevel of FEATURE_LEVELS) {
    let adapter: GPUAdapter | null;
    try {
      adapter = await gpu.requestAdapter({ featureLevel, powerPreference });
    } catch (e) {
      tried.push(`${featureLevel}: requestAdapter threw ${e instanceof Error ? e.message : String(e)}`);
      continue;
    }
    if (!adapter) {
      tried.push(`${featureLevel}: no adapter`);
      continue;
    }
    try {
      const descriptor = deviceDescriptor(adapter);
      const device = await adapter.requestDevice(descriptor);
      return {
        device,
        owned: true,
        software: isSoftwareAdapter(adapter.info),
        timestamps: descriptor.requiredFeatures.includes('timestamp-query'),
        zeroInit: true,
        features: shaderFeatures(device, adapter.info),
        summary: `${describeAdapter(adapter.info)}; navigator.gpu, ${featureLevel} mode`,
      };
    } catch (e) {
      tried.push(`${featureLevel}: requestDevice failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  const hint = tried.every((t) => t.endsWith(': no adapter')) ? ` (WebGPU is off or has no usable GPU here: ${ENABLE_HINT})` : '';
  throw new BackendUnavailableError(`navigator.gpu gave no WebGPU device: tried ${tried.join('; ')}${hint}`);
}
