#!/usr/bin/env node
/** The `tsa` command: one module per subcommand in harness/tools/commands/. */
import { TsaError } from '../core/errors.js';

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
  return `usage: tsa <command> [options]\n\ncommands:\n${rows.join('\n')}\n\nRun 'tsa <command> --help' for a command's options.`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h') {
    console.log(usage());
    return name ? 0 : 2;
  }
  const command = commands[name];
  if (!command) {
    console.error(`tsa: unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  return (await command.load()).run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    console.error(e instanceof TsaError ? `tsa: ${e.message}` : e);
    process.exitCode = 1;
  },
);
