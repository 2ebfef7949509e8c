import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { causalFlops, runBench, type BenchRecord } from '../harness/tools/bench.js';
import { benchSvg } from '../harness/tools/plot.js';
import { createReferenceBackend } from '../reference/index.js';

const FIELDS = [
  'backend', 'mode', 'seqLen', 'heads', 'kvHeads', 'headDim', 'inputs', 'threads',
  'medianMs', 'gflops', 'keptFraction', 'speedup', 'selectionMs',
] as const;

describe('benchmark', () => {
  test('causal FLOPs count the lower triangle: 4 H D n(n+1)/2', () => {
    expect(causalFlops(2, 8, 3)).toBe(4 * 2 * 8 * 6);
  });

  test('runBench records dense and tsa per shape and input kind, with the required fields', async () => {
    const backend = createReferenceBackend();
    const progress: string[] = [];
    const records = await runBench(
      { backends: [backend], lengths: [256, 1400], heads: 2, kvHeads: 1, headDim: 8, inputs: ['structured', 'gaussian'], coverage: 0.005, threads: 1, peers: false, seed: 3 },
      (m) => progress.push(m),
    );
    expect(records).toHaveLength(8);
    for (const r of records) {
      for (const f of FIELDS) expect(r).toHaveProperty(f);
      expect(r.medianMs).toBeGreaterThan(0);
      expect(r.gflops).toBeGreaterThan(0);
    }
    // L = 256 <= minTokens + W: TSA runs dense, keeps everything.
    const short = records.filter((r) => r.seqLen === 256 && r.mode === 'tsa');
    expect(short.every((r) => r.keptFraction === 1 && r.selectionMs === 0)).toBe(true);
    // L = 1400 structured: selection ran and pruned something.
    const long = records.find((r) => r.seqLen === 1400 && r.mode === 'tsa' && r.inputs === 'structured')!;
    expect(long.keptFraction).toBeLessThan(1);
    expect(long.keptFraction).toBeGreaterThanOrEqual((1024 + 128) / 1400);
    expect(long.idealSpeedup).toBeCloseTo(1 / long.keptFraction ** 2, 10);
    expect(long.selectionMs).toBeGreaterThan(0);
    expect(progress.some((m) => m.includes('[4/4]'))).toBe(true);
    const svg = benchSvg(records, 'test');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('reference tsa (structured)');
    expect((svg.match(/<path /g) ?? []).length).toBeGreaterThanOrEqual(4);
  });

  test('runBench --methods: a record per method; XAttention ones report their block share and scoring time', async () => {
    const backend = createReferenceBackend();
    const records = await runBench({
      backends: [backend], lengths: [1400], heads: 2, kvHeads: 1, headDim: 8, inputs: ['local'], coverage: 0.005, threads: 1, peers: false, seed: 3,
      methods: ['dense', 'tsa', 'xattn', 'tsa+xattn'],
    });
    expect(records.map((r) => r.mode)).toEqual(['dense', 'tsa', 'xattn', 'tsa+xattn']);
    const [dense, tsa, xattn, both] = records as [BenchRecord, BenchRecord, BenchRecord, BenchRecord];
    expect(dense.blockShare).toBeUndefined();
    expect(tsa.blockShare).toBeUndefined();
    expect(xattn.keptFraction).toBe(1);
    expect(both.keptFraction).toBe(tsa.keptFraction);
    expect(both.keptFraction).toBeLessThan(1);
    for (const r of [xattn, both]) {
      expect(r.blockShare).toBeGreaterThan(0);
      expect(r.blockShare).toBeLessThanOrEqual(1);
      expect(r.blockScoringMs).toBeGreaterThan(0);
      expect(r.idealSpeedup).toBeCloseTo(1 / (r.keptFraction ** 2 * r.blockShare!), 10);
    }
    expect(benchSvg(records, 'test')).toContain('reference tsa+xattn (local) measured');
  });

  test('tsa bench CLI writes JSON and SVG and rejects bad flags', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tsa-bench-'));
    const json = join(dir, 'r.json');
    const svg = join(dir, 'r.svg');
    const out = execFileSync(
      'node',
      ['dist/harness/tools/cli.js', 'bench', '--backend', 'reference', '--lengths', '300', '--heads', '2', '--kv-heads', '1', '--head-dim', '8', '--no-peers', '--json', json, '--svg', svg],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
    );
    expect(out).toContain('reference');
    const records = JSON.parse(readFileSync(json, 'utf8')) as Record<string, unknown>[];
    expect(records.map((r) => r.mode)).toEqual(['dense', 'tsa']);
    expect(readFileSync(svg, 'utf8')).toContain('</svg>');
    expect(() =>
      execFileSync('node', ['dist/harness/tools/cli.js', 'bench', '--backend', 'reference', '--heads', '3', '--kv-heads', '2'], { stdio: 'pipe' }),
    ).toThrow(/multiple of --kv-heads/);
    expect(() => execFileSync('node', ['dist/harness/tools/cli.js', 'bench', '--backend', 'nosuch'], { stdio: 'pipe' })).toThrow(/unknown backend 'nosuch'/);
    expect(() => execFileSync('node', ['dist/harness/tools/cli.js', 'bench', '--backend', 'reference', '--methods', 'dense,flex'], { stdio: 'pipe' })).toThrow(
      /--methods must be dense \| tsa \| xattn \| tsa\+xattn \(comma-separated\), got 'flex'/,
    );
  });
});
