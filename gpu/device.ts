/// <reference types="@webgpu/types" preserve="true" />
/**
 * WebGPU adapter and device acquisition in Node, through the `webgpu` npm
 * package (Dawn's dawn.node; the browser's is device-browser.ts, the part both
 * share context.ts). Order: a core adapter on Vulkan, then a compatibility
 * adapter on Dawn's OpenGL / OpenGL ES backend (EGL, headless with
 * EGL_PLATFORM=surfaceless). Every attempt is recorded so an unavailable
 * backend says what was tried.
 */
import { BackendUnavailableError } from '../harness/core/errors.js';
import { describeAdapter, deviceDescriptor, isSoftwareAdapter, type GpuContext } from './context.js';
import { describeFeatures, EXPERIMENTAL_TOGGLES, shaderFeatures } from './features.js';

/** One attempt at an adapter: Dawn backend toggle and feature level. */
export interface AdapterAttempt {
  backend: 'vulkan' | 'opengl';
  featureLevel: 'core' | 'compatibility';
}

export const DEFAULT_ATTEMPTS: readonly AdapterAttempt[] = [
  { backend: 'vulkan', featureLevel: 'core' },
  { backend: 'opengl', featureLevel: 'compatibility' },
];

/** A Dawn backend to ask for by name (createWebGpuBackend's `adapter`). */
export type AdapterChoice = AdapterAttempt['backend'];
export const ADAPTER_CHOICES: readonly AdapterChoice[] = ['vulkan', 'opengl'];

/** The attempts for `adapter`: only that Dawn backend, or every default one in order. */
export function attemptsFor(adapter: AdapterChoice | undefined): readonly AdapterAttempt[] {
  if (adapter === undefined) return DEFAULT_ATTEMPTS;
  const only = DEFAULT_ATTEMPTS.filter((a) => a.backend === adapter);
  if (only.length === 0) {
    throw new BackendUnavailableError(`unknown WebGPU adapter '${String(adapter)}'; expected one of ${ADAPTER_CHOICES.join(', ')}`);
  }
  return only;
}

/** A device opened through Dawn, with the adapter attempt that gave it. */
export interface DawnGpuContext extends GpuContext {
  attempt: AdapterAttempt;
}

type DawnModule = { create(flags: string[]): GPU; globals: Record<string, unknown> };

/**
 * dawn.node GPU instances, one per Dawn backend. They stay reachable for the
 * whole process: if one is garbage-collected while work is pending, node
 * crashes inside Dawn.
 */
const instances = new Map<string, GPU>();
let dawn: DawnModule | null = null;

async function loadDawn(): Promise<DawnModule> {
  if (dawn) return dawn;
  try {
    const name = 'webgpu'; // a variable: the optional package is resolved at run time only
    dawn = (await import(name)) as DawnModule;
  } catch (e) {
    const missing = (e as { code?: string }).code === 'ERR_MODULE_NOT_FOUND' && String(e).includes("'webgpu'");
    throw new BackendUnavailableError(
      missing
        ? "the optional peer dependency 'webgpu' (Dawn for Node) is not installed: install webgpu to enable this backend (npm install webgpu)"
        : `the optional peer dependency 'webgpu' (Dawn for Node) failed to load: ${e instanceof Error ? e.message : String(e)}`,
    );
  }
  // GPUBufferUsage, GPUMapMode, ... as globals, like in a browser.
  for (const [k, v] of Object.entries(dawn.globals)) {
    if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  }
  return dawn;
}

/**
 * Toggles every device of ours gets. Tint guards each integer `/` and `%`
 * with a polyfill built on uint mix(), which GLSL before 4.50 lacks: NVIDIA's
 * OpenGL driver (GLSL 4.40 here) rejects every kernel with it. Our kernels
 * never divide by zero, so the guard is not needed.
 */
const BASE_TOGGLES = ['disable_polyfills_on_integer_div_and_mod'];

