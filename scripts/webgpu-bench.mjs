#!/usr/bin/env node
/**
 * WebGPU backend measurements on a real GPU (run by scripts/h200.sh; works on
 * any adapter, sizes by flags). Prints adapter info and limits, checks
 * correctness on a mid shape against the reference (stages exactly, sampled
 * output rows in float64), then times dense and token-sparse attention on
 * GPU-resident structured inputs generated on the GPU, and writes JSON.
 *
 *   node scripts/webgpu-bench.mjs --out FILE [--lengths 8192,16384] [--heads 32 --kv-heads 8 --head-dim 128]
 *        [--variants JSON] [--variant-length 16384] [--check-length 4096] [--reps 3] [--gaussian 8192,32768]
 *        [--phases check,variants,sweep] [--tiles-from FILE: the fastest variant of an earlier run's JSON]
 * --variants: [{"tiles": {...TileConfig fields}, "toggles": ["disable_robustness"]}, ...], dense at --variant-length.
 *
 * Kernel ("device") time comes from lastDeviceTimeMs(): timestamp queries where
 * the adapter has them, else the host clock from submit to onSubmittedWorkDone.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createWebGpuBackend } from '../dist/gpu/index.js';
import { createReferenceBackend } from '../dist/reference/index.js';
import { generateInput, Rng, STRUCTURED } from '../dist/harness/core/generators.js';
import { DIVU_WGSL } from '../dist/gpu/kernels/divu.wgsl.js';

const { values: a } = parseArgs({
  options: {
    out: { type: 'string', default: 'webgpu-bench.json' },
    lengths: { type: 'string', default: '8192,16384,32768,65536,131072' },
    gaussian: { type: 'string', default: '' },
    heads: { type: 'string', default: '32' },
    'kv-heads': { type: 'string', default: '8' },
    'head-dim': { type: 'string', default: '128' },
    variants: { type: 'string', default: '[]' },
    'variant-length': { type: 'string', default: '16384' },
    'check-length': { type: 'string', default: '4096' },
    'check-heads': { type: 'string', default: '8' },
    reps: { type: 'string', default: '3' },
    coverage: { type: 'string', default: '0.005' },
    phases: { type: 'string', default: 'check,variants,sweep' },
    'tiles-from': { type: 'string', default: '' },
  },
});
const phases = new Set(a.phases.split(','));
const H = Number(a.heads);
const Hkv = Number(a['kv-heads']);
const D = Number(a['head-dim']);
const reps = Number(a.reps);
const tau = Number(a.coverage);
const results = { adapter: null, limits: null, check: null, variants: [], runs: [], gaussian: [] };
const save = () => writeFileSync(a.out, JSON.stringify(results, null, 1));
const log = (...x) => console.log(`[${(performance.now() / 1000).toFixed(1)}s]`, ...x);
const flops = (n) => 4 * H * D * ((n * (n + 1)) / 2);
const median = (xs) => [...xs].sort((p, q) => p - q)[xs.length >> 1];

// ---------------------------------------------------------------- inputs generated on the GPU

/** A WGSL f32 literal. */
const f32 = (x) => (Number.isInteger(x) ? `${x}.0` : `${x}`);

const GEN = `
struct G { count: u32, L: u32, D: u32, group: u32, seed: u32, kind: u32, heavyShare: f32, sink: f32, head: u32 }
@group(0) @binding(0) var<uniform> g: G;
@group(0) @binding(1) var<storage, read> dir: array<f32>;
@group(0) @binding(2) var<storage, read_write> x: array<f32>;
fn hash(a: u32) -> u32 {
  let v = a * 747796405u + 2891336453u;
  let w = ((v >> ((v >> 28u) + 4u)) ^ v) * 277803737u;
  return (w >> 22u) ^ w;
}
fn unif(i: u32, salt: u32) -> f32 { return (f32(hash(i ^ hash(salt + g.seed)) >> 8u) + 0.5) / 16777216.0; }
fn normal(i: u32) -> f32 {
  let r = sqrt(-2.0 * log(unif(i, 1u)));
  return r * cos(6.283185307 * unif(i, 2u));
}
${DIVU_WGSL}
// kind 0: q = N + beta_h sqrt(D) u_g; kind 1: k = N + a_t u_g; kind 2: v = N.
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) n: vec3<u32>) {
  for (var e = gid.x; e < g.count; e = e + n.x * 256u) {
    let head = g.head;
    var val = normal(e + head * g.L * g.D);
    let t = divu(e, g.D);
    let d = e - t * g.D;
    if (g.kind == 0u) {
      let kvh = divu(head, g.group);
      let j = head - kvh * g.group;
      let beta = select(1.0 - 0.15 * f32(j) / f32(g.group - 1u), 1.0, g.group == 1u);
      val = val + beta * sqrt(f32(g.D)) * dir[kvh * g.D + d];
    } else if (g.kind == 1u) {
      var lift = 0.0;
      let key = head * g.L + t;
      if (t == 0u) { lift = g.sink; }
      else if (unif(t, 3u) < g.heavyShare) { lift = min(${f32(STRUCTURED.heavyMax)}, ${f32(STRUCTURED.heavyMin)} * pow(unif(key, 4u), -1.0 / ${f32(STRUCTURED.heavyAlpha)})); }
      val = val + lift * dir[head * g.D + d];
    }
    x[e] = val;
  }
}`;

