/**
 * Dawn (the `webgpu` package) prints a few expected warnings from native code straight to file
 * descriptor 2 whenever an adapter is opened, even when the wasm backend is chosen in the end:
 * `Warning: max...PerPipelineLayout artificially reduced from N to 16 ...` (Dawn caps dynamic
 * buffer counts) and `Warning: Couldn't load Vulkan: ...` plus its `    at ...` source line (no
 * Vulkan loader). Neither create() flags nor
 * a log callback reach them, and a JS-side process.stderr filter cannot see native writes, so the
 * `tsa` CLI runs its command in a child process whose stderr it filters line by line.
 * TSA_DEBUG=dawn (or any TSA_DEBUG list naming dawn) shows them.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

const EXPECTED = [
  /^Warning: max\w+PerPipelineLayout artificially reduced from \d+ to \d+ to fit dynamic offset allocation limit\.$/,
  /^(?:Warning|Error): Couldn't load Vulkan/,
];

/** Set in the child so that it does not filter again. */
const MARK = 'TSA_DAWN_STDERR_FILTERED';

/** Whether `line` starts one of Dawn's expected warnings. */
export function isExpectedDawnLine(line: string): boolean {
  return EXPECTED.some((re) => re.test(line));
}

/**
 * A stateful line filter: false for an expected Dawn warning and for the lines that continue it
 * (Dawn adds `    at function (file:line)` lines and a blank line), true for every other line.
 */
export function dawnLineFilter(): (line: string) => boolean {
  let inWarning = false;
  return (line) => {
    if (isExpectedDawnLine(line)) inWarning = true;
    else if (!(inWarning && (line.trim() === '' || /^\s+at /.test(line)))) inWarning = false;
    return !inWarning;
  };
}

/** Whether this process should run its command in a filtered child: not when asked for Dawn's output, nor in that child. */
export function wantsDawnFilter(env: NodeJS.ProcessEnv = process.env): boolean {
  return !env[MARK] && !/(?:^|[\s,])dawn(?:$|[\s,])/.test(env.TSA_DEBUG ?? '');
}

/**
 * Runs `script argv` in a child Node (same flags) with stdin/stdout inherited and stderr piped
 * through the filter; resolves to its exit code (a signal that ended it is raised here again).
 */
export function runWithDawnFilter(script: string, argv: string[]): Promise<number> {
  const child = spawn(process.execPath, [...process.execArgv, script, ...argv], {
    stdio: ['inherit', 'inherit', 'pipe'],
    env: { ...process.env, [MARK]: '1' },
  });
  // Ctrl-C reaches the child too (same process group); wait for it to finish its output.
  const ignore = (): void => {};
  const forward = (signal: NodeJS.Signals): boolean => child.kill(signal);
  process.on('SIGINT', ignore).on('SIGTERM', forward);
  const lines = createInterface({ input: child.stderr!, crlfDelay: Infinity });
  const keep = dawnLineFilter();
  lines.on('line', (line) => {
    if (keep(line)) process.stderr.write(`${line}\n`);
  });
  return new Promise((done, fail) => {
    child.on('error', fail);
    child.on('close', (code, signal) => {
      process.off('SIGINT', ignore).off('SIGTERM', forward);
      if (signal) process.kill(process.pid, signal);
      done(code ?? 1);
    });
  });
}
