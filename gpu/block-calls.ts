/// <reference types="@webgpu/types" preserve="true" />
/**
 * The WebGPU backend's XAttention stage calls (blockScores, blockSelect, attendBlocks): each
 * uploads its inputs, records its kernels (stages/block-scores.ts, block-select.ts, attend.ts in
 * block mode) and reads its result back. The composed layer keeps them on the device (layer.ts).
 */
import type { BlockStages } from '../harness/core/block-sparse.js';
import { blockCount, blockSparseOf } from '../harness/core/validate.js';
import type { GpuCore } from './core.js';
import { GATE } from './kernels/attend.wgsl.js';
import { STATE } from './kernels/state.js';
import { writeState } from './layer.js';
import { attend, scatter } from './stages/attend.js';
import { blockScores } from './stages/block-scores.js';
import { blockLists, blockSelect, maskBytes, padMaskRows } from './stages/block-select.js';
import { dimsOf, STORAGE_USAGE } from './stages/common.js';
import { selectionBuffers } from './stages/select.js';

export function blockStageCalls(core: GpuCore): BlockStages {
  const put = (name: string, bytes: Uint8Array | Float32Array): GPUBuffer => {
    const buf = core.buffers.get(name, bytes.byteLength, STORAGE_USAGE);
    const whole = new Uint8Array(Math.ceil(bytes.byteLength / 4) * 4);
    whole.set(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    core.device.queue.writeBuffer(buf, 0, whole);
    return buf;
  };
  return {
    async blockScores(input, o) {
      const d = dimsOf(input, 0);
      const nb = blockCount(d.L, o);
      const ctx = core.stageCtx();
      const q = core.upload('in.q', input.q, d.H, d.L * d.D);
      const k = core.upload('in.k', input.k, d.Hkv, d.L * d.D);
      const masses = blockScores(ctx, d, q, k, d.G, blockSparseOf(o), GATE.always);
      return new Float32Array((await core.execute(ctx, [{ src: masses, bytes: d.H * nb * nb * 4 }], o)).data[0]!);
    },
    async blockSelect(masses, shape, o) {
      const bs = blockSparseOf(o);
      const { heads: H, blocks: nb } = shape;
      const ctx = core.stageCtx();
      const mask = blockSelect(ctx, H, nb * bs.blockSize, put('block.masses.in', masses), bs, GATE.always);
      const data = (await core.execute(ctx, [{ src: mask, bytes: maskBytes(H, nb) }], o)).data[0]!;
      return padMaskRows(new Uint8Array(data), H, nb, true);
    },
    async attendBlocks(input, mask, o) {
      const d = dimsOf(input, 0);
      const B = blockSparseOf(o).blockSize;
      const nb = blockCount(d.L, o);
      const ctx = core.stageCtx(o);
      const t = core.inputTensors(input);
      const lists = blockLists(ctx, d.H, d.L, put('block.mask.in', padMaskRows(mask, d.H, nb, false)), B, GATE.always);
      writeState(ctx, { mode: STATE.modeDense, keptLength: d.L });
      const out = core.outputBuffer(input);
      scatter(ctx, d, attend(ctx, d, t.q, t.k, t.v, d.G, GATE.always, lists), selectionBuffers(ctx, d), out);
      return new Float32Array((await core.execute(ctx, [{ src: out, bytes: d.L * d.H * d.D * 4 }], o)).data[0]!);
    },
  };
}
