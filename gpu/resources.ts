/// <reference types="@webgpu/types" preserve="true" />
/**
 * GPU buffers of the backend and the binding windows kernels see.
 *
 * A head-major tensor ([head][rows][dim], `headElems` floats per head) may
 * span several GPUBuffers (parts), each at most maxBufferSize (or a smaller cap). A dispatch
 * binds, per tensor, a window of whole heads no larger than
 * maxStorageBufferBindingSize, starting at an offset aligned to
 * minStorageBufferOffsetAlignment; the kernel gets the element offset of the
 * window's first head (`base`). `headChunks` splits the heads of a dispatch
 * so every tensor's window fits: that is how a tensor larger than one
 * binding (L = 131072, H = 32, D = 128: 2 GiB) is processed.
 */
import { TsaInputError } from '../harness/core/errors.js';

export interface TensorPart {
  buffer: GPUBuffer;
  /** Byte offset of the part's first head. */
  offset: number;
  firstHead: number;
  heads: number;
}

export interface HeadTensor {
  parts: TensorPart[];
  heads: number;
  /** Elements between consecutive heads. */
  headElems: number;
}

export interface Window {
  binding: GPUBufferBinding;
  /** Element offset of the window's first head inside the binding. */
  base: number;
}

export interface BindingLimits {
  maxBinding: number;
  maxBufferSize: number;
  /** Bytes of one GPUBuffer of a head-major tensor (maxBufferSize unless capped for tests). */
  maxTensorPart: number;
  align: number;
}

function partOf(t: HeadTensor, head: number): TensorPart {
  const p = t.parts.find((q) => head >= q.firstHead && head < q.firstHead + q.heads);
  if (!p) throw new Error(`head ${head} outside tensor of ${t.heads} heads`);
  return p;
}

/** Byte range [start, end) of heads [h0, h1) of `t`, or null if they are not in one part. */
function headRange(t: HeadTensor, h0: number, h1: number): { part: TensorPart; start: number; end: number } | null {
  const part = partOf(t, h0);
  if (h1 > part.firstHead + part.heads) return null;
  const start = part.offset + (h0 - part.firstHead) * t.headElems * 4;
  return { part, start, end: start + (h1 - h0) * t.headElems * 4 };
}

function windowBytes(t: HeadTensor, h0: number, h1: number, align: number): number {
  const r = headRange(t, h0, h1);
  if (!r) return Infinity;
  return r.end - Math.floor(r.start / align) * align;
}

/** Binding window over heads [h0, h1) of `t` (which must lie in one part). */
export function headWindow(t: HeadTensor, h0: number, h1: number, align: number): Window {
  const r = headRange(t, h0, h1);
  if (!r) throw new Error(`heads ${h0}..${h1} span two buffers`);
  const offset = Math.floor(r.start / align) * align;
  return { binding: { buffer: r.part.buffer, offset, size: r.end - offset }, base: (r.start - offset) / 4 };
}

/** A whole buffer (or its first `bytes`) as a window with base 0. */
export function wholeWindow(buffer: GPUBuffer, bytes = buffer.size): Window {
  return { binding: { buffer, offset: 0, size: bytes }, base: 0 };
}

/** A tensor read by query heads [h0, h1): `kvDiv` query heads share one of its heads. */
export interface ChunkUse {
  tensor: HeadTensor;
  kvDiv: number;
}

/** Tensor heads [a, b) read by query heads [h0, h1) when kvDiv query heads share each. */
function sharedHeads(h0: number, h1: number, kvDiv: number): [number, number] {
  return [Math.floor(h0 / kvDiv), Math.floor((h1 - 1) / kvDiv) + 1];
}

/** Binding window over the heads of `t` that query heads [h0, h1) read (kvDiv query heads per head); `first` is the first of them. */
export function sharedWindow(t: HeadTensor, h0: number, h1: number, kvDiv: number, align: number): Window & { first: number } {
  const [a, b] = sharedHeads(h0, h1, kvDiv);
  return { ...headWindow(t, a, b, align), first: a };
}

/**
 * Splits query heads [0, heads) into consecutive chunks such that, for every
 * use, the tensor heads read by the chunk lie in one part and fit one binding.
 */
