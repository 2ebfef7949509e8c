/**
 * The `tsa` CLI as users run it: `node dist/harness/tools/cli.js ...` (npm test builds dist first;
 * alone, run `npx tsc -p .` before this file). Conformance runs use temporary golden
 * directories holding only the small cases b and e, so they stay fast.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { goldenDir, goldenDirProblem, goldenXattnDir, REPO_ROOT } from './shared/golden-dir.js';

const CLI = join(REPO_ROOT, 'dist/harness/tools/cli.js');
const GOLDEN = goldenDir();
const CASE_B = 'b_struct_h4kv2_d64_l2048';
const CASE_E = 'e_gauss_h4kv2_d64_l1100_dense';

function tsa(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build first (npm test does; alone, run npx tsc -p .)`);
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface Manifest {
  cases: Record<string, { inputs: Record<string, { file: string }>; files: Record<string, { file: string }>; runs: Record<string, { files: Record<string, { file: string; sha256?: string }> }> }>;
}

const tempDirs: string[] = [];

/** A golden directory with only `cases`: a manifest listing them, and links to their files. */
function goldenSubset(cases: string[]): { dir: string; manifest: Manifest } {
  const problem = goldenDirProblem(GOLDEN);
  if (problem) throw new Error(problem);
  const full = JSON.parse(readFileSync(join(GOLDEN, 'manifest.json'), 'utf8')) as Manifest;
  const dir = mkdtempSync(join(tmpdir(), 'tsa-golden-'));
  tempDirs.push(dir);
  const manifest: Manifest = { ...full, cases: Object.fromEntries(cases.map((c) => [c, full.cases[c]!])) };
  for (const c of Object.values(manifest.cases)) {
    const entries = [...Object.values(c.inputs), ...Object.values(c.files), ...Object.values(c.runs).flatMap((r) => Object.values(r.files))];
    for (const { file } of entries) symlinkSync(join(GOLDEN, file), join(dir, file));
  }
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest));
  return { dir, manifest };
}

interface XattnManifest {
  inputs: string;
  runs: Record<string, { files: Record<string, { file: string; sha256?: string }> }>;
}

/** A golden-xattn directory with only `runs` (inputs: the golden directory, absolute), links to their files. */
function xattnSubset(runs: string[]): { dir: string; manifest: XattnManifest } {
  const src = goldenXattnDir();
  const full = JSON.parse(readFileSync(join(src, 'xattn_manifest.json'), 'utf8')) as XattnManifest;
  const dir = mkdtempSync(join(tmpdir(), 'tsa-golden-xattn-'));
  tempDirs.push(dir);
  const manifest: XattnManifest = { ...full, inputs: resolve(src, full.inputs), runs: Object.fromEntries(runs.map((r) => [r, full.runs[r]!])) };
  for (const r of Object.values(manifest.runs)) for (const { file } of Object.values(r.files)) symlinkSync(join(src, file), join(dir, file));
  writeFileSync(join(dir, 'xattn_manifest.json'), JSON.stringify(manifest));
  return { dir, manifest };
}

const XATTN_RUNS = ['b_struct_h4kv2_d64_l2048__tsa0.005_xattn_s16_t0.9', 'b_struct_h4kv2_d64_l2048__xattn_s16_t0.9'];

