import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import type { Backend } from '../harness/core/interface.js';
import { runBench, type BenchConfig, type BenchRecord } from '../harness/tools/bench.js';
import { measureRounds } from '../harness/tools/measure.js';
import { runSelfTimedPeers } from '../harness/tools/bench-peers.js';
import { runMeta } from '../harness/tools/bench-report.js';
import { benchTable } from '../harness/tools/bench-table.js';
import { causalFlops } from '../harness/core/cost.js';
import { median } from '../harness/core/stats.js';
import { PeerUnavailableError } from '../harness/tools/peers/index.js';
import { TORCH_PEER } from '../harness/tools/peers/torch.js';
import { benchSvg, roundTicks } from '../harness/tools/plot.js';
import { createReferenceBackend } from '../reference/index.js';
import { expectMethodRows } from './shared/bench-methods.js';

const FIELDS = [
  'backend', 'mode', 'seqLen', 'heads', 'kvHeads', 'headDim', 'inputs', 'threads',
  'medianMs', 'gflops', 'keptFraction', 'speedup', 'selectionMs',
] as const;

const CLI = 'dist/harness/tools/cli.js';

/** A dense record as the bench writes it, for the table and plot tests. */
function record(over: Partial<BenchRecord>): BenchRecord {
  return {
    backend: 'wasm', mode: 'dense', seqLen: 2048, heads: 8, kvHeads: 2, headDim: 128, inputs: 'structured', threads: 2, coverage: 0.005,
    medianMs: 100, deviceMedianMs: null, samples: 3, gflops: 50, keptFraction: 1, speedup: 1, idealSpeedup: 1, selectionMs: 0, ...over,
  };
}

