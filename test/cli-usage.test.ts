/**
 * The CLI's usage errors and quiet output: every bad command line gets one stderr line with a
 * hint and exit 2, before any backend is probed (nothing else is printed); `tsa --version`;
 * Dawn's expected native warnings hidden unless TSA_DEBUG=dawn. Needs dist/ (npx tsc -p .).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { didYouMean, parseCommandArgs, UsageError } from '../harness/tools/args.js';
import { dawnLineFilter, isExpectedDawnLine, wantsDawnFilter } from '../harness/tools/dawn-stderr.js';
import { REPO_ROOT } from './shared/golden-dir.js';

const CLI = join(REPO_ROOT, 'dist/harness/tools/cli.js');

function tsa(args: string[], env: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build first (npm test does; alone, run npx tsc -p .)`);
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 120_000, env: { ...process.env, ...env } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('tsa usage errors: one line, a hint, exit 2, nothing probed', () => {
  const cases: [string[], RegExp][] = [
    [['bench', '--lenghts', '2048'], /^tsa bench: unknown option '--lenghts' \(did you mean --lengths\?\); see 'tsa bench --help'$/],
    [['bench', '--lengths', '-5'], /^tsa bench: --lengths got '-5', which looks like an option; write --lengths=-5 to pass it as the value; see/],
    [['bench', '--lengths', 'abc'], /^tsa bench: --lengths must be positive integers separated by commas, got 'abc'; see/],
    [['bench', '--lengths'], /^tsa bench: --lengths needs a value; see/],
    [['bench', '--lengths', '--heads', '4'], /^tsa bench: --lengths needs a value, got the option '--heads'; see/],
    [['backends', '--threads', 'two'], /^tsa backends: --threads must be a positive integer, got 'two'; see/],
    [['backends', '--json=yes'], /^tsa backends: --json takes no value, got '--json=yes'; see/],
    [['backends', 'wasm'], /^tsa backends: unexpected argument 'wasm' \(options start with --\); see/],
    [['conformance'], /^tsa conformance: needs one golden directory \(tsa conformance <golden-dir>\); see/],
    [['generate', '--backend', 'wsam'], /^tsa generate: unknown backend 'wsam' \(did you mean wasm\?\); registered: .*reference; see/],
    [['generate'], /^tsa generate: needs --model and --tokenizer: .*llama2\.c/],
    [['eval', '--modle', 'x.bin'], /^tsa eval: unknown option '--modle' \(did you mean --model\?\); see/],
    [['bnech'], /^tsa: unknown command 'bnech' \(did you mean bench\?\); run 'tsa --help' for the list$/],
  ];
  it.each(cases)('tsa %j', (args, message) => {
    const r = tsa(args);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stdout).toBe('');
    const lines = r.stderr.split('\n').filter((l) => l !== '');
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(message);
    expect(r.stderr).not.toMatch(/ERR_PARSE_ARGS|\n\s+at /);
  });

  it('the missing-model hint names no path of this repository', () => {
    expect(tsa(['generate']).stderr).not.toMatch(/shared\/models|\.\.\//);
  });
});

describe('tsa --version and help', () => {
  it('--version prints package.json version and exits 0', () => {
    const r = tsa(['--version']);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`${(JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version}\n`);
  });

  it('a command --help prints its usage on stdout and exits 0', () => {
    const r = tsa(['backends', '--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^usage: tsa backends/);
    expect(r.stderr).toBe('');
  });
});

describe('parseCommandArgs', () => {
  const options = { lengths: { type: 'string' }, 'kv-heads': { type: 'string' }, json: { type: 'boolean' } } as const;
  it('returns parseArgs values for a good command line', () => {
    const { values } = parseCommandArgs({ args: ['--lengths=-1', '--kv-heads', '2', '--json'], options });
    expect(values).toEqual({ lengths: '-1', 'kv-heads': '2', json: true });
  });
  it('throws UsageError (a TsaInputError of code OPTION) with the closest option', () => {
    const bad = (): unknown => parseCommandArgs({ args: ['--kvheads', '2'], options });
    expect(bad).toThrow(UsageError);
    expect(bad).toThrow("unknown option '--kvheads' (did you mean --kv-heads?)");
  });
  it('didYouMean suggests only close words', () => {
    expect(didYouMean('lenghts', ['lengths', 'heads'], '--')).toBe(' (did you mean --lengths?)');
    expect(didYouMean('zzzzzz', ['lengths', 'heads'])).toBe('');
  });
});

describe("Dawn's expected warnings", () => {
  it('are recognised by the filter, other lines are not', () => {
    expect(isExpectedDawnLine('Warning: maxDynamicUniformBuffersPerPipelineLayout artificially reduced from 1000000 to 16 to fit dynamic offset allocation limit.')).toBe(true);
    expect(isExpectedDawnLine('Warning: maxDynamicStorageBuffersPerPipelineLayout artificially reduced from 80 to 16 to fit dynamic offset allocation limit.')).toBe(true);
    expect(isExpectedDawnLine("Warning: Couldn't load Vulkan: libvulkan.so.1: cannot open shared object file")).toBe(true);
    expect(isExpectedDawnLine('Warning: something else')).toBe(false);
    expect(isExpectedDawnLine('tsa bench: --lengths needs a value')).toBe(false);
  });

  it('the line filter drops a warning with its source lines and blank line, and keeps what follows', () => {
    const stderr = [
      'backend: first',
      "Warning: Couldn't load Vulkan: /lib/x86_64-linux-gnu/libvulkan.so.1: file too short",
      '    at operator() (/dawn/src/dawn/native/vulkan/BackendVk.cpp:368)',
      '',
      'Warning: maxDynamicUniformBuffersPerPipelineLayout artificially reduced from 90 to 16 to fit dynamic offset allocation limit.',
      'backend: second',
      '    at ours (kept: not after a Dawn warning)',
      '',
    ];
    expect(stderr.filter(dawnLineFilter())).toEqual(['backend: first', 'backend: second', '    at ours (kept: not after a Dawn warning)', '']);
  });

  it('TSA_DEBUG=dawn (alone or in a list) turns the filter off', () => {
    expect(wantsDawnFilter({})).toBe(true);
    expect(wantsDawnFilter({ TSA_DEBUG: 'dawn' })).toBe(false);
    expect(wantsDawnFilter({ TSA_DEBUG: 'x,dawn' })).toBe(false);
    expect(wantsDawnFilter({ TSA_DEBUG: 'dawnish' })).toBe(true);
  });

  it('tsa backends prints them only with TSA_DEBUG=dawn; every other line and the exit code are the same', () => {
    const quiet = tsa(['backends']);
    const debug = tsa(['backends'], { TSA_DEBUG: 'dawn' });
    expect(quiet.status).toBe(0);
    expect(debug.status).toBe(0);
    const lines = (s: string): string[] => s.split('\n').filter((l) => l !== '');
    expect(lines(quiet.stderr).filter(isExpectedDawnLine)).toEqual([]);
    expect(lines(quiet.stderr)).toEqual(lines(debug.stderr.split('\n').filter(dawnLineFilter()).join('\n')));
    expect(quiet.stdout).toBe(debug.stdout);
  });
});
