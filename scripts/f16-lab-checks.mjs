/**
 * Checks of the f16 kernel lab (scripts/f16-lab.mjs) that need no attention shapes:
 * `emulate` rewrites the subgroup-matrix kernel with emulated matrices (its logic on any adapter),
 * `prims` checks each subgroup-matrix primitive the kernel uses on the real adapter; `toHalf` and
 * `fromHalf` convert between numbers and f16 bits.
 */
// f32 -> f16 bits, round to nearest even (subnormals included); f16 bits -> number.
const f32 = new Float32Array(1), u32 = new Uint32Array(f32.buffer);
export function toHalf(x) {
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
export function fromHalf(h) {
  const s = h & 0x8000 ? -1 : 1, e = (h >>> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}


/**
 * --emulate: the subgroup-matrix kernel with each matrix held whole by every invocation (plain
 * WGSL loops with the same load/store/multiply semantics), so its logic can be checked on an adapter
 * without subgroup matrices (slow; small shapes only). `vec4`: the arrays of vec4<f16> operands.
 */
export function emulate(code, vec4 = []) {
  let s = code.replace('enable chromium_experimental_subgroup_matrix;', '').replace('diagnostic(off, chromium.subgroup_matrix_uniformity);', '');
  s = s.replace(/subgroupMatrixLoad<subgroup_matrix_\w+<f\d+, 16, 16>, (row|col)_major>\(&(\w+), /g, (_, maj, arr) => `smLoad_${arr}(${maj === 'col'}, `);
  s = s.replace(/subgroupMatrixStore<row_major>\(&(\w+), ([^,]+), ([^,]+), /g, 'smStore_$1($2, $3, ');
  s = s.replace(/subgroupMatrixMultiplyAccumulate\(/g, 'smMMA(');
  s = s.replace(/subgroup_matrix_\w+<f\d+, 16, 16>/g, 'SM');
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
    // vec4 operands: offset and stride in vec4s, element (r, c) at half off*4 + r*stride*4 + c.
    const at = vec4.includes(arr)
      ? `let h = off * 4u + select(r * stride * 4u + c, c * stride * 4u + r, col); m.v[i] = f32(${arr}[h / 4u][h % 4u]);`
      : `m.v[i] = f32(${arr}[off + select(r * stride + c, c * stride + r, col)]);`;
    fns += `fn smLoad_${arr}(col: bool, off: u32, stride: u32) -> SM { var m: SM; for (var i = 0u; i < 256u; i++) { let r = i / 16u; let c = i % 16u; ${at} } return m; }\n`;
  }
  return s.replace('@compute', fns + '@compute');
}


/**
 * Subgroup-matrix primitive checks (one subgroup, 16x16x16, small exact values): C = A B through one
 * path each (storage or workgroup operands, K^T by a col_major load, the result through workgroup
 * memory, operands at the very end of their arrays), in both spellings; max |C - A B| per case.
 */
export async function prims({ dev, toHalf, buffer, pipelineFor, results, log, save, matrixLoad, matrixStore }) {
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
