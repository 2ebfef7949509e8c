#!/usr/bin/env node
/**
 * Kernel lab for tuning attention on a real GPU (run by scripts/h200.sh with
 * LAB=1, or directly): times the attend kernel alone, dense causal, H heads
 * over GQA K/V, for a list of variants, and a plain tiled matmul in the same
 * harness as a ceiling for what the adapter's shader path can do.
 *
 *   node scripts/attend-lab.mjs --out FILE [--variants JSON | --preset diag] [--reps 3]
 *
 * A variant: {"name", "tiles": {TileConfig prefs}, "L", "H", "Hkv", "ablate": [...],
 * "perHead": true (one dispatch per head), "perDispatch": heads per dispatch, "windows": true (bind
 * each dispatch's head ranges at buffer offsets, as the backend does), "kind": "matmul", "n": 4096, "tile": 64|128;
 * "kind": "fresh-buffer", "mb": 256 (create a buffer, time its first and second use)}.
 * Ablations rewrite the generated WGSL to leave one part out (timing only, wrong
 * output, never used by the library): no-exp, no-pv, no-qk, no-kv-load.
 * Every non-ablated variant is first checked against float64 on a small shape.
 * Kernel time is the host clock from submit to onSubmittedWorkDone (median of reps after a warmup).
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { openGpu } from '../dist/gpu/device.js';
import { attendKernel } from '../dist/gpu/kernels/attend.wgsl.js';
import { kernelWgsl } from '../dist/gpu/kernels/kernel.js';
import { packParams } from '../dist/gpu/kernels/params.js';
import { attendSharedBytes, bm, chooseTiles } from '../dist/gpu/tiles.js';

const { values: a } = parseArgs({
  options: {
    out: { type: 'string', default: 'attend-lab.json' },
    variants: { type: 'string', default: '' },
    preset: { type: 'string', default: 'diag' },
    reps: { type: 'string', default: '3' },
    dim: { type: 'string', default: '128' },
  },
});
const D = Number(a.dim);
const reps = Number(a.reps);
const log = (...x) => console.log(`[${(performance.now() / 1000).toFixed(1)}s]`, ...x);
const median = (xs) => [...xs].sort((p, q) => p - q)[xs.length >> 1];

const PRESETS = {
  diag: [
    { name: 'matmul 64x64 (4x4/thread)', kind: 'matmul', n: 4096, tile: 64 },
    { name: 'matmul 128x128 (8x8/thread)', kind: 'matmul', n: 4096, tile: 128 },
    { name: 'matmul 128x128 (8x8/thread) 8192', kind: 'matmul', n: 8192, tile: 128 },
    { name: 'f32 bindings', tiles: { vec4: false }, L: 16384 },
    { name: 'vec4 bindings (default)', tiles: {}, L: 16384 },
    { name: 'no prefetch', tiles: { prefetch: false }, L: 16384 },
    { name: '128 threads: nx 16, ny 8, tm 8', tiles: { nx: 16, ny: 8, tm: 8, tn: 4 }, L: 16384 },
    { name: '128 threads: nx 8, ny 16, tn 8', tiles: { nx: 8, ny: 16, tm: 4, tn: 8 }, L: 16384 },
    { name: '64 threads: nx 8, ny 8, tn 8', tiles: { nx: 8, ny: 8, tm: 4, tn: 8 }, L: 16384 },
    { name: '64 threads: nx 16, ny 4, tm 8', tiles: { nx: 16, ny: 4, tm: 8, tn: 4 }, L: 16384 },
    { name: 'ablate no-exp', tiles: {}, L: 16384, ablate: ['no-exp'] },
    { name: 'ablate no-pv', tiles: {}, L: 16384, ablate: ['no-pv'] },
    { name: 'ablate no-qk', tiles: {}, L: 16384, ablate: ['no-qk'] },
    { name: 'ablate no-kv-load', tiles: {}, L: 16384, ablate: ['no-kv-load'] },
    { name: 'ablate no-qk no-pv', tiles: {}, L: 16384, ablate: ['no-qk', 'no-pv'] },
    { name: 'one dispatch per head', tiles: {}, L: 16384, perHead: true },
    { name: 'workgroup memory padded to the maximum', tiles: {}, L: 16384, ablate: ['pad-smem'] },
    { name: 'heads fastest in dispatch order', tiles: {}, L: 16384, ablate: ['head-major'] },
    { name: 'L 4096 H 32', tiles: {}, L: 4096 },
    { name: 'L 8192 H 32', tiles: {}, L: 8192 },
    { name: 'L 8192 H 128 Hkv 32', tiles: {}, L: 8192, H: 128, Hkv: 32 },
    { name: 'L 32768 H 32', tiles: {}, L: 32768 },
    { name: 'L 65536 H 8 Hkv 2', tiles: {}, L: 65536, H: 8, Hkv: 2 },
  ],
};
PRESETS.smoke = PRESETS.diag.map((v) => ({ ...v, L: Math.min(v.L ?? 0, 512) || 512, H: 4, Hkv: 2, n: v.n && 256 }));
PRESETS.tune = [
  { name: 'default', tiles: {}, L: 16384 },
  { name: 'default again', tiles: {}, L: 16384 },
  { name: 'no prefetch', tiles: { prefetch: false }, L: 16384 },
  { name: 'tm 8, ny 8 (128 threads)', tiles: { tm: 8, ny: 8 }, L: 16384 },
  { name: 'dk 16', tiles: { dk: 16 }, L: 16384 },
  { name: 'bv 16', tiles: { bv: 16 }, L: 16384 },
  { name: 'ablate no-qk', tiles: {}, L: 16384, ablate: ['no-qk'] },
  { name: 'ablate no-pv', tiles: {}, L: 16384, ablate: ['no-pv'] },
  { name: 'ablate no-qk no-pv', tiles: {}, L: 16384, ablate: ['no-qk', 'no-pv'] },
  { name: 'ablate no-kv-load', tiles: {}, L: 16384, ablate: ['no-kv-load'] },
  { name: 'Hkv 32 (no GQA sharing)', tiles: {}, L: 16384, Hkv: 32 },
  { name: 'L 65536 H 8 Hkv 2', tiles: {}, L: 65536, H: 8, Hkv: 2 },
  { name: 'L 65536 H 8 Hkv 8 (no GQA sharing)', tiles: {}, L: 65536, H: 8, Hkv: 8 },
];
PRESETS.split = [
  { name: 'L 16384 H 32', tiles: {}, L: 16384 },
  { name: 'L 65536 H 32, one dispatch', tiles: {}, L: 65536 },
  { name: 'L 65536 H 32, 9 heads per dispatch', tiles: {}, L: 65536, perDispatch: 9 },
  { name: 'L 65536 H 32, 9 heads per dispatch, windows', tiles: {}, L: 65536, perDispatch: 9, windows: true },
  { name: 'L 65536 H 32, 8 heads per dispatch, windows', tiles: {}, L: 65536, perDispatch: 8, windows: true },
  { name: 'L 65536 H 32, one dispatch again', tiles: {}, L: 65536 },
];
PRESETS.buffers = [64, 256, 1024, 2048].map((mb) => ({ name: `new ${mb} MiB buffer`, kind: 'fresh-buffer', mb }));
const variants = a.variants ? JSON.parse(a.variants) : PRESETS[a.preset];

// ---------------------------------------------------------------- device and buffers

const ctx = await openGpu();
const device = ctx.device;
let gpuError = null;
device.addEventListener?.('uncapturederror', (e) => {
  gpuError = e.error?.message ?? String(e);
});
const lim = device.limits;
const tileLimits = {
  maxComputeWorkgroupStorageSize: lim.maxComputeWorkgroupStorageSize,
  maxComputeInvocationsPerWorkgroup: lim.maxComputeInvocationsPerWorkgroup,
  maxComputeWorkgroupSizeX: lim.maxComputeWorkgroupSizeX,
};
log(`adapter: ${ctx.summary}`);
const results = { adapter: ctx.summary, variants: [] };
const save = () => writeFileSync(a.out, JSON.stringify(results, null, 1));

const STORAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
const FILL = `
@group(0) @binding(0) var<uniform> g: vec4<u32>;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
fn hash(a: u32) -> u32 {
  let v = a * 747796405u + 2891336453u;
  let w = ((v >> ((v >> 28u) + 4u)) ^ v) * 277803737u;
  return (w >> 22u) ^ w;
}
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) n: vec3<u32>) {
  for (var e = gid.x; e < g.x; e = e + n.x * 256u) {
    x[e] = (f32(hash(e ^ hash(g.y))) / 4294967296.0 - 0.5) * 3.4;
  }
}`;
const fillPipe = await pipeline(FILL);

/** A buffer of `floats` pseudo-random values in [-1.7, 1.7), filled on the GPU, or from `data`. */
function tensor(floats, seed, data) {
  const buf = device.createBuffer({ size: floats * 4, usage: STORAGE });
  if (data) {
    device.queue.writeBuffer(buf, 0, data);
    return buf;
  }
  const ub = device.createBuffer({ size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(ub, 0, new Uint32Array([floats, seed, 0, 0]));
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(fillPipe);
  pass.setBindGroup(0, device.createBindGroup({ layout: fillPipe.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: ub } }, { binding: 1, resource: { buffer: buf } }] }));
  pass.dispatchWorkgroups(Math.min(65535, Math.ceil(floats / 256)));
  pass.end();
  device.queue.submit([enc.finish()]);
  return buf;
}