export function headChunks(heads: number, uses: ChunkUse[], lim: BindingLimits): [number, number][] {
  const fits = (h0: number, h1: number) =>
    uses.every(({ tensor, kvDiv }) => windowBytes(tensor, ...sharedHeads(h0, h1, kvDiv), lim.align) <= lim.maxBinding);
  const chunks: [number, number][] = [];
  for (let h0 = 0; h0 < heads; ) {
    if (!fits(h0, h0 + 1)) {
      const worst = Math.max(...uses.map((u) => u.tensor.headElems * 4));
      throw new TsaInputError(
        `one head of a tensor takes ${worst} bytes, more than this adapter's maxStorageBufferBindingSize (${lim.maxBinding}); ` +
          `use a shorter sequence or smaller head dimension`,
        'SHAPE',
      );
    }
    let h1 = h0 + 1;
    while (h1 < heads && fits(h0, h1 + 1)) h1++;
    chunks.push([h0, h1]);
    h0 = h1;
  }
  return chunks;
}

/** Creates (and names) the GPU buffers of a head-major tensor, splitting it into parts of at most maxBufferSize. */
export function createHeadTensor(device: GPUDevice, label: string, heads: number, headElems: number, lim: BindingLimits, usage: number): HeadTensor {
  const headBytes = headElems * 4;
  const perPart = Math.floor(lim.maxTensorPart / headBytes);
  if (perPart < 1) {
    throw new TsaInputError(`one head of ${label} takes ${headBytes} bytes, more than one GPUBuffer may hold (${lim.maxTensorPart})`, 'SHAPE');
  }
  const parts: TensorPart[] = [];
  for (let h = 0; h < heads; h += perPart) {
    const n = Math.min(perPart, heads - h);
    const buffer = device.createBuffer({ label: `${label}[${h}..${h + n})`, size: Math.max(16, n * headBytes), usage });
    parts.push({ buffer, offset: 0, firstHead: h, heads: n });
  }
  return { parts, heads, headElems };
}

/** A caller's single buffer as a head-major tensor. */
export function bufferAsHeadTensor(buffer: GPUBuffer, heads: number, headElems: number): HeadTensor {
  return { parts: [{ buffer, offset: 0, firstHead: 0, heads }], heads, headElems };
}

export function destroyHeadTensor(t: HeadTensor | undefined): void {
  for (const p of t?.parts ?? []) p.buffer.destroy();
}

/** Floats per writeBuffer call (256 MiB). */
const UPLOAD_SLICE = 1 << 26;

/**
 * Uploads a [heads][headElems] Float32Array into a tensor's parts, in slices
 * the queue accepts. Data in a SharedArrayBuffer is copied slice by slice
 * first: Dawn's writeBuffer does not take shared memory (on Vulkan it crashed
 * the process).
 */
export function uploadHeadTensor(queue: GPUQueue, t: HeadTensor, data: Float32Array): void {
  const shared = typeof SharedArrayBuffer !== 'undefined' && data.buffer instanceof SharedArrayBuffer;
  for (const p of t.parts) {
    const first = p.firstHead * t.headElems;
    const count = p.heads * t.headElems;
    for (let i = 0; i < count; i += UPLOAD_SLICE) {
      const n = Math.min(UPLOAD_SLICE, count - i);
      if (shared) queue.writeBuffer(p.buffer, p.offset + i * 4, data.slice(first + i, first + i + n));
      else queue.writeBuffer(p.buffer, p.offset + i * 4, data, first + i, n);
    }
  }
}

/**
 * Named buffers reused across calls: `get` returns the existing buffer when
 * size and usage match, else replaces it. Everything is destroyed on dispose.
 */
export class BufferPool {
  private buffers = new Map<string, GPUBuffer>();
  private tensors = new Map<string, HeadTensor>();

  constructor(private device: GPUDevice, private lim: BindingLimits) {}

  get(name: string, bytes: number, usage: number): GPUBuffer {
    const size = Math.max(16, Math.ceil(bytes / 16) * 16);
    const old = this.buffers.get(name);
    if (old && old.size === size && old.usage === usage) return old;
    old?.destroy();
    if (size > this.lim.maxBufferSize) {
      throw new TsaInputError(`buffer ${name} needs ${size} bytes, more than this adapter's maxBufferSize (${this.lim.maxBufferSize})`, 'SHAPE');
    }
    const b = this.device.createBuffer({ label: name, size, usage });
    this.buffers.set(name, b);
    return b;
  }

  heads(name: string, heads: number, headElems: number, usage: number): HeadTensor {
    const old = this.tensors.get(name);
    if (old && old.heads === heads && old.headElems === headElems && old.parts[0]!.buffer.usage === usage) return old;
    destroyHeadTensor(old);
    const t = createHeadTensor(this.device, name, heads, headElems, this.lim, usage);
    this.tensors.set(name, t);
    return t;
  }

  destroy(): void {
    for (const b of this.buffers.values()) b.destroy();
    for (const t of this.tensors.values()) destroyHeadTensor(t);
    this.buffers.clear();
    this.tensors.clear();
  }
}
