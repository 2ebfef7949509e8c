/** The GPU stage budget (kernels in ../kernels/budget.wgsl.ts): the exact keep count into the state buffer. */
import type { ResolvedTsaOptions } from '../../harness/core/interface.js';
import {
  BUDGET_BUCKETS,
  BUDGET_CHOOSE,
  BUDGET_DECIDE,
  BUDGET_FIX,
  BUDGET_HIST,
  BUDGET_INIT,
  BUDGET_MAX,
  budgetRadixKernel,
  HIST_ITEMS,
} from '../kernels/budget.wgsl.js';
import { wholeWindow, type HeadTensor } from '../resources.js';
import { ceilDiv, stateBuffer, STORAGE_USAGE, wholeHeads, type Dims, type StageCtx } from './common.js';

/**
 * Coverage as the 64-bit binary fraction floor(tau * 2^64), split into two u32.
 * A coverage below 2^-64 (about 5.4e-20) becomes 0: the rule then prunes
 * nothing (README, WebGPU backend options).
 */
export function tau64(tau: number): { tauLo: number; tauHi: number } {
  const t = BigInt(Math.floor(tau * 2 ** 64));
  return { tauLo: Number(t & 0xffffffffn), tauHi: Number((t >> 32n) & 0xffffffffn) };
}

/** Workgroups of a grid-stride kernel over n elements (at most 1024). */
const spread = (n: number, wg: number) => Math.min(1024, Math.max(1, ceilDiv(n, wg)));

/**
 * budget: the exact keep count on the GPU into the state buffer;
 * `maxKeptLength` is the cost rule's bound on L' (L: none).
 */
export function budget(ctx: StageCtx, d: Dims, pooled: HeadTensor, o: ResolvedTsaOptions, maxKeptLength: number): GPUBuffer {
  const { rec } = ctx;
  const state = stateBuffer(ctx);
  const hist = wholeWindow(ctx.pool.get('budget.hist', BUDGET_BUCKETS * 5 * 4, STORAGE_USAGE));
  const keys = wholeWindow(ctx.pool.get('budget.keys', d.P * 16, STORAGE_USAGE), d.P * 16);
  const pw = wholeHeads(ctx, pooled, 'pooled scores');
  const sw = wholeWindow(state);

  // 128-bit fixed point: the largest value maps below 2^kBits so that H * P values sum below 2^127;
  // C = H * 1e-8 * 2^s stays below 2^125.
  const kBits = 127 - Math.ceil(Math.log2(d.H * d.P + 1));
  const c = d.H * 1e-8;
  const sCap = Math.ceil(125 - Math.log2(c)) - 1;
  const cHi = Math.fround(c);
  const cLo = Math.fround(c - cHi);
  const topBit = kBits + Math.ceil(Math.log2(d.H));
  const firstByte = Math.ceil(topBit / 8) - 1;

  rec.dispatch(BUDGET_INIT, { P: d.P }, { state: sw, hist }, [1]);
  rec.dispatch(BUDGET_MAX, { count: d.H * d.P }, { pooled: pw, state: sw }, [spread(d.H * d.P, BUDGET_MAX.workgroupSize)]);
  rec.dispatch(BUDGET_FIX, { P: d.P, H: d.H, kBits, sCap }, { pooled: pw, keys, state: sw }, [spread(d.P, BUDGET_FIX.workgroupSize)]);
  const theta = { ...tau64(o.coverage), cHi, cLo };
  const decide = { W: d.W, L: d.L, minTokens: Math.min(o.minTokens, 0xffffffff), maxKeptLength };
  if (d.P <= ctx.radixOneGroupKeys) {
    rec.dispatch(budgetRadixKernel(radixThreads(ctx.device.limits)), { P: d.P, firstByte, ...theta, ...decide }, { keys, state: sw }, [1]);
    return state;
  }
  for (let byte = firstByte; byte >= 0; byte--) {
    const pass = { word: byte >> 2, shift: 8 * (byte & 3) };
    rec.dispatch(BUDGET_HIST, { P: d.P, ...pass }, { keys, state: sw, hist }, [ceilDiv(d.P, BUDGET_HIST.workgroupSize * HIST_ITEMS)]);
    const ends = { first: byte === firstByte ? 1 : 0, last: byte === 0 ? 1 : 0 };
    rec.dispatch(BUDGET_CHOOSE, { ...pass, ...ends, ...theta }, { state: sw, hist }, [1]);
  }
  rec.dispatch(BUDGET_DECIDE, { P: d.P, ...decide }, { state: sw }, [1]);
  return state;
}

/**
 * Threads of the one-workgroup budgetRadix: 1024 where the device allows (each thread's key range
 * a quarter of what 256 threads take: the histogram's atomics are the kernel's cost), else fewer.
 */
export function radixThreads(limits: Pick<GPUSupportedLimits, 'maxComputeInvocationsPerWorkgroup' | 'maxComputeWorkgroupSizeX'>): number {
  const most = Math.min(limits.maxComputeInvocationsPerWorkgroup, limits.maxComputeWorkgroupSizeX);
  return [1024, 512, BUDGET_BUCKETS].find((t) => t <= most) ?? BUDGET_BUCKETS;
}
