/**
 * The browser entry (dist/harness/browser.js, from `npm run build`) in headless Chromium
 * (playwright-core, /usr/bin/chromium): a static server on 127.0.0.1 serves dist/, build/ and the
 * golden vectors, cross-origin isolated (COOP/COEP) under / and not isolated under /open/.
 *
 * - the browser entry's import graph reaches no node: module, no bare specifier and not Dawn's
 *   device module (gpu/device.ts);
 * - isolated: selectBackend() picks wasm with relaxed SIMD; tokenSparseAttention on a structured
 *   input (1 and 2 threads) and on golden case b matches the reference backend run in Node
 *   (indices and keep count exact, outputs within 2e-5), and golden b's indices are the authors';
 * - webgpu on navigator.gpu (SwiftShader here): probeBackends() reports all three backends with
 *   reasons (webgpu works but is not auto-selected), forced webgpu matches golden case b (indices
 *   exact, outputs within 2e-5), and after device.destroy() the next call is BackendLostError;
 * - not isolated: wasm is unavailable with a reason naming cross-origin isolation, and
 *   selectBackend() falls back to the reference backend.
 */
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { maxAbsErr } from '../harness/core/compare.js';
import { loadGoldenCase } from '../harness/tools/golden.js';
import { generateInput } from '../harness/core/generators.js';
import type { AttentionShape, TsaOptions } from '../harness/core/interface.js';
import { BROWSER_SOFTWARE_NOT_AUTO } from '../gpu/browser.js';
import { ISOLATION_HEADERS, resolveStatic, sendStatic, type StaticSite } from '../harness/tools/demo/static.js';
import { createReferenceBackend } from '../reference/index.js';
import { launchChromium, openAndWait } from './shared/chromium.js';
import { importGraph } from './shared/import-graph.js';
import { goldenDir, goldenDirProblem, REPO_ROOT } from './shared/golden-dir.js';
const ENTRY = join(REPO_ROOT, 'dist', 'harness', 'browser.js');
const PAGE_MODULE = join(REPO_ROOT, 'test', 'browser-page.mjs');
const GOLDEN_CASE = 'b_struct_h4kv2_d64_l2048';
const SHAPE: AttentionShape = { heads: 4, kvHeads: 2, headDim: 32, seqLen: 1400 };
const SEED = 7;
const OPTIONS: TsaOptions = { minTokens: 256 };
const OUTPUT_TOLERANCE = 2e-5;

/**
 * Serves /dist/* and /build/* from the repository, /golden/* from the golden directory, and a page
 * /index.html loading /page.mjs (test/browser-page.mjs); the same under /open/ without COOP/COEP.
 */
function startServer(): Promise<Server> {
  const site: StaticSite = {
    files: { '/page.mjs': PAGE_MODULE },
    dirs: { dist: join(REPO_ROOT, 'dist'), build: join(REPO_ROOT, 'build'), golden: goldenDir() },
  };
  const server = createServer((req, res) => {
    let path = new URL(req.url ?? '/', 'http://x').pathname;
    const isolated = !path.startsWith('/open/');
    if (!isolated) path = path.slice('/open'.length);
    const headers: Record<string, string> = isolated ? { ...ISOLATION_HEADERS } : {};
    if (path === '/index.html') {
      res.writeHead(200, { ...headers, 'Content-Type': 'text/html' });
      res.end('<!doctype html><title>tsa</title><script type="module" src="page.mjs"></script>');
      return;
    }
    sendStatic(res, resolveStatic(site, path), headers);
  });
  return new Promise((done) => server.listen(0, '127.0.0.1', () => done(server)));
}

interface PageResult {
  crossOriginIsolated: boolean;
  selected: { name: string; description: string; report: { name: string; available: boolean; reason: string }[] };
  runs: { description: string; output: string; indices: string | null; keep: number | null }[];
}

interface WebGpuPageResult {
  probe: { name: string; available: boolean; autoSelect: boolean; reason: string }[];
  why: string;
  golden: PageResult['runs'][number];
  lost: { before: number; after: { name: string; lost: boolean; message: string } | null };
}

