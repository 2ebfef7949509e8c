#!/usr/bin/env node
/**
 * Checks and times scorePartials-f16 (gpu/kernels/score-f16.wgsl.ts, precision 'f16' scoring on
 * the matrix units) alone: partials (m, l) and prefix logits against float64 on the same f16
 * values, per shape; then its device time at the given lengths (timestamps, median of runs).
 *   node scripts/score-f16-check.mjs [--emulate] [--time 8192,16384] [--heads 32 --kv-heads 8 --head-dim 128] [--config JSON]
 * --emulate: subgroup matrices emulated in plain WGSL (every invocation holds whole matrices), so
 * the kernel's indexing can be checked on an adapter without them (lavapipe; small shapes only).
 * Needs `npm run build`. Exit 1 when a check fails.
 */
import { parseArgs } from 'node:util';
import { create, globals } from 'webgpu';
import { scoreF16Checker } from './score-f16-checks.mjs';

Object.assign(globalThis, globals);

const { values: a } = parseArgs({
  options: {
    emulate: { type: 'boolean', default: false },
    time: { type: 'string', default: '' },
    heads: { type: 'string', default: '32' },
    'kv-heads': { type: 'string', default: '8' },
    'head-dim': { type: 'string', default: '128' },
    config: { type: 'string', default: '{}' },
  },
});

const gpu = create(['backend=vulkan', 'enable-dawn-features=allow_unsafe_apis,vulkan_enable_f16_on_nvidia,use_vulkan_memory_model', 'disable-dawn-features=timestamp_quantization']);
globalThis.__keep = gpu;
const ad = await gpu.requestAdapter({ powerPreference: 'high-performance' });
const features = ['shader-f16', 'subgroups', 'chromium-experimental-subgroup-matrix', 'timestamp-query'].filter((f) => ad.features.has(f));
const dev = await ad.requestDevice({
  requiredFeatures: features,
  requiredLimits: Object.fromEntries(['maxStorageBufferBindingSize', 'maxBufferSize', 'maxComputeWorkgroupStorageSize'].map((k) => [k, ad.limits[k]])),
});
if (!a.emulate && !features.includes('chromium-experimental-subgroup-matrix')) {
  console.log('no subgroup matrices on this adapter: run with --emulate');
  process.exit(1);
}
console.log(`adapter: ${ad.info.vendor} ${ad.info.description}; ${features.join(', ')}${a.emulate ? '; matrices emulated' : ''}`);

const { problem, check } = scoreF16Checker(dev, { emulate: a.emulate, config: JSON.parse(a.config), timestamps: features.includes('timestamp-query') });
const shapes = [
  { H: 2, Hkv: 1, D: 64, L: 300, W: 128 },
  { H: 4, Hkv: 2, D: 7, L: 150, W: 16 },
  { H: 2, Hkv: 2, D: 40, L: 257, W: 24 },
  { H: 2, Hkv: 1, D: 128, L: 200, W: 32, mag: 3 },
  { H: 1, Hkv: 1, D: 16, L: 129, W: 100 },
  { H: 8, Hkv: 2, D: 128, L: 300, W: 16 },
];
let ok = true;
for (const s of shapes) {
  const r = await check(s);
  console.log(`${r.ok ? 'ok  ' : 'FAIL'} H ${s.H} Hkv ${s.Hkv} D ${s.D} L ${s.L} W ${s.W} ${JSON.stringify(r.c)}: logits ${r.logitErr.toExponential(1)}, m ${r.mErr.toExponential(1)}, l ${r.lErr.toExponential(1)}`);
  ok = r.ok && ok;
}

// Device time of each config (dispatches repeated in one pass, so the clocks stay up): the stage's
// default (8 subgroups per head for the 128-row window, a subgroup per head of a KV group for the
// probe's 16 rows; 32-key blocks, 8 per workgroup for the window, 4 for the probe) and neighbours.
for (const L of a.time ? a.time.split(',').map(Number) : []) {
  for (const W of [128, 16]) {
    for (const cfg of [{}, { blocks: 1 }, { blocks: 2 }, { blocks: 4 }, { blocks: 8 }, { blocks: 16 }, { bn: 64 }, ...(W > 16 ? [{ sgh: 4 }] : [])]) {
      const pr = await problem({ H: +a.heads, Hkv: +a['kv-heads'], D: +a['head-dim'], L, W, ...cfg }).catch((e) => (console.log(`skip ${JSON.stringify(cfg)}: ${e.message}`), null));
      if (!pr) continue;
      const t = [];
      for (let r = 0; r < 6; r++) t.push(await pr.run(20));
      pr.destroy();
      const ms = t.slice(2).sort((x, y) => x - y)[1];
      const flop = 2 * +a.heads * W * L * +a['head-dim'];
      console.log(`time L ${L} W ${W} H ${a.heads} D ${a['head-dim']} ${JSON.stringify(pr.c)}: ${ms.toFixed(3)} ms (${(flop / ms / 1e9).toFixed(1)} TFLOP/s)`);
    }
  }
}
process.exit(ok ? 0 : 1);
