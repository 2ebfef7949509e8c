/**
 * The relaxed-SIMD build of the WASM backend (f32x4.relaxed_madd). Node 20 validates it only with
 * --experimental-wasm-relaxed-simd, which NODE_OPTIONS does not accept, so it runs in a child
 * node (test/wasm-relaxed-child.mjs, using dist/ from `npm run build`) with that flag where this
 * runtime needs it. Checked there, on 1 and 2 threads: golden conformance; scores, dense and
 * attendSelected (same indices) against the reference on random shapes; pool, budget and select
 * identical to the reference; 1 and 2 threads bit-identical.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { WASM_FILES } from '../assembly/node.js';
import { Rng } from '../harness/core/generators.js';
import { goldenDir } from './shared/golden-dir.js';
import { tolerances } from './shared/tolerances.js';
import { inputOf, pooledArb, randomIndices, stageCaseArb } from './wasm-cases.js';

const CHILD = fileURLToPath(new URL('./wasm-relaxed-child.mjs', import.meta.url));

interface ChildReport {
  descriptions: string[];
  goldenRows: number;
  failures: string[];
  stages: { scoresRel: number; denseAbs: number; attendAbs: number; threadsIdentical: boolean }[];
  exact: { pool: boolean; budget: boolean; select: boolean }[];
}

const validatesRelaxed = (): boolean =>
  (globalThis as unknown as { WebAssembly: { validate(b: Uint8Array): boolean } }).WebAssembly.validate(
    new Uint8Array(readFileSync(WASM_FILES.relaxed)),
  );

describe('wasm backend (relaxed SIMD, child process)', () => {
  it('matches the golden vectors and the reference on 1 and 2 threads', async () => {
    const stageCases = fc.sample(stageCaseArb, 10).map((c) => {
      const rng = new Rng(c.seed ^ 0x5bd1e995);
      const n = 1 + (rng.u32() % c.seqLen);
      return { ...c, n, indices: Array.from(randomIndices(c.heads, c.seqLen, n, rng)) };
    });
    const pooledCases = fc.sample(pooledArb, 10).map((c) => ({ ...c, pooled: Array.from(c.pooled) }));
    const flags = validatesRelaxed() ? [] : ['--experimental-wasm-relaxed-simd'];
    const child = execFile(process.execPath, [...flags, CHILD], { maxBuffer: 1 << 26 });
    child.stdin!.end(JSON.stringify({ goldenDir: goldenDir(), stageCases, pooledCases }));
    const stdout = await new Promise<string>((resolve, reject) => {
      let out = '';
      let err = '';
      child.stdout!.on('data', (d: string) => (out += d));
      child.stderr!.on('data', (d: string) => (err += d));
      child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`child exited with ${code}: ${err}`))));
    });
    const report = JSON.parse(stdout) as ChildReport;

    expect(report.descriptions).toEqual(['wasm relaxed-simd, 1 thread; forced', 'wasm relaxed-simd, 2 threads; forced']);
    expect(report.goldenRows).toBeGreaterThan(40);
    expect(report.failures).toEqual([]);
    stageCases.forEach((c, i) => {
      const tol = tolerances('float32', inputOf(c));
      const r = report.stages[i]!;
      const what = `case ${JSON.stringify({ ...c, indices: undefined })}`;
      expect(r.scoresRel, what).toBeLessThanOrEqual(tol.scoreRel);
      expect(r.denseAbs, what).toBeLessThanOrEqual(tol.outAbs);
      expect(r.attendAbs, what).toBeLessThanOrEqual(tol.outAbs);
      expect(r.threadsIdentical, what).toBe(true);
    });
    expect(report.stages.length).toBe(stageCases.length);
    expect(report.exact).toEqual(pooledCases.flatMap(() => [1, 2].map(() => ({ pool: true, budget: true, select: true }))));
  });
});

