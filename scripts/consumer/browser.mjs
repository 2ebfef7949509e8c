/**
 * Step 5 of scripts/consumer/check.mjs: a Vite production build (default config) of
 * fixture/web, a page importing the installed package, served cross-origin isolated
 * (COOP/COEP) with the golden vectors under /golden/, opened in headless Chromium
 * (playwright-core, /usr/bin/chromium). The page selects a backend and runs the wasm backend
 * with 2 threads on golden case b; its keep count and indices must be the authors', its output
 * within the conformance tolerance of the authors' output. The same page on Vite's dev server
 * (with the package excluded from dependency pre-bundling, as README says).
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

const ISOLATION = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };

/** A request handler serving /golden/* from `golden` and everything else from `root` (when given), cross-origin isolated. */
function files(root, golden) {
  return (req, res, next) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const inGolden = path.startsWith('/golden/');
    if (!inGolden && !root) return next();
    const [base, rel] = inGolden ? [golden, path.slice('/golden/'.length)] : [root, path === '/' ? 'index.html' : path.slice(1)];
    const file = normalize(join(base, rel));
    if (!file.startsWith(base) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404, ISOLATION).end('not found');
      return;
    }
    res.writeHead(200, { ...ISOLATION, 'Content-Type': MIME[extname(file)] ?? 'application/octet-stream' }).end(readFileSync(file));
  };
}

/** Opens `url` (the fixture page) and checks its result against the golden run; rows labelled `label`. */
async function runPage(browser, url, goldenRun, label) {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message)).on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  await page.goto(`${url}?${new URLSearchParams({ options: JSON.stringify(goldenRun.options) })}`);
  await page.waitForFunction(() => 'tsaResult' in globalThis, null, { timeout: 120_000 });
  const r = await page.evaluate(() => globalThis.tsaResult);
  await page.close();
  if (r.error) return [[`${label}: the page ran`, false, `${r.error}\npage errors: ${errors.join('; ')}`]];
  const wasm = r.report.find((x) => x.name === 'wasm');
  const indices = r.indices ? decode(r.indices, Int32Array) : null;
  const sameIndices = indices !== null && indices.length === goldenRun.indices.length && indices.every((x, i) => x === goldenRun.indices[i]);
  const output = decode(r.output, Float32Array);
  let err = output.length === goldenRun.output.length ? 0 : Infinity;
  for (let i = 0; i < output.length && err < Infinity; i++) err = Math.max(err, Math.abs(output[i] - goldenRun.output[i]));
  return [
    [`${label}: cross-origin isolated, selectBackend() picks wasm (${wasm?.reason})`, r.crossOriginIsolated && r.selected === 'wasm', JSON.stringify(r.report)],
    [`${label}: threaded wasm runs (${r.description})`, /^wasm \S+, 2 threads/.test(r.description), r.description],
    [`${label}: golden case b keep ${r.keep} and indices are the authors'`, r.keep === goldenRun.keep && sameIndices, `keep ${r.keep} vs ${goldenRun.keep}`],
    [`${label}: golden case b output max abs err ${err.toExponential(2)} (tol ${OUTPUT_TOLERANCE})`, err <= OUTPUT_TOLERANCE],
    [`${label}: no page errors`, errors.length === 0, errors.join('\n')],
  ];
}

const decode = (b64, Type) => {
  const buf = Buffer.from(b64, 'base64');
  return new Type(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
};

/** [what, ok, detail] rows. */
export async function checkBrowserBuild({ app, repo, golden }) {
  const rows = [];
  const fromRepo = createRequire(join(repo, 'package.json'));
  const { build, createServer: createViteServer } = await import(pathToFileURL(fromRepo.resolve('vite')).href);
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

  const server = createServer(files(outDir, golden));
  await new Promise((done) => server.listen(0, '127.0.0.1', done));
  // The dev server: Vite's dependency pre-bundling would move the module away from build/, so the
  // package is excluded from it (README, Install).
  const dev = await createViteServer({
    root: web,
    logLevel: 'warn',
    optimizeDeps: { exclude: ['token-sparse-attention'] },
    server: { host: '127.0.0.1', port: 0, headers: ISOLATION },
    plugins: [{ name: 'golden', configureServer: (s) => void s.middlewares.use(files(null, golden)) }],
  });
  await dev.listen();
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    rows.push(...(await runPage(browser, `http://127.0.0.1:${server.address().port}/`, goldenRun, 'Chromium, vite build')));
    rows.push(...(await runPage(browser, dev.resolvedUrls.local[0], goldenRun, 'Chromium, vite dev server')));
  } finally {
    await browser.close();
    await dev.close();
    server.close();
  }
  return rows;
}
