#!/usr/bin/env node
/**
 * f16 attention kernel lab: checks the f16 kernels (subgroup-matrix attend-f16 where the adapter has
 * `chromium-experimental-subgroup-matrix`, the plain f16 kernel everywhere with `shader-f16`) against
 * a float64 reference on the f16-rounded inputs on small shapes, then times variants of dense causal
 * attention (H 32, Hkv 8, D 128 by default) with timestamp queries.
 *
 *   node scripts/f16-lab.mjs [--out FILE] [--lengths 16384,32768] [--variants JSON] [--plain] [--reps 3]
 *
 * Kernels load from ../dist/gpu/kernels (npx tsc first) or from $F16LAB_KERNELS (a folder URL
 * relative to this file), so the script runs from a copy with the compiled kernels beside it.
 * A variant: {sg, bn, kvShared, threshold} (F16MatrixConfig without dp) or {plain: true}.
 * Dawn on Vulkan with allow_unsafe_apis, vulkan_enable_f16_on_nvidia, use_vulkan_memory_model, and
 * timestamp_quantization off.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { create, globals } from 'webgpu';

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

// f32 -> f16 bits, round to nearest even (subnormals included); f16 bits -> number.
const f32 = new Float32Array(1), u32 = new Uint32Array(f32.buffer);
function toHalf(x) {
  f32[0] = x;
  const u = u32[0], s = (u >>> 16) & 0x8000, e = (u >>> 23) & 0xff, m = u & 0x7fffff;
  if (e === 0xff) return s | 0x7c00 | (m ? 0x200 : 0);
  const ue = e - 127 + 15;
  if (ue >= 0x1f) return s | 0x7c00;
  if (ue <= 0) {
    if (ue < -10) return s;
    const mm = m | 0x800000, sh = 14 - ue, hm = mm >>> sh, rem = mm & ((1 << sh) - 1), halfway = 1 << (sh - 1);
    return s | (hm + (rem > halfway || (rem === halfway && hm & 1) ? 1 : 0));
  }
  const hm = m >>> 13, rem = m & 0x1fff;
  return (s | (ue << 10) | hm) + (rem > 0x1000 || (rem === 0x1000 && hm & 1) ? 1 : 0);
}
function fromHalf(h) {
  const s = h & 0x8000 ? -1 : 1, e = (h >>> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

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

/**
 * --emulate: the subgroup-matrix kernel with each matrix held whole by every invocation (plain
 * WGSL loops with the same load/store/multiply semantics), so its logic can be checked on an adapter
 * without subgroup matrices (slow; small shapes only).
 */