/** Structured inputs (harness/generators.ts's distribution, GPU random numbers), or all N(0, 1) with `gaussian`. */
function generateOnGpu(backend, L, seed, gaussian = false) {
  const device = backend.device;
  const rng = new Rng(seed);
  const dir = new Float32Array(Hkv * D);
  for (let gk = 0; gk < Hkv; gk++) {
    const u = rng.fillNormal(new Float32Array(D));
    const nrm = Math.hypot(...u);
    for (let d = 0; d < D; d++) dir[gk * D + d] = u[d] / nrm;
  }
  const dirBuf = device.createBuffer({ size: dir.byteLength, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(dirBuf, 0, dir);
  const pipe = device.createComputePipeline({ layout: 'auto', compute: { module: device.createShaderModule({ code: GEN }), entryPoint: 'main' } });
  // One dispatch per head: a whole tensor can exceed maxStorageBufferBindingSize.
  const make = (heads, kind) => {
    const count = L * D;
    const buf = device.createBuffer({ size: heads * count * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
    const enc = device.createCommandEncoder();
    for (let head = 0; head < heads; head++) {
      const u = new ArrayBuffer(48);
      new Uint32Array(u, 0, 6).set([count, L, D, H / Hkv, seed * 7 + heads + kind * 1000, kind]);
      new Float32Array(u, 24, 2).set([STRUCTURED.heavyShare, STRUCTURED.sink]);
      new Uint32Array(u, 32, 1).set([head]);
      const ub = device.createBuffer({ size: 48, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
      device.queue.writeBuffer(ub, 0, u);
      const bg = device.createBindGroup({
        layout: pipe.getBindGroupLayout(0),
        entries: [
          { binding: 0, resource: { buffer: ub } },
          { binding: 1, resource: { buffer: dirBuf } },
          { binding: 2, resource: { buffer: buf, offset: head * count * 4, size: count * 4 } },
        ],
      });
      const pass = enc.beginComputePass();
      pass.setPipeline(pipe);
      pass.setBindGroup(0, bg);
      pass.dispatchWorkgroups(Math.min(65535, Math.ceil(count / 256)));
      pass.end();
    }
    device.queue.submit([enc.finish()]);
    return buf;
  };
  const [kq, kk] = gaussian ? [2, 2] : [0, 1];
  return { heads: H, kvHeads: Hkv, headDim: D, seqLen: L, q: make(H, kq), k: make(Hkv, kk), v: make(Hkv, 2) };
}

const freeInput = (x) => [x.q, x.k, x.v].forEach((b) => b.destroy());

/**
 * Median device ms of `reps` calls of the GPU path, writing into one reused output buffer, after one
 * warmup call that gets a new output buffer (its device ms: `freshOutputMs`); 1 call when the warmup took over 4 s.
 */
async function timeGpu(backend, input, options, n = reps) {
  const dev = [];
  const wall = [];
  let info = null;
  let stages = null;
  let freshOutputMs = NaN;
  const output = backend.device.createBuffer({ size: input.seqLen * input.heads * input.headDim * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
  for (let i = 0; i <= n; i++) {
    const t0 = performance.now();
    const r = await backend.tokenSparseAttentionGpu(i === 0 ? input : { ...input, output }, options);
    await r.done;
    const t1 = performance.now() - t0;
    if (i === 0) {
      freshOutputMs = backend.lastDeviceTimeMs();
      r.output.destroy();
      if (t1 > 4000) n = 1;
    } else {
      dev.push(backend.lastDeviceTimeMs());
      wall.push(t1);
    }
    if (i === n) {
      info = await r.info();
      stages = await r.stageMs;
    }
  }
  output.destroy();
  return { deviceMs: median(dev), wallMs: median(wall), all: dev, freshOutputMs, info, stages };
}

// ---------------------------------------------------------------- correctness on a mid shape

function f64Rows(input, h, idx, rows) {
  // f64 causal attention of compact rows `rows` over kept positions idx (ascending).
  const { headDim: Dd, seqLen: L, q, k, v } = input;
  const g = Math.floor(h / (input.heads / input.kvHeads));
  const out = [];
  for (const r of rows) {
    const qo = (h * L + idx[r]) * Dd;
    const s = new Float64Array(r + 1);
    let m = -Infinity;
    for (let b = 0; b <= r; b++) {
      const ko = (g * L + idx[b]) * Dd;
      let x = 0;
      for (let d = 0; d < Dd; d++) x += q[qo + d] * k[ko + d];
      s[b] = x / Math.sqrt(Dd);
      if (s[b] > m) m = s[b];
    }
    const acc = new Float64Array(Dd);
    let l = 0;
    for (let b = 0; b <= r; b++) {
      const p = Math.exp(s[b] - m);
      l += p;
      const vo = (g * L + idx[b]) * Dd;
      for (let d = 0; d < Dd; d++) acc[d] += p * v[vo + d];
    }
    out.push(acc.map((x) => x / l));
  }
  return out;
}

async function check(backend) {
  const L = Number(a['check-length']);
  const Hc = Number(a['check-heads']);
  const input = generateInput('structured', { heads: Hc, kvHeads: Math.max(1, Hc / (H / Hkv)), headDim: D, seqLen: L }, 11);
  const o = { coverage: tau, window: 128, poolKernel: 7, minTokens: 1024 };
  const ref = createReferenceBackend();
  const shape = { heads: Hc, prefixLen: L - 128 };
  const t0 = performance.now();
  const sRef = await ref.scores(input, o);
  const sGpu = await backend.scores(input, o);
  let scoreRel = 0;
  sRef.forEach((x, i) => (scoreRel = Math.max(scoreRel, Math.abs(sGpu[i] - x) / Math.abs(x))));
  const pRef = await ref.pool(sRef, shape, o);
  const bRef = await ref.budget(pRef, shape, o);
  const bGpu = await backend.budget(pRef, shape, o);
  const iRef = await ref.select(pRef, shape, bRef.keep, o);
  const iGpu = await backend.select(pRef, shape, bRef.keep, o);
  const res = await backend.tokenSparseAttention(input, o);
  const rng = new Rng(5);
  let outErr = 0;
  let denseErr = 0;
  const dense = await backend.dense(input);
  const all = Int32Array.from({ length: L }, (_, t) => t);
  for (let h = 0; h < Hc; h++) {
    const Lc = res.keptLength;
    const idx = res.indices ? res.indices.subarray(h * Lc, (h + 1) * Lc) : all;
    const rows = Array.from({ length: 8 }, () => rng.u32() % Lc).concat([Lc - 1]);
    f64Rows(input, h, idx, rows).forEach((row, j) => {
      const t = idx[rows[j]];
      row.forEach((x, d) => (outErr = Math.max(outErr, Math.abs(res.output[(t * Hc + h) * D + d] - x))));
    });
    const drows = Array.from({ length: 4 }, () => rng.u32() % L).concat([L - 1]);
    f64Rows(input, h, all, drows).forEach((row, j) => {
      row.forEach((x, d) => (denseErr = Math.max(denseErr, Math.abs(dense[(drows[j] * Hc + h) * D + d] - x))));
    });
  }
  results.check = {
    shape: { H: Hc, D, L },
    scoreMaxRel: scoreRel,
    budgetRef: bRef,
    budgetGpu: bGpu,
    budgetExact: JSON.stringify(bRef) === JSON.stringify(bGpu),
    selectExact: iRef.length === iGpu.length && iRef.every((x, i) => x === iGpu[i]),
    pipelineBudget: res.budget,
    pipelineKeptLength: res.keptLength,
    sampledRowsMaxAbsErr: outErr,
    denseSampledRowsMaxAbsErr: denseErr,
    seconds: (performance.now() - t0) / 1000,
  };
  log('check', JSON.stringify(results.check));
  save();
}

// ---------------------------------------------------------------- main

let tiles;
if (a['tiles-from']) {
  const best = JSON.parse(readFileSync(a['tiles-from'], 'utf8'))
    .variants.filter((v) => !v.error && !v.toggles)
    .sort((p, q) => q.tflops - p.tflops)[0];
  tiles = best?.tiles;
  results.tiles = tiles ?? null;
  log('tiles of the fastest variant:', JSON.stringify(tiles ?? {}));
}
const main = await createWebGpuBackend({ tiles });
results.adapter = main.description;
results.limits = {};
for (const k in main.device.limits) if (typeof main.device.limits[k] === 'number') results.limits[k] = main.device.limits[k];
results.features = [...main.device.features];
log(main.description);
log('limits', JSON.stringify(results.limits));
save();

// Cost rule off (the spec's pipeline): timed as is, and profiled per stage (host waits between stages).
const spec = await createWebGpuBackend({ costRule: false, device: main.device, tiles });
const off = await createWebGpuBackend({ costRule: false, profileStages: true, device: main.device, tiles });
if (phases.has('check')) await check(off);
if (phases.has('check')) await probeBuffers(main.device);

/** Can this device hold (write and read back the last word of) buffers at and just below maxBufferSize? */
async function probeBuffers(device) {
  results.bufferProbe = [];
  for (const size of [device.limits.maxBufferSize, device.limits.maxBufferSize - 256, 2 ** 30]) {
    const rec = { size };
    try {
      const b = device.createBuffer({ size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
      device.queue.writeBuffer(b, size - 16, new Uint32Array([1, 2, 3, 0xdeadbeef]));
      const st = device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
      const enc = device.createCommandEncoder();
      enc.copyBufferToBuffer(b, size - 16, st, 0, 16);
      device.queue.submit([enc.finish()]);
      await st.mapAsync(GPUMapMode.READ);
      rec.lastWord = new Uint32Array(st.getMappedRange())[3].toString(16);
      rec.ok = rec.lastWord === 'deadbeef';
      st.destroy();
      b.destroy();
    } catch (e) {
      rec.error = String(e.message ?? e);
    }
    results.bufferProbe.push(rec);
    log('buffer probe', JSON.stringify(rec));
  }
  save();
}

for (const v of phases.has('variants') ? JSON.parse(a.variants) : []) {
  const L = Number(a['variant-length']);
  let b;
  try {
    b = await createWebGpuBackend({ tiles: v.tiles, ...(v.toggles ? { dawnToggles: v.toggles } : { device: main.device }) });
    const x = generateOnGpu(b, L, 1);
    const r = await timeGpu(b, x, { coverage: 0 });
    const rec = { ...v, L, deviceMs: r.deviceMs, all: r.all, tflops: flops(L) / r.deviceMs / 1e9, description: b.description };
    results.variants.push(rec);
    log('variant', JSON.stringify(rec));
    freeInput(x);
  } catch (e) {
    results.variants.push({ ...v, error: String(e.message ?? e) });
    log('variant', JSON.stringify(v), 'failed', e.message);
  }
  await b?.dispose();
  save();
}

for (const [kind, list] of phases.has('sweep') ? [['gaussian', a.gaussian], ['structured', a.lengths]] : []) {
  for (const L of list.split(',').filter(Boolean).map(Number)) {
    try {
      await sweepOne(kind, L);
    } catch (e) {
      (kind === 'structured' ? results.runs : results.gaussian).push({ kind, L, error: String(e.message ?? e) });
      log(kind, L, 'failed:', e.message);
      save();
    }
  }
}

async function sweepOne(kind, L) {
  {
    const input = generateOnGpu(main, L, 2, kind === 'gaussian');
    const dense = await timeGpu(main, input, { coverage: 0 });
    const tsa = await timeGpu(main, input, { coverage: tau });
    const specFast = await timeGpu(spec, input, { coverage: tau });
    const prof = await timeGpu(off, input, { coverage: tau }, 1);
    const keptLength = prof.info.keptLength;
    const rec = {
      kind,
      L,
      denseMs: dense.deviceMs,
      denseWallMs: dense.wallMs,
      denseTflops: flops(L) / dense.deviceMs / 1e9,
      denseFreshOutputMs: dense.freshOutputMs,
      tsaMs: tsa.deviceMs,
      tsaWallMs: tsa.wallMs,
      tsaBudget: tsa.info.budget,
      specBudget: prof.info.budget,
      keptFraction: keptLength / L,
      speedup: dense.deviceMs / tsa.deviceMs,
      ideal: (L / keptLength) ** 2,
      specTsaMs: specFast.deviceMs,
      specSpeedup: dense.deviceMs / specFast.deviceMs,
      profiledTsaMs: prof.deviceMs,
      specStagesMs: prof.stages,
    };
    rec.selectionMs = ['scores', 'pool', 'budget', 'select'].reduce((s, k) => s + (prof.stages[k] ?? 0), 0);
    rec.selectionShareOfDense = rec.selectionMs / dense.deviceMs;
    (kind === 'structured' ? results.runs : results.gaussian).push(rec);
    log(kind, JSON.stringify(rec));
    save();
    freeInput(input);
  }
}

await off.dispose();
await spec.dispose();
await main.dispose();
log('done');
