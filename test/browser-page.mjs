/**
 * Page module of test/browser.test.ts, served beside dist/, build/ and golden/ (as /page.mjs, or
 * /open/page.mjs without cross-origin isolation). It imports the browser entry and sets
 * globalThis.runInPage({ shape, seed, options, golden: { name, options } }), which selects a backend
 * and, where wasm is selected, runs tokenSparseAttention with 1 and 2 threads on a generated
 * structured input and on a golden case, returning outputs and indices as base64.
 */
import * as tsa from './dist/harness/browser.js';

function base64(array) {
  const bytes = new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

async function run(backend, input, options) {
  const r = await backend.tokenSparseAttention(input, options);
  return {
    description: backend.description,
    output: base64(r.output),
    indices: r.indices ? base64(r.indices) : null,
    keep: r.budget.mode === 'sparse' ? r.budget.keep : null,
  };
}

async function loadGolden(name) {
  const manifest = await (await fetch(new URL('golden/manifest.json', import.meta.url))).json();
  const c = manifest.cases[name];
  const bin = async (entry) => new Float32Array(await (await fetch(new URL(`golden/${entry.file}`, import.meta.url))).arrayBuffer());
  return { heads: c.H, kvHeads: c.HKV, headDim: c.D, seqLen: c.L, q: await bin(c.inputs.q), k: await bin(c.inputs.k), v: await bin(c.inputs.v) };
}

globalThis.runInPage = async ({ shape, seed, options, golden }) => {
  const selection = await tsa.selectBackend();
  const selected = {
    name: selection.backend.name,
    description: selection.backend.description,
    report: selection.report.map(({ name, available, reason }) => ({ name, available, reason })),
  };
  await selection.backend.dispose();
  const runs = [];
  if (selected.name === 'wasm') {
    const input = tsa.generateInput('structured', shape, seed);
    const goldenInput = await loadGolden(golden.name);
    for (const threads of [1, 2]) {
      // The spec's pipeline (no cost rule), as the reference it is compared with.
      const backend = await tsa.createWasmBackend({ threads, costRule: false });
      try {
        runs.push(await run(backend, input, options));
        runs.push(await run(backend, goldenInput, golden.options));
      } finally {
        await backend.dispose();
      }
    }
  }
  return { crossOriginIsolated: globalThis.crossOriginIsolated, selected, runs };
};

const reasonRows = (rows) => rows.map(({ name, available, autoSelect, reason }) => ({ name, available, autoSelect, reason }));

/**
 * The WebGPU backend in this page: probeBackends() over every backend, then 'webgpu' forced by
 * selectBackend() on a golden case, then `device.destroy()` and one more call on `lost.shape`.
 */
globalThis.webgpuInPage = async ({ golden, lost }) => {
  const probe = reasonRows(await tsa.probeBackends());
  const selection = await tsa.selectBackend({ backend: 'webgpu', costRule: false });
  const backend = selection.backend;
  const goldenRun = await run(backend, await loadGolden(golden.name), golden.options);
  const small = tsa.generateInput('gaussian', lost.shape, 1);
  const before = (await backend.dense(small)).length;
  backend.device.destroy();
  let after = null;
  try {
    await backend.dense(small);
  } catch (e) {
    after = { name: e.name, lost: e instanceof tsa.BackendLostError, message: e.message };
  }
  await backend.dispose();
  return { probe, why: selection.why, golden: goldenRun, lost: { before, after } };
};
