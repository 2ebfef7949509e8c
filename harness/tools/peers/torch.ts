/**
 * The PyTorch peer of the WebGPU backend: scaled_dot_product_attention on a
 * CUDA GPU (f32 memory-efficient, bf16 FlashAttention, f32 with PyTorch's own
 * choice), run by torch_sdpa.py in one python process per sweep. It times
 * itself with CUDA events on its own standard-normal inputs of the same shape;
 * first every variant runs a small input of ours, checked against the
 * reference backend. Python: $TSA_PYTHON, else python3.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createReferenceBackend } from '../../../reference/index.js';
import { maxAbsErr } from '../../core/compare.js';
import { generateInput } from '../../core/generators.js';
import { PeerUnavailableError, type PeerTiming, type SelfTimedPeerFactory } from './peer.js';

/** The script: beside this module when it runs from source, else in the source tree next to dist/. */
const SCRIPT = [new URL('./torch_sdpa.py', import.meta.url), new URL('../../../../harness/tools/peers/torch_sdpa.py', import.meta.url)]
  .map((u) => fileURLToPath(u))
  .find((p) => existsSync(p));

/** Variants of torch_sdpa.py: display name and the check tolerance (bf16 keeps 8 mantissa bits). */
export const TORCH_VARIANTS: Record<string, { label: string; tolerance: number }> = {
  f32_efficient: { label: 'torch SDPA f32 (memory-efficient)', tolerance: 1e-3 },
  bf16_flash: { label: 'torch SDPA bf16 (FlashAttention)', tolerance: 5e-2 },
  f32_default: { label: 'torch SDPA f32 (default backend)', tolerance: 1e-3 },
};

const CHECK_LENGTH = 64;

type Line =
  | { unavailable: string }
  | { device: string; torch: string }
  | { check: Record<string, string | { error: string }> }
  | { L: number; variants: Record<string, { samplesMs: number[] } | { error: string }> };

/** Runs torch_sdpa.py, handing each stdout line (parsed) to `onLine`; rejects on a nonzero exit. */
function runScript(script: string, python: string, args: string[], onLine: (line: Line) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(python, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PYTHONUNBUFFERED: '1' } });
    let buffered = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const text = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        if (text) onLine(JSON.parse(text) as Line);
      }
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-2000);
    });
    child.on('error', (e: NodeJS.ErrnoException) =>
      reject(e.code === 'ENOENT' ? new PeerUnavailableError(`${python} not found (set TSA_PYTHON to a python with torch)`) : e),
    );
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${python} torch_sdpa.py exited with ${code}: ${stderr.trim().split('\n').pop() ?? ''}`))));
  });
}

export const TORCH_PEER: SelfTimedPeerFactory = {
  name: 'torch SDPA (CUDA)',
  group: 'torch',
  comparesWith: ['webgpu'],
  async time(shape, lengths, progress) {
    const python = process.env.TSA_PYTHON ?? 'python3';
    if (!SCRIPT) throw new PeerUnavailableError('torch_sdpa.py is not in this installation (the torch peer runs from a source checkout)');
    const dir = mkdtempSync(join(tmpdir(), 'tsa-torch-'));
    const check = { ...shape, seqLen: CHECK_LENGTH };
    const input = generateInput('gaussian', check, 20261);
    const file = join(dir, 'check.f32');
    writeFileSync(file, Buffer.concat([input.q, input.k, input.v].map((x) => Buffer.from(x.buffer, x.byteOffset, x.byteLength))));
    const expected = await createReferenceBackend().dense(input);
    const checkErr: Record<string, number> = {};
    const out: PeerTiming[] = [];
    let unavailable = null as string | null;
    const args = ['--heads', `${shape.heads}`, '--kv-heads', `${shape.kvHeads}`, '--head-dim', `${shape.headDim}`, '--lengths', lengths.join(','), '--check', file, '--check-length', `${CHECK_LENGTH}`];
    try {
      await runScript(SCRIPT, python, args, (line) => {
        if ('unavailable' in line) unavailable = line.unavailable;
        else if ('device' in line) progress(`torch ${line.torch} on ${line.device}`);
        else if ('check' in line) {
          for (const [variant, r] of Object.entries(line.check)) {
            checkErr[variant] = typeof r === 'string' ? maxAbsErr(new Float32Array(readFileSync(r).buffer.slice(0)), expected) : NaN;
          }
        } else {
          for (const [variant, r] of Object.entries(line.variants)) {
            const t: PeerTiming = { name: TORCH_VARIANTS[variant]?.label ?? variant, seqLen: line.L, samplesMs: [], checkErr: checkErr[variant] ?? NaN, checkedAgainst: `L=${CHECK_LENGTH} vs reference` };
            const tolerance = TORCH_VARIANTS[variant]?.tolerance ?? 0;
            if ('error' in r) t.error = r.error;
            else if (!(t.checkErr <= tolerance)) t.error = `output differs from the reference by ${t.checkErr} (> ${tolerance}) on the check shape: not timed`;
            else t.samplesMs = r.samplesMs;
            progress(`${t.name} L=${line.L}: ${t.error ?? `${t.samplesMs.map((x) => x.toFixed(1)).join(', ')} ms`}`);
            out.push(t);
          }
        }
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    if (unavailable !== null) throw new PeerUnavailableError(unavailable);
    return out;
  },
};
