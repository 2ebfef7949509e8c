/**
 * Child process of test/wasm-relaxed.test.ts: runs the relaxed-SIMD build (which Node 20 accepts
 * only with --experimental-wasm-relaxed-simd) from dist/ on 1 and 2 threads, and reports, as JSON
 * on stdout, its golden conformance and its deviations from the reference on the cases it is given
 * on stdin (the parent judges them against the tolerances).
 */
import { readFileSync } from 'node:fs';
import { createWasmBackend } from '../dist/assembly/node.js';
import { runConformance } from '../dist/harness/tools/conformance.js';
import { generateInput } from '../dist/harness/core/generators.js';
import { createReferenceBackend } from '../dist/reference/index.js';

const { goldenDir, stageCases, pooledCases } = JSON.parse(readFileSync(0, 'utf8'));

function maxErr(a, b, relative) {
  let worst = 0;
  for (let i = 0; i < b.length; i++) {
    const e = Math.abs(a[i] - b[i]);
    if (e === 0) continue;
    const x = relative ? e / Math.abs(b[i]) : e;
    if (!(x <= worst)) worst = x;
  }
  return worst;
}
const same = (a, b) => a.length === b.length && a.every((x, i) => Object.is(x, b[i]));

const reference = createReferenceBackend();
const one = await createWasmBackend({ threads: 1, simd: 'relaxed', costRule: false });
const two = await createWasmBackend({ threads: 2, simd: 'relaxed', costRule: false });
try {
  const golden = await runConformance(goldenDir, [one, two]);
  const stages = [];
  for (const c of stageCases) {
    const input = generateInput(c.kind, { heads: c.heads, kvHeads: c.kvHeads, headDim: c.headDim, seqLen: c.seqLen }, c.seed);
    const indices = Int32Array.from(c.indices);
    const scores = await one.scores(input, c.options);
    const dense = await one.dense(input);
    const sparse = await one.attendSelected(input, indices, c.n);
    stages.push({
      scoresRel: maxErr(scores, await reference.scores(input, c.options), true),
      denseAbs: maxErr(dense, await reference.dense(input), false),
      attendAbs: maxErr(sparse, await reference.attendSelected(input, indices, c.n), false),
      threadsIdentical:
        same(scores, await two.scores(input, c.options)) &&
        same(dense, await two.dense(input)) &&
        same(sparse, await two.attendSelected(input, indices, c.n)),
    });
  }
  const exact = [];
  for (const c of pooledCases) {
    const pooled = Float32Array.from(c.pooled);
    const want = {
      pool: await reference.pool(pooled, c.shape, c.options),
      budget: await reference.budget(pooled, c.shape, c.options),
      select: await reference.select(pooled, c.shape, c.keep, c.options),
    };
    for (const b of [one, two]) {
      exact.push({
        pool: same(await b.pool(pooled, c.shape, c.options), want.pool),
        budget: JSON.stringify(await b.budget(pooled, c.shape, c.options)) === JSON.stringify(want.budget),
        select: same(await b.select(pooled, c.shape, c.keep, c.options), want.select),
      });
    }
  }
  const failures = golden.filter((r) => !r.pass).map((r) => `${r.backend} ${r.case} ${r.stage}: ${r.detail}`);
  console.log(JSON.stringify({ descriptions: [one.description, two.description], goldenRows: golden.length, failures, stages, exact }));
} finally {
  await one.dispose();
  await two.dispose();
}
