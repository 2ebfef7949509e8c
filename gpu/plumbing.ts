/// <reference types="@webgpu/types" preserve="true" />
/**
 * Device plumbing of the WebGPU backend: calls run one at a time (they share
 * pooled buffers and the device's error-scope stack), each inside error
 * scopes, and every failure on a lost or disposed device becomes
 * BackendLostError; device out-of-memory and validation errors become
 * BackendResourceError. Uploads and readbacks live here too.
 */
import { BackendLostError, BackendResourceError, TsaError } from '../harness/core/errors.js';
import type { GpuContext } from './context.js';
import { uploadHeadTensor, type HeadTensor } from './resources.js';

const MAP_READ = 0x1 | 0x8; // MAP_READ | COPY_DST

/** A pending copy of a buffer's first `bytes` into a mappable staging buffer. */
export interface Readback {
  staging: GPUBuffer;
  bytes: number;
}

/** How long a failed call waits for device.lost to settle before classifying the failure (ms). */
const LOSS_SETTLE_MS = 50;

export class DevicePlumbing {
  readonly device: GPUDevice;
  private lostInfo: GPUDeviceLostInfo | null = null;
  private disposed = false;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(readonly gpu: GpuContext) {
    this.device = gpu.device;
    gpu.device.lost.then((info) => {
      this.lostInfo = info;
    });
  }

  /** Throws BackendLostError once the backend is disposed or its device lost. */
  ensureUsable(): void {
    if (this.disposed) throw new BackendLostError('the WebGPU backend was disposed; create a new one');
    if (this.lostInfo) {
      throw new BackendLostError(
        `the WebGPU device was lost (${this.lostInfo.reason}${this.lostInfo.message ? `: ${this.lostInfo.message}` : ''}); create a new backend or fall back to another`,
      );
    }
  }

  /**
   * Runs `body` after every earlier call has finished (its own turn on the
   * device), inside error scopes. A failure on a device that turns out lost
   * or disposed is BackendLostError; device errors are BackendResourceError.
   */
  run<T>(body: () => Promise<T>): Promise<T> {
    const next = this.queue.then(() => this.guarded(body));
    this.queue = next.catch(() => {});
    return next;
  }

  private async guarded<T>(body: () => Promise<T>): Promise<T> {
    this.ensureUsable();
    const { device } = this;
    device.pushErrorScope('out-of-memory');
    device.pushErrorScope('validation');
    let result: T;
    try {
      result = await body();
    } catch (e) {
      await device.popErrorScope().catch(() => null);
      await device.popErrorScope().catch(() => null);
      if (e instanceof TsaError) throw e;
      await this.settleLoss();
      this.ensureUsable();
      throw e;
    }
    const validation = await device.popErrorScope().catch(() => null);
    const oom = await device.popErrorScope().catch(() => null);
    this.ensureUsable();
    if (oom) throw new BackendResourceError(`WebGPU out of memory: ${oom.message}`, 'OUT_OF_MEMORY');
    if (validation) throw new BackendResourceError(`WebGPU validation error: ${validation.message}`, 'VALIDATION');
    return result;
  }

  /** Gives device.lost a moment to resolve after a failure (Dawn reports the loss asynchronously). */
  private async settleLoss(): Promise<void> {
    if (this.disposed || this.lostInfo) return;
    await Promise.race([this.device.lost, new Promise((r) => setTimeout(r, LOSS_SETTLE_MS))]);
  }

  /** Records a copy of `src`'s first `bytes` into a new staging buffer (read it with `read`). */
  copyOut(encoder: GPUCommandEncoder, src: GPUBuffer, bytes: number): Readback {
    const staging = this.device.createBuffer({ label: 'readback', size: Math.max(16, Math.ceil(bytes / 16) * 16), usage: MAP_READ });
    encoder.copyBufferToBuffer(src, 0, staging, 0, Math.ceil(bytes / 4) * 4);
    return { staging, bytes };
  }

  /** Maps a readback (after its copy was submitted) and returns its bytes; the staging buffer is freed. */
  async read(r: Readback): Promise<ArrayBuffer> {
    try {
      await r.staging.mapAsync(GPUMapMode.READ);
      return r.staging.getMappedRange(0, Math.ceil(r.bytes / 4) * 4).slice(0);
    } finally {
      r.staging.destroy();
    }
  }

  /** Reads several readbacks; if one fails, the others are still freed and none is left unhandled. */
  async readAll(rs: Readback[]): Promise<ArrayBuffer[]> {
    const settled = await Promise.allSettled(rs.map((r) => this.read(r)));
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;
    return settled.map((s) => (s as PromiseFulfilledResult<ArrayBuffer>).value);
  }

  /** Uploads head-major data into a tensor (see uploadHeadTensor: shared memory is copied first). */
  upload(t: HeadTensor, data: Float32Array): void {
    uploadHeadTensor(this.device.queue, t, data);
  }

  /** Marks the backend disposed (later and queued calls reject with BackendLostError). */
  dispose(): boolean {
    if (this.disposed) return false;
    this.disposed = true;
    return true;
  }
}