describe('tsa CLI', () => {
  beforeAll(() => {
    expect(existsSync(CLI), `${CLI} is missing: build first (npm test does; alone, run npx tsc -p .)`).toBe(true);
  });
  afterAll(() => {
    for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  });

  it('backends: lists the reference as available and exits 0', () => {
    const r = tsa('backends');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^reference\s+0\s+yes/m);
    expect(r.stdout).toMatch(/selected: \S+/);
  });

  it('backends --rates: the cost-rule rates of every available backend, also in --json', () => {
    const r = tsa('backends', '--rates');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^reference\s+0\s+yes/m);
    expect(r.stdout).toMatch(/^cost-rule rates:\n(  \S+: attend \d+\.\d GFLOP\/s \+ \d+\.\d\d ms, compact x\d\.\d\d, score .* min gain \d+%(; blocks: (no rates|score .*))?\n)+/m);
    expect(r.stdout).toMatch(/^  reference: attend /m);
    const json = JSON.parse(tsa('backends', '--rates', '--json').stdout) as { rates: Record<string, { attendRate: number } | null> };
    expect(json.rates.reference!.attendRate).toBeGreaterThan(0);
  });

  it('conformance --backend reference on cases b and e: every row passes, "0 failed", exit 0', () => {
    const { dir } = goldenSubset([CASE_B, CASE_E]);
    const r = tsa('conformance', dir, '--backend', 'reference');
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/\n\d+ passed, 0 failed\n/);
    const rows = r.stdout.split('\n').filter((l) => /^(PASS|FAIL)\t/.test(l));
    // b: scores, pool, dense, budget, select, attendSelected, pipeline; e (dense): no select/attendSelected.
    expect(rows).toHaveLength(7 + 5);
    expect(rows.every((l) => l.startsWith('PASS\t'))).toBe(true);
    for (const stage of ['scores', 'pool', 'dense', 'budget', 'select', 'attendSelected', 'pipeline']) {
      expect(rows.some((l) => l.split('\t')[1] === CASE_B && l.split('\t')[3] === stage), `row ${CASE_B} ${stage}`).toBe(true);
    }
  });

  it('conformance with a corrupted expected output exits 1 with a FAIL row', () => {
    const { dir, manifest } = goldenSubset([CASE_E]);
    const out = manifest.cases[CASE_E]!.runs['0.005']!.files.out_sparse!;
    // Replace the link by a copy with one value moved by 1e-3 (50x the output tolerance).
    rmSync(join(dir, out.file));
    copyFileSync(join(GOLDEN, out.file), join(dir, out.file));
    const bytes = readFileSync(join(dir, out.file));
    const values = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
    values[12345] = values[12345]! + 1e-3;
    writeFileSync(join(dir, out.file), bytes);
    delete out.sha256;
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest));

    const r = tsa('conformance', dir, '--backend', 'reference');
    expect(r.status, r.stdout + r.stderr).toBe(1);
    expect(r.stdout).toMatch(new RegExp(`^FAIL\\t${CASE_E}\\treference\\tpipeline\\t0.005\\t\\d+\\t.*output max abs err 1\\.00e-3`, 'm'));
    expect(r.stdout).toMatch(/\n\d+ passed, 1 failed\n/);
  });

  it('conformance with a checksum mismatch (sha256 kept) exits non-zero naming the file', () => {
    const { dir, manifest } = goldenSubset([CASE_E]);
    const out = manifest.cases[CASE_E]!.runs['0.005']!.files.out_sparse!;
    rmSync(join(dir, out.file));
    const bytes = readFileSync(join(GOLDEN, out.file));
    bytes[0] = bytes[0]! ^ 1;
    writeFileSync(join(dir, out.file), bytes);
    const r = tsa('conformance', dir, '--backend', 'reference');
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain(`${out.file}: sha256`);
  });

  it('conformance on a golden-xattn directory (case b, composed and alone), --backend wasm: every block stage and the pipeline pass, exit 0', () => {
    const { dir } = xattnSubset(XATTN_RUNS);
    const r = tsa('conformance', dir, '--backend', 'wasm', '--threads', '2');
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const rows = r.stdout.split('\n').filter((l) => /^(PASS|FAIL)\t/.test(l));
    expect(rows.map((l) => `${l.split('\t')[1]} ${l.split('\t')[3]}`)).toEqual(
      XATTN_RUNS.flatMap((run) => ['blockScores', 'blockSelect', 'attendBlocks', 'pipeline'].map((stage) => `${run} ${stage}`)),
    );
    expect(rows.every((l) => l.startsWith('PASS\t'))).toBe(true);
    expect(r.stdout).toMatch(/\n8 passed, 0 failed\n/);
  });

  it('conformance on a golden-xattn directory with one changed mask byte exits 1: blockSelect, attendBlocks (on that mask) and pipeline fail', () => {
    const run = XATTN_RUNS[0]!;
    const { dir, manifest } = xattnSubset([run]);
    const mask = manifest.runs[run]!.files.mask!;
    rmSync(join(dir, mask.file));
    const bytes = readFileSync(join(goldenXattnDir(), mask.file));
    // Head 1, query block 5, key block 2: flip a lower-triangle byte.
    bytes[1 * 100 + 5 * 10 + 2] = bytes[1 * 100 + 5 * 10 + 2]! ^ 1;
    writeFileSync(join(dir, mask.file), bytes);
    delete mask.sha256;
    writeFileSync(join(dir, 'xattn_manifest.json'), JSON.stringify(manifest));
    const r = tsa('conformance', dir, '--backend', 'wasm', '--threads', '2');
    expect(r.status, r.stdout + r.stderr).toBe(1);
    expect(r.stdout).toMatch(new RegExp(`^FAIL\\t${run}\\twasm\\tblockSelect\\t0.005\\t\\d+\\t1 mask bytes differ, first at head 1 query block 5 key block 2`, 'm'));
    expect(r.stdout).toMatch(new RegExp(`^FAIL\\t${run}\\twasm\\tpipeline\\t.*1 mask bytes differ`, 'm'));
    expect(r.stdout).toMatch(new RegExp(`^FAIL\\t${run}\\twasm\\tattendBlocks\\t.*max abs err`, 'm'));
    expect(r.stdout).toMatch(/\n1 passed, 3 failed\n/);
  });

  it('conformance --backend nosuch is a usage error (exit 2) naming the registered backends', () => {
    const { dir } = goldenSubset([CASE_E]);
    const r = tsa('conformance', dir, '--backend', 'nosuch');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^tsa conformance: unknown backend 'nosuch'; registered: .*reference/);
  });

  it('conformance on a directory without a manifest is a usage error (exit 2) saying what is missing', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tsa-empty-'));
    tempDirs.push(dir);
    const r = tsa('conformance', dir, '--backend', 'reference');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`'${dir}' is not a golden directory: it has no manifest.json`);
  });

  it('an unknown command exits 2 with one line pointing to the list', () => {
    const r = tsa('nosuch');
    expect(r.status).toBe(2);
    expect(r.stderr).toBe("tsa: unknown command 'nosuch'; run 'tsa --help' for the list\n");
  });
});
