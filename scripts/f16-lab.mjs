#!/usr/bin/env node
/**
 * f16 attention kernel lab: checks the f16 kernels (subgroup-matrix attend-f16 where the adapter has
 * `chromium-experimental-subgroup-matrix`, the plain f16 kernel everywhere with `shader-f16`) against
 * a float64 reference on the f16-rounded inputs on small shapes, then times variants of dense causal
 * attention (H 32, Hkv 8, D 128 by default) with timestamp queries.
 *
 *   node scripts/f16-lab.mjs [--out FILE] [--lengths 16384,32768] [--variants JSON] [--plain] [--reps 3]
 *        [--emulate] [--budget SECONDS]
 *
 * Kernels load from ../dist/gpu/kernels (npx tsc first) or from $F16LAB_KERNELS (a folder URL
 * relative to this file), so the script runs from a copy with the compiled kernels beside it.
 * A variant: F16MatrixConfig without dp ({sg, bn, threshold, prefetch, lean, vecKV, vecQ, soloRows})
 * or {plain: true}. --emulate: subgroup matrices emulated in plain WGSL (f16-lab-checks.mjs), small
 * shapes, any adapter. Env: F16LAB_SHAPES (JSON check shapes), F16LAB_DEBUG=1 (print bad rows).
 * On an adapter with subgroup matrices it first runs the primitive checks (f16-lab-checks.mjs).
 * Dawn on Vulkan with allow_unsafe_apis, vulkan_enable_f16_on_nvidia, use_vulkan_memory_model, and
 * timestamp_quantization off.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { create, globals } from 'webgpu';
import { emulate, fromHalf, prims, toHalf } from './f16-lab-checks.mjs';

Object.assign(globalThis, globals);
const { values: a } = parseArgs({
  options: {
    out: { type: 'string', default: '' },
    lengths: { type: 'string', default: '16384' },
    variants: { type: 'string', default: '' },
    plain: { type: 'boolean', default: false },
    emulate: { type: 'boolean', default: false },
    reps: { type: 'string', default: '3' },
    budget: { type: 'string', default: '400' },
  },
});
const dir = process.env.F16LAB_KERNELS ?? '../dist/gpu/kernels/';
const K = (f) => import(new URL(dir + f, import.meta.url).href);
const { ATTEND_F16_PARAMS, ROW_ALIGN, attendF16Kernel, attendF16SharedBytes, matrixLoad, matrixStore } = await K('attend-f16.wgsl.js');
const { attendF16PlainKernel, PLAIN_ROWS } = await K('attend-f16-plain.wgsl.js');
const { packParams } = await K('params.js');
const { kernelWgsl } = await K('kernel.js');
const attendF16MatrixWgsl = (c) => kernelWgsl(attendF16Kernel(c));
const attendF16PlainWgsl = (dp) => kernelWgsl(attendF16PlainKernel(dp));

const t0 = performance.now();
const log = (...x) => console.log(`[${((performance.now() - t0) / 1000).toFixed(1)}s]`, ...x);
const gpu = create([
  'backend=vulkan',
  'enable-dawn-features=allow_unsafe_apis,vulkan_enable_f16_on_nvidia,use_vulkan_memory_model,disable_polyfills_on_integer_div_and_mod',
  'disable-dawn-features=timestamp_quantization',
]);
globalThis.__keep = gpu;
const ad = await gpu.requestAdapter({ powerPreference: 'high-performance' });
const configs = [...(ad.info.subgroupMatrixConfigs ?? [])].map((c) => ({
  componentType: c.componentType, resultComponentType: c.resultComponentType, M: c.M, N: c.N, K: c.K,
}));
const want = ['shader-f16', 'subgroups', 'chromium-experimental-subgroup-matrix', 'timestamp-query'].filter((f) => ad.features.has(f));
const lim = (k) => ad.limits[k];
const dev = await ad.requestDevice({
  requiredFeatures: want,
  requiredLimits: Object.fromEntries(['maxStorageBufferBindingSize', 'maxBufferSize', 'maxComputeWorkgroupStorageSize', 'maxComputeInvocationsPerWorkgroup', 'maxComputeWorkgroupSizeX'].map((k) => [k, lim(k)])),
});
const matrix = dev.features.has('chromium-experimental-subgroup-matrix');
const results = { adapter: { ...Object.fromEntries(['vendor', 'architecture', 'device', 'description', 'subgroupMinSize', 'subgroupMaxSize'].map((k) => [k, ad.info[k]])), configs, features: want }, checks: [], timings: [], warnings: [], prims: [] };
log('adapter', JSON.stringify(results.adapter));
const save = () => a.out && writeFileSync(a.out, JSON.stringify(results, null, 1));

let seed = 12345;
const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
const gauss = () => Math.sqrt(-2 * Math.log(rnd() + 1e-12)) * Math.cos(2 * Math.PI * rnd());

/** 4096 f16 values of a standard normal times `scale`, so inputs of any size fill fast. */
function table(scale) {
  const t = new Uint16Array(4096);
  for (let i = 0; i < t.length; i++) t[i] = toHalf(gauss() * scale);
  return t;
}
/** f16-layout tensor [heads][Lp][DP]: random table values for row < n, col < D, zeros elsewhere. */
function f16Tensor(heads, n, D, DP, scale) {
  const Lp = Math.ceil(n / ROW_ALIGN) * ROW_ALIGN;
  const bits = new Uint16Array(heads * Lp * DP);
  const t = table(scale);
  for (let h = 0; h < heads; h++) for (let r = 0; r < n; r++) {
    const at = (h * Lp + r) * DP;
    for (let c = 0; c < D; c++) bits[at + c] = t[(rnd() * 4096) | 0];
  }
  return { bits, Lp };
}
function buffer(data, usage) {
  const b = dev.createBuffer({ size: Math.max(16, Math.ceil(data.byteLength / 16) * 16), usage: usage | GPUBufferUsage.COPY_DST });
  dev.queue.writeBuffer(b, 0, data.buffer, data.byteOffset, data.byteLength);
  return b;
}
async function pipelineFor(code) {
  dev.pushErrorScope('validation');
  const mod = dev.createShaderModule({ code });
  const info = await mod.getCompilationInfo();
  for (const m of info.messages) {
    const line = `${m.type} ${m.lineNum}:${m.linePos} ${m.message}`;
    if (m.type === 'error') throw new Error(`wgsl: ${line}\n${code.split('\n')[m.lineNum - 1]}`);
    if (results.warnings.length < 20 && !results.warnings.includes(line)) results.warnings.push(line);
  }
  const pipe = await dev.createComputePipelineAsync({ layout: 'auto', compute: { module: mod, entryPoint: 'main' } });
  const err = await dev.popErrorScope();
  if (err) throw new Error(`pipeline: ${err.message}`);
  return pipe;
}
const qs = dev.createQuerySet({ type: 'timestamp', count: 2 });
const qb = dev.createBuffer({ size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
const qr = dev.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
const state = buffer(new Uint32Array(32), GPUBufferUsage.STORAGE);

/** Inputs of the last shape (reused by every variant). */
const inputs = {};
/** Set up one dense causal problem on the GPU; returns run(n dispatches) -> ms per dispatch, read(). */
async function problem(v, { n, H, Hkv, D, qScale = 1 }) {
  const DP = Math.ceil(D / 16) * 16;
  const scale = 1 / Math.sqrt(D);
  const key = JSON.stringify({ n, H, Hkv, D, qScale });
  if (inputs.key !== key) {
    inputs.bufs?.forEach((b) => b.destroy());
    const Q = f16Tensor(H, n, D, DP, qScale * scale);
    const Kt = f16Tensor(Hkv, n, D, DP, 1);
    const Vt = f16Tensor(Hkv, n, D, DP, 1);
    Object.assign(inputs, { key, Q, Kt, Vt, bufs: [Q, Kt, Vt].map((x) => buffer(x.bits, GPUBufferUsage.STORAGE)) });
  }
  const { Q, Kt, Vt } = inputs;
  const kernel = v.plain ? attendF16PlainWgsl(DP) : attendF16MatrixWgsl({ ...v, dp: DP });
  const code = a.emulate && !v.plain ? emulate(kernel) : kernel;
  const pipe = await pipelineFor(code);
  const rows = v.plain ? PLAIN_ROWS : 16 * v.sg;
  const oBytes = H * n * D * 4;
  const out = dev.createBuffer({ size: oBytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
  const params = buffer(new Uint8Array(packParams(ATTEND_F16_PARAMS, { n, dim: D, qHeadStride: Q.Lp * DP, kvHeadStride: Kt.Lp * DP, oHeadStride: n * D, kvDiv: H / Hkv })), GPUBufferUsage.UNIFORM);
  const bufs = [params, ...inputs.bufs, out, state];
  const bg = dev.createBindGroup({ layout: pipe.getBindGroupLayout(0), entries: bufs.map((b, i) => ({ binding: i, resource: { buffer: b } })) });
  const groups = Math.ceil(n / rows);
  const run = async (reps) => {
    const enc = dev.createCommandEncoder();
    const pass = enc.beginComputePass({ timestampWrites: { querySet: qs, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } });
    pass.setPipeline(pipe);
    pass.setBindGroup(0, bg);
    for (let r = 0; r < reps; r++) pass.dispatchWorkgroups(groups, H);
    pass.end();
    enc.resolveQuerySet(qs, 0, 2, qb, 0);
    enc.copyBufferToBuffer(qb, 0, qr, 0, 16);
    dev.queue.submit([enc.finish()]);
    await qr.mapAsync(GPUMapMode.READ);
    const t = new BigUint64Array(qr.getMappedRange().slice(0));
    qr.unmap();
    return Number(t[1] - t[0]) / 1e6 / reps;
  };
  const read = async () => {
    const st = dev.createBuffer({ size: oBytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const enc = dev.createCommandEncoder();
    enc.copyBufferToBuffer(out, 0, st, 0, oBytes);
    dev.queue.submit([enc.finish()]);
    await st.mapAsync(GPUMapMode.READ);
    const o = new Float32Array(st.getMappedRange().slice(0));
    st.destroy();
    return o;
  };
  const poison = () => dev.queue.writeBuffer(out, 0, new Uint32Array(oBytes / 4).fill(0x7fc00000));
  const destroy = () => [params, out].forEach((b) => b.destroy());
  return { run, read, poison, destroy, Q, Kt, Vt, DP };
}

/** float64 reference on the f16 inputs; returns max |err| / max |V| and relative L2 error. */
function check(o, { n, H, Hkv, D }, { Q, Kt, Vt, DP }) {
  let maxErr = 0, num = 0, den = 0, maxV = 0, bad = 0;
  for (let i = 0; i < Vt.bits.length; i++) maxV = Math.max(maxV, Math.abs(fromHalf(Vt.bits[i])));
  const qf = (h, r, c) => fromHalf(Q.bits[(h * Q.Lp + r) * DP + c]);
  const kf = (h, r, c) => fromHalf(Kt.bits[(h * Kt.Lp + r) * DP + c]);
  const vf = (h, r, c) => fromHalf(Vt.bits[(h * Vt.Lp + r) * DP + c]);
  for (let h = 0; h < H; h++) {
    const kh = Math.floor(h / (H / Hkv));
    for (let r = 0; r < n; r += r < 40 ? 1 : 7) {
      const s = new Float64Array(r + 1);
      let m = -Infinity;
      for (let j = 0; j <= r; j++) { let x = 0; for (let c = 0; c < D; c++) x += qf(h, r, c) * kf(kh, j, c); s[j] = x; m = Math.max(m, x); }
      let l = 0;
      for (let j = 0; j <= r; j++) { s[j] = Math.exp(s[j] - m); l += s[j]; }
      for (let c = 0; c < D; c++) {
        let x = 0;
        for (let j = 0; j <= r; j++) x += s[j] * vf(kh, j, c);
        x /= l;
        const g = o[(h * n + r) * D + c];
        if (!Number.isFinite(g)) bad++;
        if (process.env.F16LAB_DEBUG && Math.abs(g - x) > 1e-2 * maxV && c === 0) console.log('bad row', h, r, 'got', g, 'want', x);
        maxErr = Math.max(maxErr, Math.abs(g - x));
        num += (g - x) ** 2;
        den += x * x;
      }
    }
  }
  return { maxErrOverMaxV: maxErr / maxV, relL2: Math.sqrt(num / den), nonFinite: bad };
}

if (matrix) await prims({ dev, toHalf, buffer, pipelineFor, results, log, save, matrixLoad, matrixStore });

const variants = a.variants ? JSON.parse(a.variants) : [
  { sg: 8, bn: 32, threshold: 8, prefetch: true, lean: true, vecKV: true },
  { sg: 8, bn: 32, threshold: 8, prefetch: true, lean: true, vecKV: true, soloRows: true },
  { sg: 8, bn: 32, threshold: 8, prefetch: true },
  { sg: 8, bn: 32, threshold: 8, soloRows: true },
  { sg: 8, bn: 32, threshold: 0, prefetch: true, vecKV: true },
  { sg: 1, bn: 32, threshold: 8, noTime: true },
  { sg: 4, bn: 32, threshold: 8, prefetch: true, vecKV: true },
  { sg: 8, bn: 16, threshold: 8, prefetch: true, vecKV: true },
  { sg: 8, bn: 32, threshold: 8, prefetch: true, lean: true, vecKV: true, vecQ: true },
];
const all = [...((matrix || a.emulate) && !a.plain ? variants.filter((v) => !a.emulate || !(v.vecKV || v.vecQ)) : []), { plain: true }];
const shapes = process.env.F16LAB_SHAPES ? JSON.parse(process.env.F16LAB_SHAPES) : a.emulate
  ? [{ n: 200, H: 2, Hkv: 1, D: 32, qScale: 3 }, { n: 40, H: 1, Hkv: 1, D: 24 }]
  : [
      { n: 200, H: 4, Hkv: 2, D: 128 },
      { n: 333, H: 2, Hkv: 1, D: 64, qScale: 3 },
      { n: 129, H: 2, Hkv: 2, D: 40 },
    ];
const label = (v) => (v.plain ? 'plain' : `sg${v.sg} bn${v.bn} thr${v.threshold}${['vecKV', 'vecQ', 'prefetch', 'lean', 'soloRows'].filter((k) => v[k]).map((k) => ` ${k}`).join('')}`);
for (const v of all) {
  if (!v.plain && attendF16SharedBytes({ ...v, dp: 128 }) > lim('maxComputeWorkgroupStorageSize')) { log(label(v), 'skipped: workgroup memory'); v.skip = true; continue; }
  for (const s of shapes) {
    try {
      const pr = await problem(v, s);
      pr.poison();
      await pr.run(1);
      const c = check(await pr.read(), s, pr);
      pr.destroy();
      results.checks.push({ variant: label(v), ...s, ...c });
      log('check', label(v), JSON.stringify(s), JSON.stringify(c));
    } catch (e) {
      results.checks.push({ variant: label(v), ...s, error: String(e.message ?? e) });
      log('check', label(v), 'FAILED', String(e.message ?? e).slice(0, 400));
      v.skip = true;
    }
  }
  save();
}
const budgetS = Number(a.budget);
const median = (xs) => [...xs].sort((p, q) => p - q)[xs.length >> 1];
for (const L of a.lengths.split(',').map(Number)) {
  for (const v of all) {
    if (v.skip || v.noTime || (v.plain && matrix)) continue;
    if ((performance.now() - t0) / 1000 > budgetS) { log('time budget spent'); break; }
    const s = { n: L, H: 32, Hkv: 8, D: 128 };
    try {
      const pr = await problem(v, s);
      await pr.run(1);
      const ms = [];
      for (let i = 0; i < Number(a.reps); i++) ms.push(await pr.run(3));
      pr.destroy();
      const tflops = (4 * s.H * s.D * ((L * (L + 1)) / 2)) / median(ms) / 1e9;
      results.timings.push({ variant: label(v), L, ms: median(ms), all: ms, tflops });
      log('time', label(v), 'L', L, 'ms', median(ms).toFixed(2), 'TFLOP/s', tflops.toFixed(1));
    } catch (e) {
      results.timings.push({ variant: label(v), L, error: String(e.message ?? e) });
      log('time', label(v), 'FAILED', String(e.message ?? e).slice(0, 300));
    }
    save();
  }
}
console.log('\nwarnings:', results.warnings.join('\n  '));
console.log('\nvariant | L | ms | TFLOP/s');
for (const r of results.timings) console.log(`${r.variant} | ${r.L} | ${r.ms?.toFixed(2) ?? r.error} | ${r.tflops?.toFixed(1) ?? ''}`);
console.log('\nvariant | shape | max err / max|V| | rel L2');
for (const r of results.checks) console.log(`${r.variant} | n${r.n} H${r.H} D${r.D} | ${r.maxErrOverMaxV?.toExponential(2) ?? r.error?.slice(0, 200)} | ${r.relL2?.toExponential(2) ?? ''} ${r.nonFinite ? 'NONFINITE ' + r.nonFinite : ''}`);
save();
process.exit(0);