function emulate(code) {
  let s = code.replace('enable chromium_experimental_subgroup_matrix;', '').replace('diagnostic(off, chromium.subgroup_matrix_uniformity);', '');
  s = s.replace(/subgroupMatrixLoad<subgroup_matrix_\w+<f\d+, 16, 16>, (row|col)_major>\(&(\w+), /g, (_, maj, arr) => `smLoad_${arr}(${maj === 'col'}, `);
  s = s.replace(/subgroupMatrixStore<row_major>\(&(\w+), ([^,]+), ([^,]+), /g, 'smStore_$1($2, $3, ');
  s = s.replace(/subgroupMatrixMultiplyAccumulate\(/g, 'smMMA(');
  s = s.replace(/subgroup_matrix_result<f32, 16, 16>\(\)/g, 'SM()');
  let fns = `struct SM { v: array<f32, 256> }
fn smMMA(a: SM, b: SM, c: SM) -> SM {
  var r = c;
  for (var i = 0u; i < 16u; i++) { for (var j = 0u; j < 16u; j++) { var x = r.v[i * 16u + j]; for (var k = 0u; k < 16u; k++) { x += a.v[i * 16u + k] * b.v[k * 16u + j]; } r.v[i * 16u + j] = x; } }
  return r;
}
fn smStore_sw(off: u32, m: SM, stride: u32) { for (var i = 0u; i < 256u; i++) { sw[off + (i / 16u) * stride + i % 16u] = m.v[i]; } }
`;
  for (const arr of ['qIn', 'kIn', 'vIn', 'ks', 'vs', 'pw', 'sw']) {
    if (!s.includes(`smLoad_${arr}(`)) continue;
    fns += `fn smLoad_${arr}(col: bool, off: u32, stride: u32) -> SM { var m: SM; for (var i = 0u; i < 256u; i++) { let r = i / 16u; let c = i % 16u; m.v[i] = f32(${arr}[off + select(r * stride + c, c * stride + r, col)]); } return m; }\n`;
  }
  return s.replace('@compute', fns + '@compute');
}

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

/**
 * Subgroup-matrix primitive checks (one subgroup, 16x16x16, small exact values): C = A B through one
 * path each (storage or workgroup operands, K^T by a col_major load, the result through workgroup
 * memory, operands at the very end of their arrays), in both spellings; max |C - A B| per case.
 */
async function prims() {
  const S = 24, OFF = 4096, LEN = OFF + 15 * S + 16;
  const Ah = new Uint16Array(LEN), Bh = new Uint16Array(LEN), BTh = new Uint16Array(LEN);
  const A = [], B = [];
  for (let i = 0; i < 256; i++) { A.push(((i * 7) % 9) - 4); B.push(((i * 5) % 7) - 3); }
  for (let r = 0; r < 16; r++) for (let c = 0; c < 16; c++) {
    Ah[OFF + r * S + c] = toHalf(A[r * 16 + c]); Bh[OFF + r * S + c] = toHalf(B[r * 16 + c]); BTh[OFF + c * S + r] = toHalf(B[r * 16 + c]);
  }
  const want = new Float64Array(256);
  for (let r = 0; r < 16; r++) for (let c = 0; c < 16; c++) for (let k = 0; k < 16; k++) want[r * 16 + c] += A[r * 16 + k] * B[k * 16 + c];
  const L = 'subgroup_matrix_left<f16, 16, 16>', R = 'subgroup_matrix_right<f16, 16, 16>', RES = 'subgroup_matrix_result<f32, 16, 16>';
  const cases = {
    vec4Storage: () => `let c = subgroupMatrixMultiply<f32>(${matrixLoad(L, '&a4', `${OFF / 4}u`, false, `${S / 4}u`)}, ${matrixLoad(R, '&b4', `${OFF / 4}u`, false, `${S / 4}u`)});
  ${matrixStore('&cOut', '0u', 'c', '16u')};`,
    vec4Workgroup: () => `for (var e = lid; e < ${(16 * S) / 4}u; e = e + 32u) { wa4[e] = a4[${OFF / 4}u + e]; wb4[e] = bt4[${OFF / 4}u + e]; }
  workgroupBarrier();
  let c = subgroupMatrixMultiply<f32>(${matrixLoad(L, '&wa4', '0u', false, `${S / 4}u`)}, ${matrixLoad(R, '&wb4', '0u', true, `${S / 4}u`)});
  ${matrixStore('&cOut', '0u', 'c', '16u')};`,
    scalarWorkgroupFromVec4: () => `for (var e = lid; e < ${(16 * S) / 4}u; e = e + 32u) { let x = a4[${OFF / 4}u + e]; let y = bt4[${OFF / 4}u + e];
    wa[4u * e] = x.x; wa[4u * e + 1u] = x.y; wa[4u * e + 2u] = x.z; wa[4u * e + 3u] = x.w; wb[4u * e] = y.x; wb[4u * e + 1u] = y.y; wb[4u * e + 2u] = y.z; wb[4u * e + 3u] = y.w; }
  workgroupBarrier();
  let c = subgroupMatrixMultiply<f32>(${matrixLoad(L, '&wa', '0u', false, `${S}u`)}, ${matrixLoad(R, '&wb', '0u', true, `${S}u`)});
  ${matrixStore('&wc', '0u', 'c', '20u')};
  workgroupBarrier();
  for (var e = lid; e < 256u; e = e + 32u) { cOut[e] = wc[(e / 16u) * 20u + e % 16u]; }`,
    storage: () => `let c = subgroupMatrixMultiply<f32>(${matrixLoad(L, '&a', `${OFF}u`, false, `${S}u`)}, ${matrixLoad(R, '&b', `${OFF}u`, false, `${S}u`)});
  ${matrixStore('&cOut', '0u', 'c', '16u')};`,
    colMajor: () => `let c = subgroupMatrixMultiply<f32>(${matrixLoad(L, '&a', `${OFF}u`, false, `${S}u`)}, ${matrixLoad(R, '&bt', `${OFF}u`, true, `${S}u`)});
  ${matrixStore('&cOut', '0u', 'c', '16u')};`,
    workgroup: () => `for (var e = lid; e < ${16 * S}u; e = e + 32u) { wa[e] = a[${OFF}u + e]; wb[e] = bt[${OFF}u + e]; }
  workgroupBarrier();
  let c = subgroupMatrixMultiply<f32>(${matrixLoad(L, '&wa', '0u', false, `${S}u`)}, ${matrixLoad(R, '&wb', '0u', true, `${S}u`)});
  ${matrixStore('&wc', '0u', 'c', '20u')};
  workgroupBarrier();
  for (var e = lid; e < 256u; e = e + 32u) { cOut[e] = wc[(e / 16u) * 20u + e % 16u]; }`,
    resultRoundTrip: () => `var c = subgroupMatrixMultiply<f32>(${matrixLoad(L, '&a', `${OFF}u`, false, `${S}u`)}, ${matrixLoad(R, '&b', `${OFF}u`, false, `${S}u`)});
  ${matrixStore('&wc', '0u', 'c', '20u')};
  workgroupBarrier();
  for (var e = lid; e < 256u; e = e + 32u) { let at = (e / 16u) * 20u + e % 16u; wc[at] = wc[at] * 2.0; }
  workgroupBarrier();
  c = ${matrixLoad(RES, '&wc', '0u', false, '20u')};
  ${matrixStore('&cOut', '0u', 'c', '16u')};`,
    accumulate: () => `var c = ${RES}();
  c = subgroupMatrixMultiplyAccumulate(${matrixLoad(L, '&a', `${OFF}u`, false, `${S}u`)}, ${matrixLoad(R, '&b', `${OFF}u`, false, `${S}u`)}, c);
  ${matrixStore('&cOut', '0u', 'c', '16u')};`,
    // 4 subgroups, each at its own region of shared arrays (nonzero offsets, strides 40 and 36).
    multiSubgroup: () => `let sg = lid / 32u;
  for (var e = lid % 32u; e < 256u; e = e + 32u) { let r = e / 16u; let q = e % 16u; ma[sg * 640u + r * 40u + q] = a[${OFF}u + r * ${S}u + q]; mb[sg * 640u + r * 40u + q] = bt[${OFF}u + r * ${S}u + q]; }
  workgroupBarrier();
  let c = subgroupMatrixMultiply<f32>(${matrixLoad(L, '&ma', 'sg * 640u', false, '40u')}, ${matrixLoad(R, '&mb', 'sg * 640u', true, '40u')});
  ${matrixStore('&mc', 'sg * 576u + 16u', 'c', '36u')};
  workgroupBarrier();
  for (var e = lid % 32u; e < 256u; e = e + 32u) { cOut[sg * 256u + e] = mc[sg * 576u + 16u + (e / 16u) * 36u + e % 16u]; }`,
  };
  // layout 'auto' drops bindings a kernel does not use: bind only those it reads.
  const uses = { multiSubgroup: [0, 2, 3], vec4Storage: [3, 4, 5], vec4Workgroup: [3, 4, 6], scalarWorkgroupFromVec4: [3, 4, 6], storage: [0, 1, 3], colMajor: [0, 2, 3], workgroup: [0, 2, 3], resultRoundTrip: [0, 1, 3], accumulate: [0, 1, 3] };
  const pipeUses = (name, b) => uses[name].includes(b);
  const mk = (body) => `enable f16;
enable subgroups;
enable chromium_experimental_subgroup_matrix;
diagnostic(off, chromium.subgroup_matrix_uniformity);
@group(0) @binding(0) var<storage, read> a: array<f16>;
@group(0) @binding(1) var<storage, read> b: array<f16>;
@group(0) @binding(2) var<storage, read> bt: array<f16>;
@group(0) @binding(3) var<storage, read_write> cOut: array<f32>;
@group(0) @binding(4) var<storage, read> a4: array<vec4<f16>>;
@group(0) @binding(5) var<storage, read> b4: array<vec4<f16>>;
@group(0) @binding(6) var<storage, read> bt4: array<vec4<f16>>;
var<workgroup> wa4: array<vec4<f16>, ${(16 * S) / 4}>;
var<workgroup> wb4: array<vec4<f16>, ${(16 * S) / 4}>;
var<workgroup> wa: array<f16, ${16 * S}>;
var<workgroup> wb: array<f16, ${16 * S}>;
var<workgroup> wc: array<f32, ${16 * 20}>;
var<workgroup> ma: array<f16, 2560>;
var<workgroup> mb: array<f16, 2560>;
var<workgroup> mc: array<f32, 2304>;
@compute @workgroup_size(${body.startsWith('let sg') ? 128 : 32})
fn main(@builtin(local_invocation_index) lid: u32) {
  ${body}
}`;
  const ins = [Ah, Bh, BTh].map((x) => buffer(x, GPUBufferUsage.STORAGE));
  const ins4 = [Ah, Bh, BTh].map((x) => buffer(x, GPUBufferUsage.STORAGE));
  const out = dev.createBuffer({ size: 4096, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
  const st = dev.createBuffer({ size: 4096, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  for (const [name, body] of Object.entries(cases)) {
    const sp = 'template';
    try {
      const pipe = await pipelineFor(mk(body()));
      dev.queue.writeBuffer(out, 0, new Float32Array(1024).fill(NaN));
      const bg = dev.createBindGroup({ layout: pipe.getBindGroupLayout(0), entries: [...ins, out, ...ins4].map((x, i) => ({ binding: i, resource: { buffer: x } })).filter((e) => pipeUses(name, e.binding)) });
      const enc = dev.createCommandEncoder();
      const pass = enc.beginComputePass();
      pass.setPipeline(pipe); pass.setBindGroup(0, bg); pass.dispatchWorkgroups(1); pass.end();
      enc.copyBufferToBuffer(out, 0, st, 0, 4096);
      dev.queue.submit([enc.finish()]);
      await st.mapAsync(GPUMapMode.READ);
      const c = new Float32Array(st.getMappedRange().slice(0));
      st.unmap();
      const k = name === 'resultRoundTrip' ? 2 : 1;
      let err = 0;
      for (let i = 0; i < (name === 'multiSubgroup' ? 1024 : 256); i++) err = Math.max(err, Number.isNaN(c[i]) ? Infinity : Math.abs(c[i] - k * want[i % 256]));
      results.prims.push({ spelling: sp, case: name, maxErr: err, sample: Array.from(c.slice(0, 4)) });
      log('prim', sp, name, 'max err', err, 'C[0..4)', Array.from(c.slice(0, 4)).join(','), 'want', Array.from(want.slice(0, 4)).map((x) => x * k).join(','));
    } catch (e) {
      results.prims.push({ spelling: sp, case: name, error: String(e.message ?? e).slice(0, 300) });
      log('prim', sp, name, 'FAILED', String(e.message ?? e).slice(0, 300));
    }
  }
  save();
}
if (matrix) await prims();

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
