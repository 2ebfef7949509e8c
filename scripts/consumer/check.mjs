#!/usr/bin/env node
/**
 * The package as a user gets it (CI runs this after npm test; `npm run test:consumer`):
 * `npm pack` (prepack builds dist/ and build/), then an empty temporary project installs the
 * tarball (its dependencies from the npm cache or registry; the optional peers webgpu and
 * onnxruntime-* are left out, as for a wasm-only user) and checks there:
 *  1. the tarball's contents: compiled entries, declarations, both wasm builds, the worker, the
 *     CommonJS stub, LICENSE and CHANGELOG, no TypeScript sources, maps with sourcesContent;
 *  2. the public API on golden case b (auto-selected backend and reference, every stage passes),
 *     and require() from CommonJS;
 *  3. `npx tsa --version`, `npx tsa backends` (wasm selected; webgpu says how to install it; no
 *     Dawn warning), a usage error (one line, exit 2), `npx tsa bench --lengths 2048`
 *     (peers missing with a clear reason);
 *  4. a strict TypeScript consumer (skipLibCheck: false) of the Node and the browser entry;
 *  5. a Vite production build of a page importing the package, run in headless Chromium with
 *     threaded wasm on golden case b, and the same page on Vite's dev server (browser.mjs);
 *  6. with the optional peer webgpu installed: `npx tsa backends` prints nothing on stderr (Dawn's
 *     warnings hidden), and a destroyed device or a dispose() during calls gives typed errors and
 *     no unhandled rejection (fixture/device-lost.mjs; lavapipe or llvmpipe in CI).
 * Golden vectors: $TSA_GOLDEN_DIR, else ../shared/golden beside the repository.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkBrowserBuild } from './browser.mjs';

const REPO = resolve(fileURLToPath(import.meta.url), '../../..');
const FIXTURE = join(REPO, 'scripts/consumer/fixture');
const GOLDEN = process.env.TSA_GOLDEN_DIR ? resolve(process.env.TSA_GOLDEN_DIR) : resolve(REPO, '../shared/golden');
const TSC = join(REPO, 'node_modules/typescript/bin/tsc');

let failures = 0;
const t0 = performance.now();
function check(what, ok, detail = '') {
  const s = ((performance.now() - t0) / 1000).toFixed(0).padStart(4);
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${s}s ${what}${!ok && detail ? `\n${detail}` : ''}`);
  if (!ok) failures++;
}

/** Runs a command in `cwd`; returns status and output (never throws). */
function sh(cwd, cmd, args, env = {}) {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, ...env }, timeout: 300_000 });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', all: `${r.stdout}\n${r.stderr}`.trim() };
}