async function readBack(buf, bytes) {
  const rb = device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const enc = device.createCommandEncoder();
  enc.copyBufferToBuffer(buf, 0, rb, 0, bytes);
  device.queue.submit([enc.finish()]);
  await rb.mapAsync(GPUMapMode.READ);
  const out = new Float32Array(rb.getMappedRange().slice(0));
  rb.destroy();
  return out;
}

// ---------------------------------------------------------------- attend variants

/** Rewrites generated attend WGSL to leave a part out; throws if the pattern is gone. */
function ablate(code, what, c) {
  const sub = (re, to) => {
    if (!re.test(code)) throw new Error(`ablation ${what}: pattern ${re} not found`);
    code = code.replace(re, to);
  };
  if (what === 'no-exp') sub(/exp\(/g, '(');
  else if (what === 'no-pv') sub(/(for \(var b = 0u; b < BV; b = b \+ 1u\) \{)/, '$1 break;');
  else if (what === 'no-qk') sub(/(for \(var d4 = 0u; d4 < DK4; d4 = d4 \+ 1u\) \{)/g, '$1 break;');
  else if (what === 'no-kv-load') {
    sub(/return kIn\[at >> 2u\];/, 'return vec4<f32>(f32(at & 7u));');
    sub(/return vIn\[at >> 2u\];/, 'return vec4<f32>(f32(at & 5u));');
  } else if (what === 'pad-smem') {
    // Raise workgroup memory to the adapter's maximum (fewer workgroups fit per multiprocessor).
    const used = attendSharedBytes(c);
    const pad = Math.floor((lim.maxComputeWorkgroupStorageSize - used) / 4) - 4;
    sub(/(var<workgroup> redL)/, `var<workgroup> padSm: array<f32, ${pad}>;\n$1`);
    sub(/(  var n = p\.n;)/, `  if (p.n == 0xffffffffu) { padSm[tid] = 1.0; workgroupBarrier(); oOut[0] = ${c.vec4 ? 'vec4<f32>(padSm[tid + 1u])' : 'padSm[tid + 1u]'}; }\n$1`);
  } else if (what === 'head-major') {
    // Heads vary fastest in dispatch order (dispatch dims swapped by the caller).
    sub(/wg\.x/g, 'wg.TMP');
    sub(/wg\.y/g, 'wg.x');
    sub(/wg\.TMP/g, 'wg.y');
  } else throw new Error(`unknown ablation ${what}`);
  return code;
}

const layoutCache = new Map();
function attendLayout() {
  if (!layoutCache.has('attend')) {
    const ro = { type: 'read-only-storage' };
    layoutCache.set(
      'attend',
      device.createBindGroupLayout({
        entries: [
          { binding: 0, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'uniform' } },
          ...[1, 2, 3, 5].map((binding) => ({ binding, visibility: GPUShaderStage.COMPUTE, buffer: ro })),
          { binding: 4, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'storage' } },
        ],
      }),
    );
  }
  return layoutCache.get('attend');
}

/** A compute pipeline for `code` (entry point main), throwing the compiler's errors. */
async function pipeline(code, layout = 'auto') {
  const module = device.createShaderModule({ code });
  const info = await module.getCompilationInfo();
  const errs = info.messages.filter((m) => m.type === 'error');
  if (errs.length) throw new Error(errs.map((m) => `${m.lineNum}:${m.linePos} ${m.message}`).join('; '));
  gpuError = null;
  return device.createComputePipelineAsync({ layout, compute: { module, entryPoint: 'main' } });
}

const state = device.createBuffer({ size: 64, usage: STORAGE });

/**
 * Records dense causal attention of H heads: one dispatch, or one per `perDispatch` heads
 * (perHead: 1). With `windows`, each dispatch binds only its heads' ranges of Q, K, V, O
 * (buffer offsets, as the backend does); else whole buffers with head offsets in the params.
 */
function attendCommands(pipe, c, L, H, Hkv, bufs, { perDispatch = H, windows = false, headMajor = false } = {}) {
  const enc = device.createCommandEncoder();
  const head = L * D;
  const kvDiv = H / Hkv;
  for (let h0 = 0; h0 < H; h0 += perDispatch) {
    const h1 = Math.min(H, h0 + perDispatch);
    const kv0 = windows ? Math.floor(h0 / kvDiv) : 0;
    const kv1 = Math.floor((h1 - 1) / kvDiv) + 1;
    const params = packParams(attendKernel(chooseTiles(D, tileLimits, {})).params, {
      n: L,
      dim: D,
      qBase: windows ? 0 : h0 * head,
      kBase: 0,
      vBase: 0,
      oBase: windows ? 0 : h0 * head,
      qHeadStride: head,
      kvHeadStride: head,
      oHeadStride: head,
      h0,
      kvDiv,
      kv0,
      gate: 0,
      scale: 1 / Math.sqrt(D),
    });
    const ub = device.createBuffer({ size: params.byteLength, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    device.queue.writeBuffer(ub, 0, params);
    const win = (buffer, a, b) => (windows ? { buffer, offset: a * head * 4, size: (b - a) * head * 4 } : { buffer });
    const bg = device.createBindGroup({
      layout: attendLayout(),
      entries: [
        { binding: 0, resource: { buffer: ub } },
        { binding: 1, resource: win(bufs.q, h0, h1) },
        { binding: 2, resource: win(bufs.k, kv0, kv1) },
        { binding: 3, resource: win(bufs.v, kv0, kv1) },
        { binding: 4, resource: win(bufs.o, h0, h1) },
        { binding: 5, resource: { buffer: state } },
      ],
    });
    const pass = enc.beginComputePass();
    pass.setPipeline(pipe);
    pass.setBindGroup(0, bg);
    if (headMajor) pass.dispatchWorkgroups(h1 - h0, Math.ceil(L / bm(c)));
    else pass.dispatchWorkgroups(Math.ceil(L / bm(c)), h1 - h0);
    pass.end();
  }
  return enc.finish();
}

/** Host ms from submitting `cmd` on an idle queue until the GPU has finished it. */
async function timeSubmit(cmd) {
  await device.queue.onSubmittedWorkDone();
  const t0 = performance.now();
  device.queue.submit([cmd]);
  await device.queue.onSubmittedWorkDone();
  return performance.now() - t0;
}

/** ms of `reps` submissions of make() after one warmup (1 when the warmup took over 5 s). */
async function timeCommands(make) {
  const n = (await timeSubmit(make())) > 5000 ? 1 : reps;
  const ms = [];
  for (let i = 0; i < n; i++) ms.push(await timeSubmit(make()));
  return ms;
}

/** float64 attention of head h, all rows, against the GPU output. */
function checkAgainstF64(L, H, Hkv, q, k, v, o) {
  let worst = 0;
  for (const h of [0, H - 1]) {
    const g = Math.floor(h / (H / Hkv));
    for (let r = 0; r < L; r++) {
      const s = new Float64Array(r + 1);
      let m = -Infinity;
      for (let b = 0; b <= r; b++) {
        let x = 0;
        for (let d = 0; d < D; d++) x += q[(h * L + r) * D + d] * k[(g * L + b) * D + d];
        s[b] = x / Math.sqrt(D);
        m = Math.max(m, s[b]);
      }
      let l = 0;
      const acc = new Float64Array(D);
      for (let b = 0; b <= r; b++) {
        const p = Math.exp(s[b] - m);
        l += p;
        for (let d = 0; d < D; d++) acc[d] += p * v[(g * L + b) * D + d];
      }
      for (let d = 0; d < D; d++) worst = Math.max(worst, Math.abs(acc[d] / l - o[(h * L + r) * D + d]));
    }
  }
  return worst;
}

function dispatchOptions(vr, H) {
  return { perDispatch: vr.perHead ? 1 : (vr.perDispatch ?? H), windows: !!vr.windows, headMajor: !!vr.ablate?.includes('head-major') };
}

async function runAttend(vr) {
  const c = chooseTiles(D, tileLimits, vr.tiles ?? {});
  let code = kernelWgsl(attendKernel(c));
  for (const x of vr.ablate ?? []) code = ablate(code, x, c);
  const pipe = await pipeline(code, device.createPipelineLayout({ bindGroupLayouts: [attendLayout()] }));
  const row = { name: vr.name, tiles: c, ablate: vr.ablate ?? [], ...dispatchOptions(vr, vr.H ?? 32) };
  if (!vr.ablate?.some((x) => x.startsWith('no-'))) {
    const [L, H, Hkv] = [300, 4, 2];
    const rnd = (n, s) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + s * 78.233) * 1.7);
    const q = rnd(H * L * D, 1);
    const k = rnd(Hkv * L * D, 2);
    const v = rnd(Hkv * L * D, 3);
    const bufs = { q: tensor(q.length, 0, q), k: tensor(k.length, 0, k), v: tensor(v.length, 0, v), o: tensor(H * L * D, 9) };
    device.queue.submit([attendCommands(pipe, c, L, H, Hkv, bufs, dispatchOptions({ ...vr, perDispatch: vr.perDispatch && 3 }, H))]);
    const o = await readBack(bufs.o, H * L * D * 4);
    row.maxAbsErr = checkAgainstF64(L, H, Hkv, q, k, v, o);
    Object.values(bufs).forEach((b) => b.destroy());
  }
  const L = vr.L ?? 16384;
  const H = vr.H ?? 32;
  const Hkv = vr.Hkv ?? 8;
  const bufs = { q: tensor(H * L * D, 11), k: tensor(Hkv * L * D, 12), v: tensor(Hkv * L * D, 13), o: tensor(H * L * D, 14) };
  const ms = await timeCommands(() => attendCommands(pipe, c, L, H, Hkv, bufs, dispatchOptions(vr, H)));
  Object.values(bufs).forEach((b) => b.destroy());
  const flops = 4 * H * D * ((L * (L + 1)) / 2);
  Object.assign(row, { L, H, Hkv, ms: median(ms), all: ms, tflops: flops / median(ms) / 1e9 });
  return row;
}

// ---------------------------------------------------------------- matmul ceiling

/**
 * C [n][n] = At^T B: At [n][n] (k-major, A transposed), B [n][n], vec4 rows.
 * Workgroup tile T x T (T = 64: 4x4 floats per thread; 128: 8x8), 256 threads,
 * k chunks of 16 through workgroup memory as [16][T/4] vec4 for both operands.
 */
function matmulWgsl(T) {
  const r = T / 16; // floats per thread per dimension (4 or 8)
  const rows = Array.from({ length: r }, (_, i) => i);
  const cols = Array.from({ length: r / 4 }, (_, j) => j);
  const rowOf = (i) => `ty * 4u + ${i % 4}u + ${Math.floor(i / 4) * 64}u`;
  return `
@group(0) @binding(0) var<uniform> g: vec4<u32>;
@group(0) @binding(1) var<storage, read> amat: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> c: array<vec4<f32>>;
const T4: u32 = ${T / 4}u;
var<workgroup> as_: array<vec4<f32>, ${16 * (T / 4)}>;
var<workgroup> bs: array<vec4<f32>, ${16 * (T / 4)}>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let n4 = g.x / 4u;
  let tx = tid % 16u;
  let ty = tid / 16u;
  let m0 = wg.y * ${T}u;
  let n0 = wg.x * ${T}u;
${rows.map((i) => cols.map((j) => `  var acc${i}_${j} = vec4<f32>(0.0);`).join('\n')).join('\n')}
  for (var k0 = 0u; k0 < g.x; k0 = k0 + 16u) {
    for (var e = tid; e < 16u * T4; e = e + 256u) {
      let kk = e / T4;
      let x4 = e % T4;
      as_[e] = amat[(k0 + kk) * n4 + m0 / 4u + x4];
      bs[e] = b[(k0 + kk) * n4 + n0 / 4u + x4];
    }
    workgroupBarrier();
    for (var kk = 0u; kk < 16u; kk = kk + 1u) {
${Array.from({ length: r / 4 }, (_, h) => `      let a${h} = as_[kk * T4 + ty + ${h * 16}u];`).join('\n')}
${cols.map((j) => `      let b${j} = bs[kk * T4 + tx + ${j * 16}u];`).join('\n')}
${rows.map((i) => cols.map((j) => `      acc${i}_${j} = fma(vec4<f32>(a${Math.floor(i / 4)}.${'xyzw'[i % 4]}), b${j}, acc${i}_${j});`).join('\n')).join('\n')}
    }
    workgroupBarrier();
  }
${rows.map((i) => cols.map((j) => `  c[(m0 + ${rowOf(i)}) * n4 + n0 / 4u + tx + ${j * 16}u] = acc${i}_${j};`).join('\n')).join('\n')}
}`;
}

async function runMatmul(vr) {
  const n = vr.n;
  const code = matmulWgsl(vr.tile);
  const pipe = await pipeline(code);
  const run = async (size, data) => {
    const ub = device.createBuffer({ size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    device.queue.writeBuffer(ub, 0, new Uint32Array([size, 0, 0, 0]));
    const bufs = { a: tensor(size * size, 21, data?.a), b: tensor(size * size, 22, data?.b), c: tensor(size * size, 23) };
    const bg = device.createBindGroup({
      layout: pipe.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: ub } },
        { binding: 1, resource: { buffer: bufs.a } },
        { binding: 2, resource: { buffer: bufs.b } },
        { binding: 4, resource: { buffer: bufs.c } },
      ],
    });
    const make = () => {
      const enc = device.createCommandEncoder();
      const pass = enc.beginComputePass();
      pass.setPipeline(pipe);
      pass.setBindGroup(0, bg);
      pass.dispatchWorkgroups(size / vr.tile, size / vr.tile);
      pass.end();
      return enc.finish();
    };
    return { bufs, make };
  };
  // Check on 256 x 256 against float64.
  const s = 256;
  const rnd = (x) => Float32Array.from({ length: s * s }, (_, i) => Math.sin(i * 1.3 + x) * 1.5);
  const data = { a: rnd(1), b: rnd(2) };
  const small = await run(s, data);
  device.queue.submit([small.make()]);
  const cOut = await readBack(small.bufs.c, s * s * 4);
  let err = 0;
  for (let m = 0; m < s; m += 7) {
    for (let j = 0; j < s; j += 5) {
      let x = 0;
      for (let k = 0; k < s; k++) x += data.a[k * s + m] * data.b[k * s + j];
      err = Math.max(err, Math.abs(x - cOut[m * s + j]));
    }
  }
  Object.values(small.bufs).forEach((b) => b.destroy());
  const big = await run(n);
  const ms = await timeCommands(big.make);
  Object.values(big.bufs).forEach((b) => b.destroy());
  return { name: vr.name, kind: 'matmul', n, tile: vr.tile, maxAbsErr: err, ms: median(ms), all: ms, tflops: (2 * n ** 3) / median(ms) / 1e9 };
}

