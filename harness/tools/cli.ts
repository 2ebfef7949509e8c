#!/usr/bin/env node
/**
 * The `tsa` command: one module per subcommand in harness/tools/commands/. Exit codes: 0 done,
 * 1 a failure (a conformance mismatch, an unavailable backend, an error), 2 a usage error (one
 * line on stderr saying what was wrong, with a hint).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { TsaError, TsaInputError } from '../core/errors.js';
import { didYouMean } from './args.js';
import { runWithDawnFilter, wantsDawnFilter } from './dawn-stderr.js';

type Command = { summary: string; load: () => Promise<{ run(argv: string[]): Promise<number> }> };

const commands: Record<string, Command> = {
  backends: { summary: 'probe every backend and say which one is selected and why', load: () => import('./commands/backends.js') },
  conformance: { summary: 'compare every stage of every backend with a golden directory', load: () => import('./commands/conformance.js') },
  bench: { summary: 'dense vs token-sparse attention across context lengths', load: () => import('./commands/bench.js') },
  generate: { summary: 'a story from a llama2.c model, sparse prefill + dense decode', load: () => import('./commands/generate.js') },
  eval: { summary: 'quality of sparse prefill on a real model vs dense and baselines', load: () => import('./commands/eval.js') },
};

function usage(): string {
  const rows = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(12)} ${c.summary}`);
  return (
    `usage: tsa <command> [options]\n       tsa --version\n\ncommands:\n${rows.join('\n')}\n\n` +
    `Run 'tsa <command> --help' for a command's options. TSA_DEBUG=dawn shows Dawn's own warnings.`
  );
}

/** This package's version, from the package.json two levels above dist/harness/tools/. */
function version(): string {
  return (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

/** A usage error (exit 2): the command line was wrong; a TsaInputError of code OPTION came from a flag's value. */
function isUsageError(e: unknown): e is TsaInputError {
  return e instanceof TsaInputError && e.inputCode === 'OPTION';
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h') {
    console.log(usage());
    return name ? 0 : 2;
  }
  if (name === '--version' || name === '-v') {
    console.log(version());
    return 0;
  }
  const command = commands[name];
  if (!command) {
    console.error(`tsa: unknown command '${name}'${didYouMean(name, Object.keys(commands))}; run 'tsa --help' for the list`);
    return 2;
  }
  if (wantsDawnFilter()) return runWithDawnFilter(fileURLToPath(import.meta.url), argv);
  try {
    return await (await command.load()).run(rest);
  } catch (e) {
    if (isUsageError(e)) {
      console.error(`tsa ${name}: ${e.message}; see 'tsa ${name} --help'`);
      return 2;
    }
    if (e instanceof TsaError) {
      console.error(`tsa ${name}: ${e.message}`);
      return 1;
    }
    throw e;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  },
);
