/**
 * Step 5 of scripts/consumer/check.mjs: a Vite production build (default config) of
 * fixture/web, a page importing the installed package, served cross-origin isolated
 * (COOP/COEP) with the golden vectors under /golden/, opened in headless Chromium
 * (playwright-core, /usr/bin/chromium). The page selects a backend and runs the wasm backend
 * with 2 threads on golden case b; its keep count and indices must be the authors', its output
 * within the conformance tolerance of the authors' output.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { extname, join, normalize } from 'node:path';
import { pathToFileURL } from 'node:url';

const CHROMIUM = '/usr/bin/chromium';
const CASE = 'b_struct_h4kv2_d64_l2048';
const OUTPUT_TOLERANCE = 2e-5; // harness/tools/conformance.ts TOLERANCE.outputAbs
const MIME = { '.js': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json', '.html': 'text/html', '.bin': 'application/octet-stream' };

/** Serves `root` (the build) and /golden/* from `golden`, with COOP/COEP on every response. */
function serve(root, golden) {
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const [base, rel] = path.startsWith('/golden/') ? [golden, path.slice('/golden/'.length)] : [root, path === '/' ? 'index.html' : path.slice(1)];
    const file = normalize(join(base, rel));
    const headers = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };
    if (!file.startsWith(base) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404, headers).end('not found');
      return;
    }
    res.writeHead(200, { ...headers, 'Content-Type': MIME[extname(file)] ?? 'application/octet-stream' }).end(readFileSync(file));
  });
  return new Promise((done) => server.listen(0, '127.0.0.1', () => done(server)));
}

const decode = (b64, Type) => {
  const buf = Buffer.from(b64, 'base64');
  return new Type(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
};

/** [what, ok, detail] rows. */
export async function checkBrowserBuild({ app, repo, golden }) {
  const rows = [];
  const fromRepo = createRequire(join(repo, 'package.json'));
  const { build } = await import(pathToFileURL(fromRepo.resolve('vite')).href);
  const { chromium } = fromRepo('playwright-core');
  // The golden case, loaded by the installed package's Node entry.
  const { loadGoldenCase } = await import(pathToFileURL(join(app, 'node_modules/token-sparse-attention/dist/harness/index.js')).href);
  const goldenRun = loadGoldenCase(golden, CASE).runs.find((r) => r.indices !== null);

  const web = join(app, 'web');
  const outDir = join(web, 'dist');
  await build({ root: web, logLevel: 'warn', build: { outDir, emptyOutDir: true } });
  const assets = readdirSync(join(outDir, 'assets'));
  const workers = assets.filter((f) => f.startsWith('worker-browser') && f.endsWith('.js'));
  rows.push([`vite build: ${assets.length} assets (${assets.filter((f) => f.endsWith('.wasm')).length} wasm, worker ${workers.join(', ')})`, workers.length === 1 && assets.filter((f) => f.endsWith('.wasm')).length === 2, assets.join(', ')]);
  const workerText = workers.length === 1 ? readFileSync(join(outDir, 'assets', workers[0]), 'utf8') : '';
  rows.push(['vite build: the worker is bundled (no relative import left in it)', workers.length === 1 && !/\bfrom\s*['"]\.\.?\//.test(workerText), workerText.slice(0, 400)]);

  const server = await serve(outDir, golden);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await browser.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message)).on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    const query = new URLSearchParams({ options: JSON.stringify(goldenRun.options) });
    await page.goto(`http://127.0.0.1:${server.address().port}/?${query}`);
    await page.waitForFunction(() => 'tsaResult' in globalThis, null, { timeout: 120_000 });
    const r = await page.evaluate(() => globalThis.tsaResult);
    if (r.error) {
      rows.push(['the page ran', false, `${r.error}\npage errors: ${errors.join('; ')}`]);
      return rows;
    }
    const wasm = r.report.find((x) => x.name === 'wasm');
    rows.push([`Chromium: cross-origin isolated, selectBackend() picks wasm (${wasm?.reason})`, r.crossOriginIsolated && r.selected === 'wasm', JSON.stringify(r.report)]);
    rows.push([`Chromium: threaded wasm runs (${r.description})`, /^wasm \S+, 2 threads/.test(r.description), r.description]);
    const indices = r.indices ? decode(r.indices, Int32Array) : null;
    const sameIndices = indices !== null && indices.length === goldenRun.indices.length && indices.every((x, i) => x === goldenRun.indices[i]);
    rows.push([`Chromium: golden case b keep ${r.keep} and indices are the authors'`, r.keep === goldenRun.keep && sameIndices, `keep ${r.keep} vs ${goldenRun.keep}`]);
    const output = decode(r.output, Float32Array);
    let err = output.length === goldenRun.output.length ? 0 : Infinity;
    for (let i = 0; i < output.length && err < Infinity; i++) err = Math.max(err, Math.abs(output[i] - goldenRun.output[i]));
    rows.push([`Chromium: golden case b output max abs err ${err.toExponential(2)} (tol ${OUTPUT_TOLERANCE})`, err <= OUTPUT_TOLERANCE]);
    rows.push(['Chromium: no page errors', errors.length === 0, errors.join('\n')]);
  } finally {
    await browser.close();
    server.close();
  }
  return rows;
}