// ---------------------------------------------------------------- a new buffer's first use

/** Host ms to create a buffer of `mb` MiB, then for a one-thread dispatch writing one float of it, twice. */
async function runFreshBuffer(vr) {
  const code = `@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@compute @workgroup_size(1) fn main() { x[0] = x[1] + 1.0; }`;
  const pipe = await pipeline(code);
  const t0 = performance.now();
  const buf = device.createBuffer({ size: vr.mb * 2 ** 20, usage: STORAGE });
  const createMs = performance.now() - t0;
  // A small window: Dawn zero-fills the whole buffer at its first use in any binding.
  const bg = device.createBindGroup({ layout: pipe.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: buf, size: 65536 } }] });
  const use = () => {
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(pipe);
    pass.setBindGroup(0, bg);
    pass.dispatchWorkgroups(1);
    pass.end();
    return enc.finish();
  };
  const first = await timeSubmit(use());
  const second = await timeSubmit(use());
  buf.destroy();
  return { name: vr.name, kind: 'fresh-buffer', mb: vr.mb, createMs, firstUseMs: first, secondUseMs: second, ms: first };
}

// ---------------------------------------------------------------- main

for (const vr of variants) {
  let row;
  try {
    row = vr.kind === 'matmul' ? await runMatmul(vr) : vr.kind === 'fresh-buffer' ? await runFreshBuffer(vr) : await runAttend(vr);
    if (gpuError) row.gpuError = gpuError;
  } catch (e) {
    row = { name: vr.name, error: e instanceof Error ? e.message : String(e) };
  }
  results.variants.push(row);
  save();
  log(JSON.stringify({ ...row, tiles: undefined, all: undefined }));
}
console.log('\nname | L | H | ms | TFLOP/s | max abs err');
for (const r of results.variants) {
  console.log(`${r.name} | ${r.L ?? r.n ?? ''} | ${r.H ?? ''} | ${r.ms?.toFixed(1) ?? r.error} | ${r.tflops?.toFixed(2) ?? ''} | ${r.maxAbsErr?.toExponential(1) ?? ''}`);
}
process.exit(0);
