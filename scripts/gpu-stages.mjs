#!/usr/bin/env node
/**
 * Per-stage device times of the WebGPU backend's resident layer (tokenSparseAttentionGpu, inputs
 * generated on the device, timestamp queries), for dense, the cost rule, the spec's pipeline
 * (costRule false) and XAttention, with the decision of each call; and the wall time of the
 * cost rule's calibration, with the part of it spent creating pipelines. The per-stage view
 * `tsa bench` does not print (BENCHMARKS.md quotes it).
 *
 *   node scripts/gpu-stages.mjs [--lengths 8192,16384] [--inputs structured,gaussian]
 *     [--cases dense,rule,spec,xattn] [--precision f32|f16] [--score-logits-bytes N]
 *     [--heads 32 --kv-heads 8 --head-dim 128] [--calls 4] [--adapter vulkan|opengl]
 *     [--dispatches]   also each kernel's device time (backend option profileDispatches:
 *                      one timed pass per dispatch), summed per kernel name and segment
 *     [--options JSON] more backend options, e.g. '{"radixOneGroupKeys":0}'
 *
 * Run `npm run build` first. Each case: --calls calls, the median of all but the first (each call's
 * device ms follow it in parentheses).
 */
import { parseArgs } from 'node:util';
import { createWebGpuBackend, describeCostModel } from '../dist/harness/index.js';
import { generateInputOnGpu } from '../dist/gpu/index.js';

const { values: a } = parseArgs({
  options: {
    lengths: { type: 'string', default: '8192,16384' },
    inputs: { type: 'string', default: 'structured,gaussian' },
    cases: { type: 'string', default: 'dense,rule,spec' },
    precision: { type: 'string', default: 'f32' },
    'score-logits-bytes': { type: 'string' },
    heads: { type: 'string', default: '32' },
    'kv-heads': { type: 'string', default: '8' },
    'head-dim': { type: 'string', default: '128' },
    calls: { type: 'string', default: '4' },
    adapter: { type: 'string', default: 'vulkan' },
    dispatches: { type: 'boolean', default: false },
    options: { type: 'string', default: '{}' },
  },
});
const CASES = {
  dense: { coverage: 0 },
  rule: {},
  spec: { costRule: false },
  xattn: { coverage: 0, blockSparse: { method: 'xattention' } },
};
const shape = { heads: Number(a.heads), kvHeads: Number(a['kv-heads']), headDim: Number(a['head-dim']) };
const b = await createWebGpuBackend({
  adapter: a.adapter,
  precision: a.precision,
  profileDispatches: a.dispatches,
  ...JSON.parse(a.options),
  ...(a['score-logits-bytes'] ? { scoreLogitsBytes: Number(a['score-logits-bytes']) } : {}),
});
globalThis.__keep = b; // the webgpu package needs its object alive while work is pending
// The calibration's share spent creating pipelines (compiling kernels): those created one at a
// time (createComputePipeline: their summed time) and side by side (createComputePipelineAsync,
// Recorder.prepare: the wall time while any was pending).
const created = { n: 0, ms: 0, async: 0, pending: 0, since: 0, asyncMs: 0 };
const create = b.device.createComputePipeline.bind(b.device);
b.device.createComputePipeline = (descriptor) => {
  const t0 = performance.now();
  const p = create(descriptor);
  created.n++;
  created.ms += performance.now() - t0;
  return p;
};
const createAsync = b.device.createComputePipelineAsync.bind(b.device);
b.device.createComputePipelineAsync = (descriptor) => {
  created.async++;
  if (created.pending++ === 0) created.since = performance.now();
  return createAsync(descriptor).finally(() => {
    if (--created.pending === 0) created.asyncMs += performance.now() - created.since;
  });
};
const t = performance.now();
const rates = await b.costRates();
console.log(`rates: ${describeCostModel(rates)}`);
console.log(
  `calibration ${(performance.now() - t).toFixed(0)} ms wall, of which pipelines: ${created.async} side by side in ${created.asyncMs.toFixed(0)} ms, ` +
    `${created.n} one at a time in ${created.ms.toFixed(0)} ms`,
);
const median = (xs) => [...xs].sort((p, q) => p - q)[(xs.length - 1) >> 1];
/** Dispatch times summed per (segment, kernel): "segment/kernel xN ms", largest first. */
const perKernel = (ds) => {
  const sums = new Map();
  for (const d of ds) {
    const key = `${d.segment}/${d.kernel}`;
    const e = sums.get(key) ?? { n: 0, ms: 0 };
    sums.set(key, { n: e.n + 1, ms: e.ms + d.ms });
  }
  const total = ds.reduce((t, d) => t + d.ms, 0);
  const rows = [...sums].sort((x, y) => y[1].ms - x[1].ms).map(([k, e]) => `${k} x${e.n} ${e.ms.toFixed(3)}`);
  return `  ${ds.length} dispatches, ${total.toFixed(3)} ms in kernels: ${rows.join(', ')}`;
};
const fmt = (o) => Object.entries(o).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ');
for (const L of a.lengths.split(',').map(Number)) {
  for (const kind of a.inputs.split(',')) {
    const input = await generateInputOnGpu(b.device, kind, { ...shape, seqLen: L }, 1);
    const output = b.device.createBuffer({ size: L * shape.heads * shape.headDim * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
    for (const name of a.cases.split(',')) {
      const runs = [];
      for (let i = 0; i < Number(a.calls); i++) {
        const r = await b.tokenSparseAttentionGpu({ ...input, output }, CASES[name]);
        await r.done;
        runs.push({ ms: b.lastDeviceTimeMs(), info: await r.info(), stages: await r.stageMs, dispatches: await r.dispatchMs });
      }
      const ms = median(runs.slice(1).map((r) => r.ms));
      const { info, stages, dispatches } = runs.find((r) => r.ms === ms) ?? runs[0];
      const why = info.budget.reason ? ` ${info.budget.reason}${info.budget.detail ? `: ${info.budget.detail}` : ''}` : '';
      const blocks = info.blockDecision ? `; blocks ${info.blockDecision.verdict}` : '';
      const each = runs.map((r) => r.ms.toFixed(2)).join(' ');
      console.log(`L ${L} ${kind} ${name}: ${ms.toFixed(2)} ms (calls ${each}), L' ${info.keptLength} (${info.budget.mode}${why}${blocks}) | ${fmt(stages)}`);
      if (dispatches) console.log(perKernel(dispatches));
    }
    for (const x of [input.q, input.k, input.v, output]) x.destroy();
  }
}
process.exit(0);
