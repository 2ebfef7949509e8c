/**
 * The platform-neutral half of `createWebGpuBackend`: a WebGpuBackend on a GpuContext, whichever
 * platform opened it (index.ts: Dawn in Node; browser.ts: navigator.gpu). Checks the options and the
 * one limit the kernels need beyond WebGPU's defaults, and marks a software adapter as not auto-selected.
 */
import { checkCostOptions } from '../harness/core/cost.js';
import { BackendUnavailableError, TsaInputError } from '../harness/core/errors.js';
import type { Backend } from '../harness/core/interface.js';
import { madeHere, webGpuBackendOn, type WebGpuBackend, type WebGpuBackendOptions } from './backend.js';
import type { GpuContext } from './context.js';

/** Storage buffers one kernel binds at most (select's write pass). */
const STORAGE_BUFFERS_NEEDED = 6;

export type SelectableWebGpuBackend = WebGpuBackend & { autoSelect: boolean; whyNotAuto?: string };

/** The backend on `gpu`; on a software adapter it works but says `softwareReason` instead of being auto-selected. */
export function backendOnContext(gpu: GpuContext, options: WebGpuBackendOptions, softwareReason: string): SelectableWebGpuBackend {
  try {
    checkOptions(gpu, options);
  } catch (e) {
    if (gpu.owned) gpu.device.destroy();
    throw e;
  }
  const backend = webGpuBackendOn(gpu, options) as SelectableWebGpuBackend;
  backend.autoSelect = !gpu.software;
  if (gpu.software) backend.whyNotAuto = softwareReason;
  return backend;
}

/** The smallest value of each numeric size option (bytes, or positions for radixOneGroupKeys). */
const SIZE_OPTIONS = { maxBindingBytes: 4, maxTensorPartBytes: 4, scoreLogitsBytes: 0, radixOneGroupKeys: 0 } as const;

/** Throws TsaInputError ('OPTION') on a bad option, BackendUnavailableError where the adapter cannot run them. */
function checkOptions(gpu: GpuContext, options: WebGpuBackendOptions): void {
  checkCostOptions(options);
  for (const [name, min] of Object.entries(SIZE_OPTIONS)) {
    const v = options[name as keyof typeof SIZE_OPTIONS];
    if (v !== undefined && !(typeof v === 'number' && v >= min)) {
      throw new TsaInputError(`option ${name} must be a number >= ${min}, got ${String(v)}`, 'OPTION');
    }
  }
  if (options.precision !== undefined && options.precision !== 'f32' && options.precision !== 'f16') {
    throw new TsaInputError(`option precision must be 'f32' or 'f16', got ${String(options.precision)}`, 'OPTION');
  }
  if (options.precision === 'f16' && !gpu.features.f16) {
    throw new BackendUnavailableError(`precision 'f16' needs shader-f16, which adapter ${gpu.summary} lacks`);
  }
  const have = gpu.device.limits.maxStorageBuffersPerShaderStage;
  if (have < STORAGE_BUFFERS_NEEDED) {
    throw new BackendUnavailableError(
      `adapter ${gpu.summary} allows ${have} storage buffers per shader stage; the webgpu backend needs ${STORAGE_BUFFERS_NEEDED}`,
    );
  }
}

/** Type guard: is this Backend the WebGPU one (with the GPU-buffer API)? */
export function isWebGpuBackend(b: Backend): b is WebGpuBackend {
  return madeHere(b);
}