/**
 * Dawn zero-fills every new buffer at its first use (WebGPU's guarantee). On
 * its OpenGL backend that fill is a host upload of zeros, measured on an H200
 * at about 1.5 s per GiB (BENCHMARKS.md), against 0.2 ms for a later use. Our
 * kernels never read memory they did not write (test/webgpu.test.ts checks
 * this with Dawn's nonzero_clear_resources_on_creation_for_testing), so the
 * backend turns the fill off there by default (`zeroInit`).
 */
const ZERO_INIT_TOGGLE = 'lazy_clear_resource_on_first_use';

/**
 * Dawn rounds timestamp query results down to multiples of 2^16 ns (65.5 us: a browser's guard
 * against timing attacks). Stage times of a fraction of a millisecond, which the cost rule's
 * calibration fits and `profileDispatches` reports, are then off by up to a third; in Node the
 * backend asks for the full resolution.
 */
const QUANTIZE_TOGGLE = 'timestamp_quantization';

function instanceFor(d: DawnModule, backend: AdapterAttempt['backend'], extra: readonly string[], zeroInit: boolean): GPU {
  const toggles = [...BASE_TOGGLES, ...extra];
  const flags = [`backend=${backend}`, `enable-dawn-features=${toggles.join(',')}`];
  flags.push(`disable-dawn-features=${[QUANTIZE_TOGGLE, ...(zeroInit ? [] : [ZERO_INIT_TOGGLE])].join(',')}`);
  const key = flags.join(' ');
  let gpu = instances.get(key);
  if (!gpu) {
    // Headless EGL: no X11/Wayland display is needed for Dawn's OpenGL backend.
    if (backend === 'opengl') process.env.EGL_PLATFORM ??= 'surfaceless';
    gpu = d.create(flags);
    instances.set(key, gpu);
  }
  return gpu;
}

/**
 * The first adapter of `attempts` that gives a device, or BackendUnavailableError listing each try.
 * `toggles` are Dawn toggles to enable (e.g. disable_robustness, for measurements); `zeroInit`:
 * Dawn's zero-fill of new buffers (default: off on the OpenGL backend only, see ZERO_INIT_TOGGLE).
 */
export async function openGpu(
  attempts: readonly AdapterAttempt[] = DEFAULT_ATTEMPTS,
  toggles: readonly string[] = [],
  zeroInit?: boolean,
  experimental = true,
): Promise<DawnGpuContext> {
  const d = await loadDawn();
  const tried: string[] = [];
  for (const attempt of attempts) {
    const label = `${attempt.backend} (${attempt.featureLevel})`;
    let adapter: GPUAdapter | null = null;
    const zero = zeroInit ?? attempt.backend !== 'opengl';
    try {
      const extra = experimental && attempt.backend === 'vulkan' ? [...toggles, ...EXPERIMENTAL_TOGGLES] : toggles;
      adapter = await instanceFor(d, attempt.backend, extra, zero).requestAdapter({
        featureLevel: attempt.featureLevel,
        powerPreference: 'high-performance',
      });
    } catch (e) {
      tried.push(`${label}: requestAdapter threw ${e instanceof Error ? e.message : String(e)}`);
      continue;
    }
    if (!adapter) {
      tried.push(`${label}: no adapter`);
      continue;
    }
    try {
      const descriptor = deviceDescriptor(adapter);
      const device = await adapter.requestDevice(descriptor);
      const name = describeAdapter(adapter.info);
      const features = shaderFeatures(device, adapter.info);
      return {
        device,
        attempt,
        owned: true,
        software: isSoftwareAdapter(adapter.info),
        timestamps: descriptor.requiredFeatures.includes('timestamp-query'),
        zeroInit: zero,
        features,
        summary:
          `${name}; Dawn ${attempt.backend}, ${attempt.featureLevel} mode${toggles.length ? ` (${toggles.join(', ')})` : ''}` +
          `${zero ? '' : ', new buffers not zero-filled'}; ${describeFeatures(features)}` +
          `${experimental && attempt.backend === 'vulkan' ? ' (Dawn experimental toggles on)' : ''}`,
      };
    } catch (e) {
      tried.push(`${label}: requestDevice failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  throw new BackendUnavailableError(`no WebGPU adapter: tried ${tried.join('; ')}`);
}
