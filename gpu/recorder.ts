/// <reference types="@webgpu/types" preserve="true" />
/**
 * Records one call's GPU work (dispatches and buffer commands) and submits
 * it as a single command buffer. Consecutive dispatches share a compute
 * pass (WebGPU orders storage writes between dispatches); each dispatch's
 * uniform parameters get a 256-byte slot of one uniform buffer. Device time
 * comes from timestamp queries around the passes where the adapter has
 * them, else from the host clock around submit .. onSubmittedWorkDone.
 *
 * Kernels are dispatched by their contract (kernels/kernel.ts): parameters
 * and bindings by name, both checked against it; their pipelines are made by
 * `prepare` (side by side) or else at `submit`. A grid wider than
 * maxComputeWorkgroupsPerDimension is folded here (rowBlocks).
 */
import type { BlockStageName, StageName } from '../harness/core/stages.js';
import type { BindingsOf, Kernel, Pipelines } from './kernels/kernel.js';
import { packParams } from './kernels/params.js';
import type { Window } from './resources.js';

interface Dispatch {
  kind: 'dispatch';
  label: string;
  kernel: Kernel;
  /** Storage bindings 1..n in the contract's order (binding 0 is the parameters). */
  bindings: Window[];
  params: ArrayBuffer;
  groups: [number, number, number];
  /** Where the workgroup counts are read from at run time (gated dispatches), else `groups`. */
  indirect?: { buffer: GPUBuffer; offset: number };
}

interface Command {
  kind: 'command';
  encode(encoder: GPUCommandEncoder): void;
}

interface Mark {
  kind: 'mark';
  name: StageName | BlockStageName;
}

type Step = Dispatch | Command;

export interface SubmitResult {
  /** Accelerator milliseconds of all recorded work (timestamps, else host clock from submit to completion). */
  deviceMs: Promise<number>;
  /** Milliseconds per named segment (see `mark`); NaN where they cannot be measured. */
  segmentMs: Promise<Record<string, number>>;
  /** Resolves once every command buffer is submitted (map readback buffers only after it). */
  submitted: Promise<void>;
  /**
   * With per-dispatch timing (the Recorder's `perDispatch`, and timestamp queries): each dispatch's
   * device ms in recording order, under its kernel's name and its segment; else null. Gated
   * dispatches whose grid the device zeroed read about 0.
   */
  dispatchMs: Promise<DispatchTime[] | null>;
}

/** One dispatch's device time (SubmitResult.dispatchMs). */
export interface DispatchTime {
  kernel: string;
  segment: string;
  ms: number;
}

const SLOT = 256;

/**
 * Recorded work, split into named segments by `mark`. Each segment is its
 * own command buffer, so per-stage times come from per-segment timestamps,
 * or, without them, from host waits between segments when asked for.
 */
export class Recorder {
  private steps: (Step | Mark)[] = [];
  private gatedDepth = 0;

  /** Whether dispatches recorded now are gated (inside `gated`'s body): they may not run. */
  get recordingGated(): boolean {
    return this.gatedDepth > 0;
  }

  /** Buffers of this recording (gated grids), destroyed once its work completed. */
  private owned: GPUBuffer[] = [];

  constructor(
    private device: GPUDevice,
    private pipelines: Pipelines,
    private maxGroups: number,
    private timestamps: boolean,
    /** Each dispatch in its own compute pass between two timestamps (diagnostics: the passes add barriers). */
    private perDispatch = false,
  ) {}

  /** Records `kernel` over `groups` workgroups with its parameters and bindings by name. */
  dispatch<K extends Kernel>(
    kernel: K,
    params: Record<string, number>,
    bindings: Record<BindingsOf<K>, Window>,
    groups: [number, number?, number?],
    label = kernel.name,
  ): void {
    const g: [number, number, number] = [groups[0], groups[1] ?? 1, groups[2] ?? 1];
    if (g.some((n) => n > this.maxGroups)) {
      throw new Error(`${label}: ${g.join('x')} workgroups exceed maxComputeWorkgroupsPerDimension ${this.maxGroups}`);
    }
    const given = bindings as Record<string, Window>;
    const names = kernel.bindings.map((b) => b.name);
    const extra = Object.keys(given).filter((n) => !names.includes(n));
    if (extra.length > 0 || names.some((n) => !given[n])) {
      throw new Error(`${label}: bindings {${Object.keys(given).join(', ')}} do not match the kernel's (${names.join(', ')})`);
    }
    if (g.some((n) => n === 0)) return;
    const windows = names.map((n) => given[n]!);
    this.steps.push({ kind: 'dispatch', label, kernel, bindings: windows, params: packParams(kernel.params, params), groups: g });
  }

