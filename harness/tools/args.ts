/**
 * Command-line parsing shared by every `tsa` command: node:util's parseArgs, preceded by a check
 * of its tokens that turns each mistake into one `UsageError` line with a hint (an unknown option
 * names the closest known one; a value that looks like an option says how to pass it), and the
 * number / name validators the commands run before any backend is probed. The CLI exits 2 on a
 * UsageError (and on any TsaInputError of code OPTION), 1 on other failures.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { TsaInputError } from '../core/errors.js';
import { registeredBackends } from '../registry.js';

/** A mistake on the command line: the message is one line saying what was wrong and what to type. */
export class UsageError extends TsaInputError {
  constructor(message: string) {
    super(message, 'OPTION');
  }
}

/** Levenshtein distance (insertions, deletions, substitutions; a transposition counts 2). */
function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    row = next;
  }
  return row[b.length]!;
}

/** " (did you mean X?)" for the known word closest to `word` (at most a third of its letters off), else "". */
export function didYouMean(word: string, known: readonly string[], prefix = ''): string {
  let best: string | null = null;
  let bestDistance = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const k of known) {
    const d = editDistance(word, k);
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  return best === null ? '' : ` (did you mean ${prefix}${best}?)`;
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** Throws a UsageError for the first token parseArgs would reject (or silently misread). */
function checkTokens(options: Options, allowPositionals: boolean, args: string[]): void {
  const { tokens } = parseArgs({ args, options, allowPositionals: true, strict: false, tokens: true });
  const longNames = Object.keys(options);
  for (const t of tokens) {
    if (t.kind === 'positional') {
      if (!allowPositionals) throw new UsageError(`unexpected argument '${t.value}'${t.value.startsWith('-') ? '' : ' (options start with --)'}`);
      continue;
    }
    if (t.kind !== 'option') continue;
    const spec = options[t.name];
    if (!spec) {
      const hint = t.rawName.startsWith('--') ? didYouMean(t.name, longNames, '--') : '';
      throw new UsageError(`unknown option '${t.rawName}'${hint}`);
    }
    if (spec.type === 'boolean' && t.value !== undefined) {
      throw new UsageError(`${t.rawName} takes no value, got '${t.rawName}=${t.value}'`);
    }
    if (spec.type === 'string') {
      if (t.value === undefined) throw new UsageError(`${t.rawName} needs a value`);
      if (!t.inlineValue && t.value.startsWith('-')) {
        throw new UsageError(
          options[t.value.replace(/^-+/, '').split('=')[0]!]
            ? `${t.rawName} needs a value, got the option '${t.value}'`
            : `${t.rawName} got '${t.value}', which looks like an option; write ${t.rawName}=${t.value} to pass it as the value`,
        );
      }
    }
  }
}

/**
 * parseArgs (strict) after a token check that reports each mistake as one UsageError line:
 * unknown options (with the closest known one), missing values, option-looking values, values
 * given to boolean flags, positionals where none are taken.
 */
export function parseCommandArgs<T extends ParseArgsConfig & { args: string[]; options: Options }>(config: T): ReturnType<typeof parseArgs<T>> {
  checkTokens(config.options, config.allowPositionals ?? false, config.args);
  return parseArgs(config);
}

/** A positive integer option value. */
export function positiveInt(name: string, s: string): number {
  const x = Number(s);
  if (s.trim() === '' || !Number.isInteger(x) || x <= 0) throw new UsageError(`--${name} must be a positive integer, got '${s}'`);
  return x;
}

/** The optional --threads value: undefined when not given. */
export function threadsOption(s: string | undefined): number | undefined {
  return s === undefined ? undefined : positiveInt('threads', s);
}

/** Checks comma-separated backend names (and 'all' where `allowAll`) against the registry. */
export function checkBackendNames(spec: string | undefined, allowAll = false): void {
  if (spec === undefined || (allowAll && spec === 'all')) return;
  const known = registeredBackends().map((e) => e.name);
  for (const name of spec.split(',').map((s) => s.trim())) {
    if (!known.includes(name)) {
      throw new UsageError(`unknown backend '${name}'${didYouMean(name, known)}; registered: ${known.join(', ')}${allowAll ? ', or all' : ''}`);
    }
  }
}
