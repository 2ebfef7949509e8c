/**
 * The demo page (`npm run demo`: harness/tools/demo/) in headless Chromium, served by its own
 * server (cross-origin isolated):
 * - `?autorun=1&backend=wasm,webgpu&lengths=...` runs the sweep in the page, sets the title to
 *   'done' and writes the result JSON (a dense and a token-sparse record per backend and length)
 *   into <pre id="results">; the plot has one data mark per length in each series of each backend
 *   (latency dense and tsa, speedup measured and ideal); the backend list says why webgpu is not
 *   auto-selected (SwiftShader); in a Chromium without WebGPU it says why webgpu is unavailable
 *   and cannot be picked;
 * - an unknown backend ends in title 'error: ...' naming it;
 * - (in Node) the page's modules reach no node: module, and no bare name its import map lacks;
 *   the URL parameters parse with defaults and bad ones are TsaInputError; the server
 *   serves only its named files and mounted directories.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BROWSER_SOFTWARE_NOT_AUTO } from '../gpu/browser.js';
import type { BenchRecord } from '../harness/tools/bench.js';
import { TsaInputError } from '../harness/core/errors.js';
import { parseDemoParams, type DemoResult } from '../harness/tools/demo/sweep.js';
import { DEMO_SITE, startDemoServer } from '../harness/tools/demo/serve.js';
import { resolveStatic } from '../harness/tools/demo/static.js';
import { launchChromium, openAndWait } from './shared/chromium.js';
import { importGraph } from './shared/import-graph.js';
import { REPO_ROOT } from './shared/golden-dir.js';

const BACKENDS = ['wasm', 'webgpu'];
const LENGTHS = [256, 512];
const SHAPE = 'heads=2&kvHeads=1&headDim=32&inputs=structured';
const finished = (): boolean => {
  const { title } = (globalThis as unknown as { document: { title: string } }).document;
  return title === 'done' || title.startsWith('error:');
};

describe('demo page in headless Chromium', () => {
  let server: Server | undefined;
  let browser: Browser | undefined;
  let page: Page;
  let origin: string;

  beforeAll(async () => {
    for (const f of ['dist/harness/tools/demo/sweep.js', 'build/tsa-simd.wasm']) {
      if (!existsSync(join(REPO_ROOT, f))) throw new Error(`${f} is missing: run npm run build`);
    }
    ({ server, origin } = await startDemoServer());
    browser = await launchChromium();
    page = await browser.newPage();
  });

  afterAll(async () => {
    await browser?.close();
    await new Promise<void>((done) => (server ? server.close(() => done()) : done()));
  });

  it('autoruns the sweep on wasm and webgpu, writes the JSON and plots one mark per length, backend and series', async () => {
    await openAndWait(page, `${origin}/?autorun=1&backend=${BACKENDS.join(',')}&lengths=${LENGTHS.join(',')}&${SHAPE}`, finished, 170_000);
    expect(await page.title()).toBe('done');

    const result = JSON.parse((await page.textContent('#results'))!) as DemoResult;
    expect(result.config).toMatchObject({ backends: BACKENDS, lengths: LENGTHS, heads: 2, kvHeads: 1, headDim: 32, inputs: 'structured' });
    expect(result.backends.map((b) => b.name)).toEqual(BACKENDS);
    expect(result.backends[1]!.description).toMatch(/^WebGPU on google \/ swiftshader; navigator\.gpu/);
    const key = (r: BenchRecord) => `${r.backend} ${r.mode} ${r.seqLen}`;
    expect(result.records.map(key)).toEqual(BACKENDS.flatMap((b) => LENGTHS.flatMap((L) => [`${b} dense ${L}`, `${b} tsa ${L}`])));
    for (const r of result.records) {
      expect(r.error, key(r)).toBeUndefined();
      expect(r.medianMs, key(r)).toBeGreaterThan(0);
      expect(r.keptFraction, key(r)).toBeGreaterThan(0);
      expect(r.keptFraction, key(r)).toBeLessThanOrEqual(1);
    }

    const marks = await page.$$eval('#plot svg circle.mark', (cs) => cs.map((c) => `${c.getAttribute('data-series')} @${c.getAttribute('data-x')}`));
    const expected = BACKENDS.flatMap((b) =>
      [`${b} dense (structured)`, `${b} tsa (structured)`, `${b} tsa (structured) measured`, `${b} tsa (structured) ideal (L/L')^2 / share`].flatMap((s) =>
        LENGTHS.map((L) => `${s} @${L}`),
      ),
    );
    expect([...marks].sort()).toEqual([...expected].sort());
    const table = (await page.textContent('#table'))!.split('\n');
    expect(table.length).toBe(2 + result.records.length);
    expect(table[0]).toMatch(/^backend\s+mode\s+inputs\s+L\s+median ms/);
    expect(await page.textContent('#backends')).toContain(`webgpu works, not auto-selected: ${BROWSER_SOFTWARE_NOT_AUTO}`);
  });

  it('without WebGPU in the browser, lists webgpu as unavailable with the reason and leaves it unselectable', async () => {
    const plain = await launchChromium({ webgpu: false });
    try {
      const p = await plain.newPage();
      const ready = (): boolean => (globalThis as unknown as { document: { getElementById(id: string): { textContent: string } | null } }).document.getElementById('status')?.textContent === 'ready';
      await openAndWait(p, `${origin}/?backend=webgpu,wasm`, ready, 30_000);
      const row = await p.$eval('#backends', (el) => [...el.children].map((c) => c.textContent!.trim()).find((t) => t.startsWith('webgpu'))!);
      expect(row).toMatch(/^webgpu\s+unavailable: navigator\.gpu gave no WebGPU device: tried core: no adapter; compatibility: no adapter \(WebGPU is off .*--enable-unsafe-webgpu/);
      expect(await p.$eval('input[value=webgpu]', (el) => [(el as unknown as { disabled: boolean }).disabled, (el as unknown as { checked: boolean }).checked])).toEqual([true, true]);
      expect(await p.$eval('input[value=wasm]', (el) => (el as unknown as { disabled: boolean }).disabled)).toBe(false);
    } finally {
      await plain.close();
    }
  });

  it('ends with an error title naming an unknown backend', async () => {
    await openAndWait(page, `${origin}/?autorun=1&backend=nope&lengths=256`, finished, 30_000);
    expect(await page.title()).toMatch(/^error: BackendUnavailableError: unknown backend 'nope'; registered: webgpu, wasm, reference/);
  });
});

describe('demo page settings and server (Node)', () => {
  it('parses URL parameters with defaults and rejects bad ones with TsaInputError', () => {
    expect(parseDemoParams(new URLSearchParams('backend=wasm,webgpu&lengths=512, 1024&heads=8&kvHeads=2'))).toEqual({
      backends: ['wasm', 'webgpu'],
      lengths: [512, 1024],
      heads: 8,
      kvHeads: 2,
      headDim: 64,
      inputs: 'structured',
      coverage: 0.005,
      seed: 1,
    });
    const bad: [string, RegExp][] = [
      ['lengths=512,x', /lengths must be positive integers/],
      ['lengths=0', /lengths must be positive integers/],
      ['heads=3&kvHeads=2', /heads \(3\) must be a multiple of kvHeads \(2\)/],
      ['headDim=32,64', /headDim must be one positive integer/],
      ['inputs=uniform', /inputs must be gaussian or structured/],
      ['coverage=1', /coverage must be in \[0, 1\)/],
      ['backend=,', /backend must name at least one backend/],
    ];
    for (const [query, message] of bad) {
      expect(() => parseDemoParams(new URLSearchParams(query)), query).toThrow(TsaInputError);
      expect(() => parseDemoParams(new URLSearchParams(query)), query).toThrow(message);
    }
  });

  it("the page's modules reach no node: module and no bare name outside its import map", () => {
    const html = readFileSync(join(REPO_ROOT, 'harness/tools/demo/index.html'), 'utf8');
    const importMap = JSON.parse(/<script type="importmap">([\s\S]*?)<\/script>/.exec(html)![1]!) as { imports: Record<string, string> };
    const page = readFileSync(join(REPO_ROOT, 'harness/tools/demo/page.mjs'), 'utf8');
    const fromDist = [...page.matchAll(/from '\/(dist\/[^']+)'/g)].map((m) => join(REPO_ROOT, m[1]!));
    expect(fromDist.length).toBeGreaterThan(0);
    const { files, problems } = importGraph(fromDist, Object.keys(importMap.imports));
    expect(problems).toEqual([]);
    expect(files).toContain(join(REPO_ROOT, 'dist/harness/browser.js'));
  });

  it('serves named files and mounted directories only', () => {
    expect(resolveStatic(DEMO_SITE, '/index.html')).toBe(join(REPO_ROOT, 'harness/tools/demo/index.html'));
    expect(resolveStatic(DEMO_SITE, '/dist/harness/browser.js')).toBe(join(REPO_ROOT, 'dist/harness/browser.js'));
    expect(resolveStatic(DEMO_SITE, '/tinybench/index.js')).toBe(join(REPO_ROOT, 'node_modules/tinybench/dist/index.js'));
    for (const path of ['/dist/../package.json', '/dist', '/dist/', '/package.json', '/dist/nothing.js']) {
      expect(resolveStatic(DEMO_SITE, path), path).toBeNull();
    }
  });
});