describe('benchmark', () => {
  test('measureRounds alternates the calls round by round and takes each one\'s median', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 4 }), async (delays) => {
        const log: number[] = [];
        const fns = delays.map((ms, i) => () => new Promise<void>((done) => (log.push(i), setTimeout(done, ms))));
        const ms = await measureRounds(fns);
        const rounds = ms[0]!.samples;
        expect(rounds).toBeGreaterThanOrEqual(5);
        // A warmup call of each, then `rounds` rounds of every call in order.
        expect(log).toEqual(Array.from({ length: (rounds + 1) * fns.length }, (_, k) => k % fns.length));
        for (const [i, m] of ms.entries()) {
          expect(m.samples).toBe(rounds);
          expect(m.deviceMedianMs).toBeNull();
          expect(m.medianMs).toBeGreaterThanOrEqual(delays[i]! * 0.9);
        }
      }),
      { numRuns: 5 },
    );
  });


  test('causal FLOPs count the lower triangle: 4 H D n(n+1)/2', () => {
    expect(causalFlops({ heads: 2, headDim: 8 }, 3)).toBe(4 * 2 * 8 * 6);
  });

  test('median: the middle value, or the mean of the two middle values', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: -1e6, max: 1e6, noNaN: true }), { minLength: 1, maxLength: 40 }), (xs) => {
        const m = median(xs);
        const below = xs.filter((x) => x < m).length;
        const above = xs.filter((x) => x > m).length;
        expect(below).toBeLessThanOrEqual(xs.length / 2);
        expect(above).toBeLessThanOrEqual(xs.length / 2);
      }),
    );
    expect(median([4, 1, 3, 2])).toBe(2.5);
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

  test('stage mode times one stage alone, with GFLOP/s for the attention stages', async () => {
    const backend = createReferenceBackend();
    const config: BenchConfig = { backends: [backend], lengths: [1400], heads: 2, kvHeads: 1, headDim: 8, inputs: ['structured'], coverage: 0.005, threads: 1, peers: false, seed: 3 };
    const [select] = await runBench({ ...config, stage: 'select' });
    expect(select!.mode).toBe('select');
    expect(select!.medianMs).toBeGreaterThan(0);
    expect(select!.keptFraction).toBeLessThan(1);
    expect(Number.isNaN(select!.gflops)).toBe(true);
    const [attend] = await runBench({ ...config, stage: 'attendSelected' });
    expect(attend!.keptFraction).toBeCloseTo(select!.keptFraction, 12);
    expect(attend!.gflops).toBeCloseTo(causalFlops({ heads: 2, headDim: 8 }, Math.round(attend!.keptFraction * 1400)) / attend!.medianMs / 1e6, 6);
  });

  test('runBench methods: a record per method; XAttention ones report their block share and scoring time', async () => {
    const backend = createReferenceBackend();
    const records = await runBench({
      backends: [backend], lengths: [1400], heads: 2, kvHeads: 1, headDim: 8, inputs: ['local'], coverage: 0.005, threads: 1, peers: false, seed: 3,
      methods: ['dense', 'tsa', 'xattn', 'tsa+xattn'],
    });
    expectMethodRows(records);
    expect(benchTable(records)).toMatch(/tsa\+xattn +local +1400 .* 0\.\d{3} /);
    expect(benchSvg(records, 'test')).toContain('reference tsa+xattn (local) measured');
    // A backend without the block-sparse stages cannot run them.
    const { blockScores: _, ...withoutStages } = backend;
    await expect(runBench({ backends: [withoutStages as Backend], lengths: [300], heads: 2, kvHeads: 1, headDim: 8, inputs: ['local'], coverage: 0.005, threads: 1, peers: false, seed: 3, methods: ['xattn'] })).rejects.toThrow(
      /the XAttention methods need the block-sparse stages, which the reference backend does not have yet/,
    );
  });

  test('the table puts errors in numbered footnotes, each message once and whole', () => {
    const long = 'SafeIntOnOverflow() Integer overflow at /onnxruntime/core/providers/cpu/some/very/long/path/to/a/file.cc:123 while computing';
    const records = [
      record({ seqLen: 2048 }),
      record({ seqLen: 2048, backend: 'onnxruntime-web (wasm, MultiHeadAttention)', peer: { comparedWith: 'wasm', maxAbsErr: 1e-6, checkedAgainst: 'x' }, speedup: 0.25 }),
      record({ seqLen: 4096 }),
      record({ seqLen: 4096, backend: 'onnxruntime-web (wasm, MultiHeadAttention)', peer: { comparedWith: 'wasm', maxAbsErr: NaN, checkedAgainst: 'x' }, error: long }),
      record({ seqLen: 8192, backend: 'onnxruntime-web (wasm, MultiHeadAttention)', peer: { comparedWith: 'wasm', maxAbsErr: NaN, checkedAgainst: 'x' }, error: long }),
    ];
    const text = benchTable(records);
    const [table, notes] = text.split('\n\n');
    expect(Math.max(...table!.split('\n').map((l) => l.length))).toBeLessThan(150);
    expect(table).toContain('failed [1]');
    expect(table).toMatch(/onnxruntime-web \(wasm, MultiHeadAttention\) +peer +structured +2048 +100\.0 .* 0\.25x/);
    expect(notes!.split('\n')).toEqual([expect.stringMatching(/^speedup: /), `[1] onnxruntime-web (wasm, MultiHeadAttention): ${long} (L=4096, L=8192)`]);
  });

  test('run metadata: date, Node, CPU, commit, SIMD build and adapter', () => {
    const fake = (name: string, description: string) => ({ name, description }) as Backend;
    const meta = runMeta(
      [fake('wasm', 'wasm relaxed-simd, 2 threads; chosen'), fake('webgpu', 'WebGPU on NVIDIA H200; Dawn vulkan, core mode; attention tiles 64x64 (D=128)')],
      ['tsa', 'bench'],
    );
    expect(meta.simdBuild).toBe('relaxed-simd');
    expect(meta.adapter).toBe('NVIDIA H200; Dawn vulkan, core mode');
    expect(meta.node).toBe(process.version);
    expect(meta.cpu.cores).toBeGreaterThan(0);
    expect(meta.cpu.model.length).toBeGreaterThan(0);
    expect(Date.parse(meta.date)).toBeGreaterThan(Date.parse('2026-01-01'));
    expect(meta.commit).toMatch(/^[0-9a-f]{40}(-dirty)?$/);
  });

  test('plot: round speedup ticks, and a peer failing at longer lengths is marked, not a lone dot', () => {
    fc.assert(
      fc.property(fc.double({ min: 0.05, max: 500, noNaN: true }), (yMax) => {
        const ticks = roundTicks(0, yMax);
        const step = ticks[1]! - ticks[0]!;
        expect(ticks[0]).toBe(0);
        expect(ticks[ticks.length - 1]).toBeGreaterThanOrEqual(yMax);
        expect(ticks.length).toBeGreaterThanOrEqual(3);
        expect(ticks.length).toBeLessThanOrEqual(7);
        const mantissa = step / 10 ** Math.floor(Math.log10(step) + 1e-9);
        expect([1, 2, 2.5, 5].some((m) => Math.abs(mantissa - m) < 1e-9)).toBe(true);
      }),
    );
    const peer = { comparedWith: 'wasm', maxAbsErr: 0, checkedAgainst: 'x' };
    const records = [
      record({ seqLen: 2048 }), record({ seqLen: 2048, mode: 'tsa', medianMs: 40, speedup: 2.5, idealSpeedup: 3.05, keptFraction: 0.57 }),
      record({ seqLen: 2048, backend: 'ort-web', peer, medianMs: 400 }),
      record({ seqLen: 4096, medianMs: 400 }), record({ seqLen: 4096, mode: 'tsa', medianMs: 140, speedup: 2.86, idealSpeedup: 3.5, keptFraction: 0.53 }),
      record({ seqLen: 4096, backend: 'ort-web', peer, error: 'Integer overflow' }),
      record({ seqLen: 8192, backend: 'ort-web', peer, error: 'Integer overflow' }),
    ];
    const svg = benchSvg(records, 't');
    expect(svg).toContain('ort-web dense (structured) (failed at 4K, 8K)');
    expect((svg.match(/class="failed"/g) ?? []).length).toBe(2);
    expect(svg).toContain('>8K</text>');
    const ticks = [...svg.matchAll(/text-anchor="end" font-size="11">([^<]+)</g)].map((m) => m[1]);
    expect(ticks).toEqual(['100', '0', '1', '2', '3', '4']); // latency (log: 100 ms), then speedup up to the 3.5x ideal
  });

  test('the torch peer says why it is unavailable: no torch here, or no python', async () => {
    const shape = { heads: 2, kvHeads: 1, headDim: 8 };
    const err = await TORCH_PEER.time(shape, [256], () => {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PeerUnavailableError);
    expect((err as Error).message).toMatch(/no usable torch|finds no CUDA GPU/);
    const saved = process.env.TSA_PYTHON;
    process.env.TSA_PYTHON = '/nonexistent/python3';
    try {
      const missing = await TORCH_PEER.time(shape, [256], () => {}).catch((e: unknown) => e);
      expect(missing).toBeInstanceOf(PeerUnavailableError);
      expect((missing as Error).message).toMatch(/\/nonexistent\/python3 not found/);
    } finally {
      if (saved === undefined) delete process.env.TSA_PYTHON;
      else process.env.TSA_PYTHON = saved;
    }
    // Named, it is a failed record per length beside webgpu; by default (every installed peer) it is skipped.
    const webgpu = { name: 'webgpu' } as Backend;
    const dense = [record({ backend: 'webgpu', seqLen: 1024 }), record({ backend: 'webgpu', seqLen: 2048 })];
    const config: BenchConfig = { backends: [webgpu], lengths: [1024, 2048], heads: 2, kvHeads: 1, headDim: 8, inputs: ['gaussian'], coverage: 0.005, threads: 1, seed: 1, peers: false };
    const named = await runSelfTimedPeers(webgpu, dense, { ...config, peers: ['torch'] }, () => {});
    expect(named.map((r) => [r.seqLen, r.peer?.comparedWith])).toEqual([[1024, 'webgpu'], [2048, 'webgpu']]);
    expect(named.every((r) => /^unavailable: .*torch/.test(r.error ?? ''))).toBe(true);
    expect(await runSelfTimedPeers(webgpu, dense, { ...config, peers: 'installed' }, () => {})).toEqual([]);
    expect(await runSelfTimedPeers({ name: 'wasm' } as Backend, dense, { ...config, peers: ['torch'] }, () => {})).toEqual([]);
  });

  test('the torch peer: one python process checks each variant against the reference, then times it per length', async () => {
    // A numpy stand-in for torch (test/fixtures/torch-stub): exact attention, a fake CUDA device.
    const saved = process.env.PYTHONPATH;
    process.env.PYTHONPATH = join(process.cwd(), 'test/fixtures/torch-stub');
    const progress: string[] = [];
    try {
      const timings = await TORCH_PEER.time({ heads: 4, kvHeads: 2, headDim: 8 }, [16, 32], (m) => progress.push(m));
      expect(timings.map((t) => [t.seqLen, t.name])).toEqual(
        [16, 32].flatMap((L) => ['f32 (memory-efficient)', 'bf16 (FlashAttention)', 'f32 (default backend)'].map((v) => [L, `torch SDPA ${v}`])),
      );
      for (const t of timings) {
        expect(t.error).toBeUndefined();
        expect(t.checkErr).toBeLessThan(1e-5); // the stand-in computes exact attention: our layouts went in and came out right
        expect(t.checkedAgainst).toBe('L=64 vs reference');
        expect(t.samplesMs).toHaveLength(3);
        expect(t.samplesMs.every((x) => x > 0)).toBe(true);
      }
      expect(progress[0]).toBe('torch 0.0-stub on stub GPU');
    } finally {
      if (saved === undefined) delete process.env.PYTHONPATH;
      else process.env.PYTHONPATH = saved;
    }
  });

  test('tsa bench CLI writes JSON (metadata and records) and SVG and rejects bad flags', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tsa-bench-'));
    const json = join(dir, 'r.json');
    const svg = join(dir, 'r.svg');
    const out = execFileSync(
      'node',
      [CLI, 'bench', '--backend', 'reference', '--lengths', '300', '--heads', '2', '--kv-heads', '1', '--head-dim', '8', '--no-peers', '--json', json, '--svg', svg],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
    );
    expect(out).toContain('reference');
    const { meta, records } = JSON.parse(readFileSync(json, 'utf8')) as { meta: Record<string, unknown>; records: Record<string, unknown>[] };
    expect(records.map((r) => r.mode)).toEqual(['dense', 'tsa']);
    expect(meta.command).toEqual(expect.arrayContaining(['bench', '--lengths', '300']));
    expect(meta.backends).toEqual([{ name: 'reference', description: expect.stringContaining('TypeScript') }]);
    expect(readFileSync(svg, 'utf8')).toContain('</svg>');
    expect(() => execFileSync('node', [CLI, 'bench', '--backend', 'reference', '--heads', '3', '--kv-heads', '2'], { stdio: 'pipe' })).toThrow(
      /multiple of --kv-heads/,
    );
    expect(() => execFileSync('node', [CLI, 'bench', '--backend', 'nosuch'], { stdio: 'pipe' })).toThrow(/unknown backend 'nosuch'/);
  });

  test('tsa bench checks every flag before probing a backend', () => {
    const cases: [string[], RegExp][] = [
      [['--adapter', 'metal'], /--adapter must be vulkan \| opengl, got 'metal'/],
      [['--backend', 'wasm', '--adapter', 'vulkan'], /--adapter names a Dawn backend for webgpu/],
      [['--peers', 'onnx,tensorflow'], /--peers must be onnx \| torch, got 'tensorflow'/],
      [['--peers', 'torch', '--no-peers'], /contradict/],
      [['--stage', 'softmax'], /--stage must be scores \| pool \| budget \| select \| attendSelected \| dense/],
      [['--backend', 'webgpu', '--lengths', 'abc'], /--lengths must be positive integers/],
      [['--backend', 'wasm,nosuch'], /unknown backend 'nosuch'/],
    ];
    for (const [args, message] of cases) {
      const r = spawnSync('node', [CLI, 'bench', ...args], { encoding: 'utf8' });
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(message);
      // Nothing was probed: no backend line, no Dawn output.
      expect(r.stderr).not.toMatch(/^backend:|WebGPU on|artificially/m);
    }
  });
});
