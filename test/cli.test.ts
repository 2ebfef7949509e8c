/**
 * The `tsa` CLI as users run it: `node dist/harness/tools/cli.js ...` (npm test builds dist first;
 * alone, run `npx tsc -p .` before this file). Conformance runs use temporary golden
 * directories holding only the small cases b and e, so they stay fast.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { goldenDir, goldenDirProblem, REPO_ROOT } from './shared/golden-dir.js';

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