  /**
   * Folds `rows` rows into workgroups of at least `minRowsPerGroup` rows each,
   * more where one grid dimension would exceed maxComputeWorkgroupsPerDimension.
   */
  rowBlocks(rows: number, minRowsPerGroup: number): { rowsPerGroup: number; groups: number } {
    const rowsPerGroup = Math.max(1, minRowsPerGroup, Math.ceil(rows / this.maxGroups));
    return { rowsPerGroup, groups: Math.ceil(rows / rowsPerGroup) };
  }

  /**
   * Records `body`'s dispatches as indirect ones: their workgroup counts
   * ([x, y, z] u32 per dispatch, in recording order) live in one buffer,
   * written with the real grids. `gate(grids, words)` records before them
   * the kernel that may zero those counts on the device, so a verdict the
   * GPU reaches skips the work without a readback.
   */
  gated(gate: (grids: Window, words: number) => void, body: () => void): void {
    const outer = this.steps;
    this.steps = [];
    this.gatedDepth++;
    try {
      body();
    } finally {
      this.gatedDepth--;
    }
    const inner = this.steps;
    this.steps = outer;
    const dispatches = inner.filter((s): s is Dispatch => s.kind === 'dispatch');
    const words = 3 * Math.max(1, dispatches.length);
    const buffer = this.device.createBuffer({
      label: 'gated grids',
      size: 4 * words,
      usage: GPUBufferUsage.INDIRECT | GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
    });
    this.owned.push(buffer);
    const grids = new Uint32Array(words);
    dispatches.forEach((d, i) => {
      grids.set(d.groups, 3 * i);
      d.indirect = { buffer, offset: 12 * i };
    });
    this.device.queue.writeBuffer(buffer, 0, grids);
    gate({ binding: { buffer, offset: 0, size: 4 * words }, base: 0 }, words);
    this.steps.push(...inner);
  }

  /**
   * Creates the pipelines of every kernel recorded so far that has none yet, side by side
   * (Pipelines.prepare); `submit` would otherwise create them one after another. Await it
   * before `submit`.
   */
  prepare(): Promise<void> {
    return this.pipelines.prepare(this.steps.flatMap((s) => (s.kind === 'dispatch' ? [s.kernel] : [])));
  }

  command(encode: (encoder: GPUCommandEncoder) => void): void {
    this.steps.push({ kind: 'command', encode });
  }

  /** Starts a new named segment: the work recorded from here on is timed under `name`. */
  mark(name: StageName | BlockStageName): void {
    this.steps.push({ kind: 'mark', name });
  }

  private segments(): { name: string; steps: Step[] }[] {
    const segs: { name: string; steps: Step[] }[] = [{ name: 'all', steps: [] }];
    for (const s of this.steps) {
      if (s.kind === 'mark') segs.push({ name: s.name, steps: [] });
      else segs[segs.length - 1]!.steps.push(s);
    }
    return segs.filter((s) => s.steps.length > 0);
  }