/** Opens the page (isolated or not) and runs test/browser-page.mjs's runInPage there. */
async function runInPage(page: Page, url: string, golden: { name: string; options: TsaOptions }): Promise<PageResult> {
  await openAndWait(page, url, () => 'runInPage' in globalThis, 15_000);
  const args = { shape: SHAPE, seed: SEED, options: OPTIONS, golden };
  return page.evaluate((a) => (globalThis as unknown as { runInPage(x: typeof a): Promise<PageResult> }).runInPage(a), args);
}

const decodeF32 = (b64: string): Float32Array => {
  const buf = Buffer.from(b64, 'base64');
  return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
};
const decodeI32 = (b64: string): Int32Array => {
  const buf = Buffer.from(b64, 'base64');
  return new Int32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
};
describe('browser entry in headless Chromium', () => {
  let server: Server | undefined;
  let browser: Browser | undefined;
  let page: Page;
  let origin: string;

  // A setup failure (no Chromium, no build) fails every test with its message, rather than skipping them.
  let setupError: Error | null = null;
  const setUp = async (): Promise<void> => {
    if (!existsSync(ENTRY)) throw new Error(`${ENTRY} is missing: run npm run build`);
    const problem = goldenDirProblem(goldenDir());
    if (problem) throw new Error(problem);
    server = await startServer();
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    browser = await launchChromium();
    page = await browser.newPage();
  };
  const ready = (): void => {
    if (setupError) throw setupError;
  };
  beforeAll(async () => {
    await setUp().catch((e: Error) => {
      setupError = e;
    });
  });

  afterAll(async () => {
    await browser?.close();
    await new Promise<void>((done) => (server ? server.close(() => done()) : done()));
  });

  it('reaches no node: module and no bare specifier from dist/harness/browser.js, nor the Dawn device module', () => {
    ready();
    const { files, problems } = importGraph([ENTRY]);
    const reached = files.map((f) => f.slice(REPO_ROOT.length + 1));
    expect(reached).toEqual(
      expect.arrayContaining([
        'dist/assembly/browser.js',
        'dist/assembly/worker-browser.js',
        'dist/reference/index.js',
        'dist/gpu/browser.js',
        'dist/gpu/device-browser.js',
        'dist/gpu/context.js',
        'dist/gpu/backend.js',
        'dist/gpu/core.js',
      ]),
    );
    expect(reached.filter((f) => f === 'dist/gpu/device.js' || f === 'dist/gpu/index.js')).toEqual([]);
    expect(problems).toEqual([]);
  });

  it('webgpu on navigator.gpu (SwiftShader): probed with reasons, forced, golden case b exact, a destroyed device is BackendLostError', async () => {
    ready();
    const goldenCase = loadGoldenCase(goldenDir(), GOLDEN_CASE);
    const goldenRun = goldenCase.runs.find((r) => r.indices !== null)!;
    await openAndWait(page, `${origin}/index.html`, () => 'webgpuInPage' in globalThis, 15_000);
    const lostShape: AttentionShape = { heads: 2, kvHeads: 1, headDim: 64, seqLen: 64 };
    const args = { golden: { name: GOLDEN_CASE, options: goldenRun.options }, lost: { shape: lostShape } };
    const pageErrors: string[] = [];
    const onError = (e: Error): void => void pageErrors.push(e.message);
    page.on('pageerror', onError);
    const result = await page
      .evaluate((a) => (globalThis as unknown as { webgpuInPage(x: typeof a): Promise<WebGpuPageResult> }).webgpuInPage(a), args)
      .finally(() => page.off('pageerror', onError));
    // Nothing left unhandled by the lost device (e.g. a timestamp readback nobody awaits).
    expect(pageErrors).toEqual([]);

    expect(result.probe.map((r) => [r.name, r.available, r.autoSelect])).toEqual([
      ['webgpu', true, false],
      ['wasm', true, true],
      ['reference', true, true],
    ]);
    expect(result.probe[0]!.reason).toBe(`works, not auto-selected: ${BROWSER_SOFTWARE_NOT_AUTO}`);
    expect(result.probe[1]!.reason).toMatch(/^wasm relaxed-simd, \d+ threads?/);
    expect(result.probe[2]!.reason).toMatch(/float64/);
    expect(result.why).toMatch(/^'webgpu' forced by name \(WebGPU on google \/ swiftshader; navigator\.gpu, core mode;/);

    expect(result.golden.keep).toBe(goldenRun.keep);
    expect(Array.from(decodeI32(result.golden.indices!))).toEqual(Array.from(goldenRun.indices!));
    const output = decodeF32(result.golden.output);
    expect(output.length).toBe(goldenRun.output.length);
    expect(maxAbsErr(output, goldenRun.output)).toBeLessThanOrEqual(OUTPUT_TOLERANCE);

    expect(result.lost.before).toBe(64 * 2 * 64);
    expect(result.lost.after).toMatchObject({ name: 'BackendLostError', lost: true });
    expect(result.lost.after!.message).toMatch(/device was lost \(destroyed/);
  });

  it('selects wasm (relaxed SIMD) when isolated and matches the Node reference on 1 and 2 threads', async () => {
    ready();
    const goldenCase = loadGoldenCase(goldenDir(), GOLDEN_CASE);
    const goldenRun = goldenCase.runs.find((r) => r.indices !== null)!;
    const result = await runInPage(page, `${origin}/index.html`, { name: GOLDEN_CASE, options: goldenRun.options });
    expect(result.crossOriginIsolated).toBe(true);
    expect(result.selected.name, JSON.stringify(result.selected.report)).toBe('wasm');
    expect(result.selected.description).toMatch(/^wasm relaxed-simd, \d+ threads?; relaxed SIMD accepted$/);

    const reference = createReferenceBackend();
    const structured = await reference.tokenSparseAttention(generateInput('structured', SHAPE, SEED), OPTIONS);
    const golden = await reference.tokenSparseAttention(goldenCase.input, goldenRun.options);
    expect(structured.budget.mode).toBe('sparse');
    expect(Array.from(golden.indices!)).toEqual(Array.from(goldenRun.indices!));

    expect(result.runs.map((r) => r.description)).toEqual([
      'wasm relaxed-simd, 1 thread; relaxed SIMD accepted',
      'wasm relaxed-simd, 1 thread; relaxed SIMD accepted',
      'wasm relaxed-simd, 2 threads; relaxed SIMD accepted',
      'wasm relaxed-simd, 2 threads; relaxed SIMD accepted',
    ]);
    result.runs.forEach((run, i) => {
      const expected = i % 2 === 0 ? structured : golden;
      const what = `${run.description}, ${i % 2 === 0 ? 'structured' : GOLDEN_CASE}`;
      expect(run.keep, what).toBe(expected.budget.mode === 'sparse' ? expected.budget.keep : null);
      expect(Array.from(decodeI32(run.indices!)), what).toEqual(Array.from(expected.indices!));
      const output = decodeF32(run.output);
      expect(output.length, what).toBe(expected.output.length);
      expect(maxAbsErr(output, expected.output), what).toBeLessThanOrEqual(OUTPUT_TOLERANCE);
    });
    expect(result.runs[1]!.keep).toBe(goldenRun.keep);
  });

  it('says wasm needs cross-origin isolation on a page without COOP/COEP, and falls back to reference', async () => {
    ready();
    const result = await runInPage(page, `${origin}/open/index.html`, { name: GOLDEN_CASE, options: {} });
    expect(result.crossOriginIsolated).toBe(false);
    expect(result.selected.name).toBe('reference');
    const wasm = result.selected.report.find((row) => row.name === 'wasm')!;
    expect(wasm.available).toBe(false);
    expect(wasm.reason).toMatch(/crossOriginIsolated is false.*Cross-Origin-Opener-Policy: same-origin.*Cross-Origin-Embedder-Policy: require-corp/);
  });
});
