/**
 * The run metadata `tsa bench` stores in its JSON (Node: commit, CPU); the
 * table is bench-table.ts (platform-neutral, also drawn by the demo page).
 */
import { execFileSync } from 'node:child_process';
import { availableParallelism, cpus } from 'node:os';
import type { Backend } from '../core/interface.js';


export interface RunMeta {
  date: string;
  node: string;
  platform: string;
  cpu: { model: string; cores: number };
  /** `git rev-parse HEAD` (+ '-dirty' with local changes), else $TSA_COMMIT, else null. */
  commit: string | null;
  command: string[];
  backends: { name: string; description: string }[];
  /** The wasm backend's SIMD build ('simd' | 'relaxed-simd'), where it ran. */
  simdBuild: string | null;
  /** The webgpu backend's adapter and Dawn backend, where it ran. */
  adapter: string | null;
}

function gitCommit(): string | null {
  try {
    const git = (...args: string[]) => execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return `${git('rev-parse', 'HEAD')}${git('status', '--porcelain', '--untracked-files=no') ? '-dirty' : ''}`;
  } catch {
    return process.env.TSA_COMMIT ?? null;
  }
}

export function runMeta(backends: Backend[], command: string[]): RunMeta {
  const describe = (name: string, pattern: RegExp) => pattern.exec(backends.find((b) => b.name === name)?.description ?? '')?.[1] ?? null;
  return {
    date: new Date().toISOString(),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    cpu: { model: cpus()[0]?.model.trim() ?? 'unknown', cores: availableParallelism() },
    commit: gitCommit(),
    command,
    backends: backends.map((b) => ({ name: b.name, description: b.description })),
    simdBuild: describe('wasm', /^wasm (\S+?),/),
    adapter: describe('webgpu', /^WebGPU on (.*?); attention/),
  };
}