  /**
   * Encodes and submits everything recorded; `after` adds commands after the
   * timed work (readback copies). Without timestamp queries, per-segment
   * times need `syncSegments`: the host waits for each segment before
   * submitting the next (adds a round trip per segment); otherwise they are NaN.
   */
  submit(after?: (encoder: GPUCommandEncoder) => void, syncSegments = false): SubmitResult {
    const { device } = this;
    const segs = this.segments();
    const owned = this.owned;
    this.steps = [];
    this.owned = [];
    const dispatches = segs.flatMap((s) => s.steps).filter((s): s is Dispatch => s.kind === 'dispatch');
    const paramBuf = device.createBuffer({
      label: 'params',
      size: Math.max(1, dispatches.length) * SLOT,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    const bytes = new Uint8Array(Math.max(1, dispatches.length) * SLOT);
    dispatches.forEach((d, i) => bytes.set(new Uint8Array(d.params), i * SLOT));
    device.queue.writeBuffer(paramBuf, 0, bytes);
    // Two timestamps per segment, or per dispatch (perDispatch: a segment then spans its first begin to its last end).
    const perDispatch = this.perDispatch && this.timestamps;
    const stampCount = 2 * (perDispatch ? dispatches.length : segs.length);
    const query = this.timestamps && stampCount > 0 ? device.createQuerySet({ type: 'timestamp', count: stampCount }) : null;
    const spans: { first: number; last: number }[] = [];

    let slot = 0;
    const buffers = segs.map((seg, k) => {
      const encoder = device.createCommandEncoder({ label: seg.name });
      const passStarts = seg.steps.flatMap((s, i) => (s.kind === 'dispatch' && (i === 0 || seg.steps[i - 1]!.kind !== 'dispatch') ? [i] : []));
      let pass: GPUComputePassEncoder | null = null;
      seg.steps.forEach((s, i) => {
        if (s.kind === 'command') {
          s.encode(encoder);
          return;
        }
        if (perDispatch) {
          spans[k] = { first: spans[k]?.first ?? slot, last: slot };
          pass = encoder.beginComputePass({ timestampWrites: { querySet: query!, beginningOfPassWriteIndex: 2 * slot, endOfPassWriteIndex: 2 * slot + 1 } });
        } else if (!pass) {
          const first = i === passStarts[0];
          const last = i === passStarts[passStarts.length - 1];
          const timestampWrites: GPUComputePassTimestampWrites | undefined =
            query && (first || last)
              ? {
                  querySet: query,
                  ...(first ? { beginningOfPassWriteIndex: 2 * k } : {}),
                  ...(last ? { endOfPassWriteIndex: 2 * k + 1 } : {}),
                }
              : undefined;
          pass = encoder.beginComputePass(timestampWrites ? { timestampWrites } : {});
        }
        const entries: GPUBindGroupEntry[] = [
          { binding: 0, resource: { buffer: paramBuf, offset: slot * SLOT, size: s.params.byteLength } },
          ...s.bindings.map((w, j) => ({ binding: j + 1, resource: w.binding })),
        ];
        slot++;
        const pipeline = this.pipelines.get(s.kernel);
        pass.setPipeline(pipeline);
        pass.setBindGroup(0, device.createBindGroup({ label: s.label, layout: pipeline.getBindGroupLayout(0), entries }));
        if (s.indirect) pass.dispatchWorkgroupsIndirect(s.indirect.buffer, s.indirect.offset);
        else pass.dispatchWorkgroups(...s.groups);
        if (perDispatch || i === seg.steps.length - 1 || seg.steps[i + 1]!.kind !== 'dispatch') {
          pass.end();
          pass = null;
        }
      });
      return encoder;
    });

    let stamps: GPUBuffer | null = null;
    const tail = device.createCommandEncoder({ label: 'readback' });
    if (query) {
      const n = stampCount;
      const resolve = device.createBuffer({ size: 8 * n, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
      stamps = device.createBuffer({ size: 8 * n, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
      tail.resolveQuerySet(query, 0, n, resolve, 0);
      tail.copyBufferToBuffer(resolve, 0, stamps, 0, 8 * n);
    }
    after?.(tail);

    const t0 = performance.now();
    let hostTotal = NaN;
    let perDispatchMs: DispatchTime[] | null = null;
    const submitted = (async () => {
      const ends: number[] = [];
      for (const encoder of buffers) {
        device.queue.submit([encoder.finish()]);
        if (!syncSegments) continue;
        await device.queue.onSubmittedWorkDone();
        ends.push(performance.now());
      }
      device.queue.submit([tail.finish()]);
      await device.queue.onSubmittedWorkDone();
      return syncSegments ? ends : null;
    })();
    const segmentMs = (async () => {
      const ends = await submitted;
      const finished = performance.now();
      hostTotal = finished - t0;
      paramBuf.destroy();
      for (const b of owned) b.destroy();
      const out: Record<string, number> = {};
      let prev = t0;
      let ticks: BigUint64Array | null = null;
      if (stamps) {
        await stamps.mapAsync(GPUMapMode.READ);
        ticks = new BigUint64Array(stamps.getMappedRange().slice(0));
        stamps.unmap();
        stamps.destroy();
        query?.destroy();
      }
      segs.forEach((seg, k) => {
        const span = perDispatch ? spans[k] : { first: k, last: k };
        const begin = span ? ticks?.[2 * span.first] : undefined;
        const end = span ? ticks?.[2 * span.last + 1] : undefined;
        let ms = NaN;
        if (begin !== undefined && end !== undefined && end >= begin) ms = Number(end - begin) / 1e6;
        else if (ends) ms = ends[k]! - prev;
        else if (segs.length === 1) ms = finished - t0;
        if (ends) prev = ends[k]!;
        out[seg.name] = (out[seg.name] ?? 0) + ms;
      });
      if (perDispatch && ticks) {
        const t = ticks;
        const segOf = segs.flatMap((seg) => seg.steps.filter((x) => x.kind === 'dispatch').map(() => seg.name));
        perDispatchMs = dispatches.map((d, i) => ({ kernel: d.label, segment: segOf[i]!, ms: t[2 * i + 1]! >= t[2 * i]! ? Number(t[2 * i + 1]! - t[2 * i]!) / 1e6 : NaN }));
      }
      return out;
    })();
    const dispatchMs = segmentMs.then(() => perDispatchMs);
    const deviceMs = segmentMs.then((m) => {
      const sum = Object.values(m).reduce((a, b) => a + b, 0);
      return Number.isNaN(sum) ? hostTotal : sum;
    });
    const done = submitted.then(() => undefined);
    // A caller that fails first (a readback on a lost device) never awaits the others: each
    // rejection is marked handled here, and still rejects for whoever awaits it.
    for (const p of [deviceMs, segmentMs, done, dispatchMs]) p.catch(() => {});
    return { deviceMs, segmentMs, submitted: done, dispatchMs };
  }
}