if (!existsSync(join(GOLDEN, 'manifest.json'))) {
  console.error(`no golden vectors at ${GOLDEN} (set TSA_GOLDEN_DIR)`);
  process.exit(1);
}
/** A temporary directory with no node_modules above it, so nothing but the install is resolvable. */
function cleanTempDir() {
  const hasModulesAbove = (dir) => dir.split('/').some((_, i, parts) => existsSync(join('/', ...parts.slice(0, i + 1), 'node_modules')));
  const base = [process.env.TSA_CONSUMER_TMP, tmpdir(), '/var/tmp', '/dev/shm'].find((d) => d && existsSync(d) && !hasModulesAbove(resolve(d)));
  if (!base) throw new Error('every temporary directory has a node_modules above it; set TSA_CONSUMER_TMP to one without');
  return mkdtempSync(join(base, 'tsa-consumer-'));
}
const tmp = cleanTempDir();
const app = join(tmp, 'app');
try {
  // 1. pack and contents
  const packed = JSON.parse(execFileSync('npm', ['pack', '--json', '--pack-destination', tmp], { cwd: REPO, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }))[0];
  const files = packed.files.map((f) => f.path);
  const must = ['LICENSE', 'CHANGELOG.md', 'README.md', 'require.cjs', 'build/tsa-simd.wasm', 'build/tsa-relaxed-simd.wasm', 'dist/harness/index.js', 'dist/harness/index.d.ts', 'dist/harness/browser.js', 'dist/harness/tools/cli.js', 'dist/assembly/worker-browser.js', 'dist/gpu/backend.d.ts'];
  const missing = must.filter((f) => !files.includes(f));
  check(`npm pack: ${files.length} files, ${(packed.size / 1024).toFixed(0)} KiB`, missing.length === 0, `missing: ${missing.join(', ')}`);
  const sources = files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'));
  check('no TypeScript sources in the tarball', sources.length === 0, sources.join('\n'));

  cpSync(FIXTURE, app, { recursive: true });
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'tsa-consumer', private: true, type: 'module' }));
  const install = sh(app, 'npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', join(tmp, packed.filename), '@types/node@20']);
  check('npm install <tarball> in an empty project', install.status === 0, install.all);
  if (install.status !== 0) throw new Error('install failed');
  const pkg = join(app, 'node_modules/token-sparse-attention');
  check('the optional peers (webgpu, onnxruntime-*) are not installed', ['webgpu', 'onnxruntime-node', 'onnxruntime-web'].every((p) => !existsSync(join(app, 'node_modules', p))));
  const maps = readdirSync(join(pkg, 'dist/harness')).filter((f) => f.endsWith('.js.map'));
  const noSources = maps.filter((m) => !JSON.parse(readFileSync(join(pkg, 'dist/harness', m), 'utf8')).sourcesContent?.[0]);
  check(`source maps carry sourcesContent (${maps.length} in dist/harness)`, maps.length > 0 && noSources.length === 0, noSources.join(', '));

  // 2. the public API
  const api = sh(app, process.execPath, ['api.mjs', GOLDEN]);
  const result = api.status === 0 ? JSON.parse(api.stdout.trim().split('\n').pop()) : null;
  const failed = result?.rows.filter((r) => !r.pass) ?? [];
  check(`API: golden case b on ${result?.selected} and reference, ${result?.rows.length} stage rows pass`, result !== null && result.rows.length > 0 && failed.length === 0, api.all + JSON.stringify(failed));
  check('API: wasm is auto-selected (webgpu not installed)', result?.selected === 'wasm', result?.why);
  const cjs = sh(app, process.execPath, ['require.cjs']);
  check('require() from CommonJS', cjs.status === 0 && /"selectBackend":"function"/.test(cjs.stdout), cjs.all);

  // 3. the CLI
  const version = sh(app, 'npx', ['tsa', '--version']);
  check('npx tsa --version', version.status === 0 && version.stdout.trim() === packed.version, version.all);
  const backends = sh(app, 'npx', ['tsa', 'backends']);
  check('npx tsa backends: wasm selected, exit 0', backends.status === 0 && /^wasm\s.*\*/m.test(backends.stdout), backends.all);
  check('npx tsa backends: webgpu says to install webgpu', /^webgpu\s.*install webgpu to enable/m.test(backends.stdout), backends.stdout);
  check('npx tsa backends: no Dawn warning, nothing on stderr', backends.stderr.trim() === '', backends.stderr);
  const usage = sh(app, 'npx', ['tsa', 'bench', '--lenghts', '2048']);
  check('npx tsa bench --lenghts: one line, exit 2', usage.status === 2 && usage.stderr.trim().split('\n').length === 1 && /did you mean --lengths/.test(usage.stderr), usage.all);
  // --peers onnx names the peers, so a missing one is a failed row with its reason (an unnamed one is skipped).
  const bench = sh(app, 'npx', ['tsa', 'bench', '--lengths', '2048', '--peers', 'onnx', '--json', 'bench.json', '--svg', 'bench.svg']);
  const records = bench.status === 0 ? JSON.parse(readFileSync(join(app, 'bench.json'), 'utf8')).records : [];
  check(`npx tsa bench --lengths 2048: exit 0, ${records.length} records`, bench.status === 0 && records.some((r) => r.mode === 'tsa' && r.seqLen === 2048 && !r.error), bench.all);
  const peerErrors = records.filter((r) => r.peer && r.error).map((r) => r.error);
  check('npx tsa bench --peers onnx: a missing peer says how to install it', peerErrors.length > 0 && peerErrors.every((e) => /is not installed \(npm install onnxruntime-(node|web)/.test(e)), peerErrors.join('\n'));

  // 4. strict TypeScript consumers
  for (const entry of ['node', 'browser']) {
    const tsc = sh(app, process.execPath, [TSC, '-p', `tsconfig.${entry}.json`]);
    check(`strict TypeScript consumer of the ${entry} entry (skipLibCheck: false)`, tsc.status === 0, tsc.all);
  }

  // 5. Vite production build in headless Chromium
  for (const [what, ok, detail] of await checkBrowserBuild({ app, repo: REPO, golden: GOLDEN })) check(what, ok, detail);

  // 6. with the optional peer webgpu installed: the CLI stays quiet, a lost device is an error, not a crash
  const webgpu = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).peerDependencies.webgpu;
  const peer = sh(app, 'npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', `webgpu@${webgpu}`]);
  check(`npm install webgpu@${webgpu}`, peer.status === 0, peer.all);
  const gpuRows = sh(app, 'npx', ['tsa', 'backends'], { EGL_PLATFORM: 'surfaceless' });
  check('npx tsa backends with webgpu: exit 0, nothing on stderr (Dawn warnings hidden)', gpuRows.status === 0 && gpuRows.stderr.trim() === '', gpuRows.all);
  const lost = sh(app, process.execPath, ['device-lost.mjs'], { EGL_PLATFORM: 'surfaceless' });
  const l = lost.status === 0 ? JSON.parse(lost.stdout.trim().split('\n').pop()) : null;
  check(`WebGPU (${l?.description}): a call after device.destroy() throws BackendLostError`, l?.afterDestroy === 'BackendLostError', lost.all);
  check('WebGPU: calls in flight during dispose() settle with a result or a TsaError', l !== null && l.inFlight.every((x) => x === 'ok' || /^Tsa|^Backend/.test(x)), JSON.stringify(l?.inFlight));
  check('WebGPU: no unhandled rejection after device loss or dispose', l !== null && l.unhandled.length === 0, l?.unhandled.join('\n'));
} catch (e) {
  check('consumer check', false, e instanceof Error ? e.stack : String(e));
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
console.log(failures === 0 ? '\nconsumer check: all passed' : `\nconsumer check: ${failures} failed`);
process.exitCode = failures === 0 ? 0 : 1;
