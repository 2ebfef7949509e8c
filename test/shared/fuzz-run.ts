/**
 * The fuzzer's runs and outcome classes. Each call is classified as
 *   ok          resolved with a correct result where a result was due, or
 *   typed       rejected with the typed error that was due (TsaInputError of the code, TsaAbortError),
 * or a defect:
 *   untyped     rejected with something else than a TsaError (TypeError, RangeError, plain Error, ...);
 *   wrong       a silent wrong output, a resolved call that was due to fail, or a typed error
 *               other than the one due (a valid call rejected, the wrong code);
 *   crash       the backend died under it (BackendLostError while not disposed) or an unhandled
 *               rejection / exception during the run;
 *   hang        not settled within the per-call time limit.
 * Overlapping calls are compared with the same calls run alone; disposal during calls must
 * resolve each call correctly or reject it with BackendLostError, and later calls too.
 */
import { appendFileSync } from 'node:fs';
import fc from 'fast-check';
import { BackendLostError, TsaAbortError, TsaError, TsaInputError } from '../../harness/core/errors.js';
import type { Backend } from '../../harness/core/interface.js';
import { VALID } from './bad-inputs.js';
import { buildCall, callCaseArb, type BuiltCall } from './fuzz-calls.js';

export const OUTCOMES = ['ok', 'typed', 'untyped', 'wrong', 'crash', 'hang'] as const;
export type Outcome = (typeof OUTCOMES)[number];
/** The classes that are defects: the fuzz test demands zero of each. */
export const DEFECTS: Outcome[] = ['untyped', 'wrong', 'crash', 'hang'];

export class FuzzReport {
  readonly counts: Record<Outcome, number> = { ok: 0, typed: 0, untyped: 0, wrong: 0, crash: 0, hang: 0 };
  /** The first few defects, each with the call that showed it. */
  readonly examples: string[] = [];

  add(outcome: Outcome, what: () => string): void {
    this.counts[outcome]++;
    if (DEFECTS.includes(outcome) && this.examples.length < 12) this.examples.push(`${outcome}: ${what()}`);
  }

  get calls(): number {
    return OUTCOMES.reduce((s, o) => s + this.counts[o], 0);
  }

  defects(): number {
    return DEFECTS.reduce((s, o) => s + this.counts[o], 0);
  }

  summary(name: string, seed: number): string {
    return `fuzz ${name} (seed ${seed}): ${this.calls} calls: ${OUTCOMES.map((o) => `${o} ${this.counts[o]}`).join(', ')}`;
  }
}

const HANG = Symbol('hang');

/**
 * A crash of the process (a native fault) leaves no report, and loses buffered test output:
 * TSA_FUZZ_TRACE=<file> appends each step to that file first, synchronously.
 */
export function trace(what: () => string): void {
  const file = process.env.TSA_FUZZ_TRACE;
  if (file) appendFileSync(file, `${what()}\n`);
}

/** `p`, or HANG after `ms`. */
function within<T>(p: Promise<T>, ms: number): Promise<T | typeof HANG> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<typeof HANG>((resolve) => (timer = setTimeout(() => resolve(HANG), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

function describeCall(call: BuiltCall): string {
  const { c } = call;
  return `${c.method} H${c.heads}/${c.kvHeads} D${c.headDim} L${c.seqLen} P${c.prefixLen} ${JSON.stringify(c.options)} shared=${c.shared} mutation=${c.mutation ?? 'none'}`;
}

/** Classifies one settled call (value or error) against what was due. */
export function classify(call: BuiltCall, settled: { value: unknown } | { error: unknown } | typeof HANG, disposed: boolean): [Outcome, string] {
  if (settled === HANG) return ['hang', 'did not settle'];
  const due = call.expected;
  if ('error' in settled) {
    const e = settled.error;
    const said = `${(e as Error)?.name}: ${(e as Error)?.message}`;
    if (e instanceof BackendLostError) return disposed ? ['typed', said] : ['crash', said];
    if (!(e instanceof TsaError)) return ['untyped', said];
    if (due.kind === 'abort') return e instanceof TsaAbortError ? ['typed', said] : ['wrong', `${said} (due: TsaAbortError)`];
    if (due.kind === 'input-error') {
      return e instanceof TsaInputError && e.inputCode === due.code ? ['typed', said] : ['wrong', `${said} (due: TsaInputError ${due.code})`];
    }
    return ['wrong', `${said} (due: a result)`];
  }
  if (due.kind !== 'result') return ['wrong', `resolved (due: ${due.kind === 'abort' ? 'TsaAbortError' : `TsaInputError ${due.code}`})`];
  try {
    call.check(settled.value);
    return ['ok', ''];
  } catch (e) {
    return ['wrong', `silent wrong output: ${(e as Error).message.slice(0, 400)}`];
  }
}

/** Runs one call on `b` within `ms` and classifies it. */
export async function runCall(b: Backend, call: BuiltCall, ms: number, disposed = false): Promise<[Outcome, string]> {
  trace(() => `call ${describeCall(call)}`);
  let pending: Promise<unknown>;
  try {
    pending = call.run(b);
  } catch (e) {
    return ['untyped', `threw synchronously: ${String(e)}`];
  }
  const settled = await within(
    pending.then(
      (value) => ({ value }),
      (error: unknown) => ({ error }),
    ),
    ms,
  );
  return classify(call, settled, disposed);
}

/** Counts unhandled rejections and uncaught exceptions while `body` runs (as crashes). */
export async function watchingProcess<T>(report: FuzzReport, body: () => Promise<T>): Promise<T> {
  const onError = (e: unknown): void => report.add('crash', () => `unhandled: ${String((e as Error)?.stack ?? e).slice(0, 300)}`);
  process.on('unhandledRejection', onError);
  process.on('uncaughtException', onError);
  try {
    return await body();
  } finally {
    await new Promise((r) => setTimeout(r, 50));
    process.off('unhandledRejection', onError);
    process.off('uncaughtException', onError);
  }
}

/** `n` random calls, built, from fast-check with `seed`. */
export function drawCalls(n: number, seed: number, valid = false): BuiltCall[] {
  const arb = valid ? callCaseArb.map((c) => ({ ...c, mutation: null, options: { ...c.options } })) : callCaseArb;
  return fc.sample(arb, { numRuns: n, seed }).map(buildCall);
}

/** Random single calls, one after another. */
export async function fuzzCalls(b: Backend, report: FuzzReport, n: number, seed: number, ms: number): Promise<void> {
  for (const call of drawCalls(n, seed)) {
    const [outcome, why] = await runCall(b, call, ms);
    report.add(outcome, () => `${describeCall(call)}: ${why}`);
    if (outcome === 'hang' || outcome === 'crash') return;
  }
}

/** Results compared by value (Float32Array, Int32Array, budgets); timings are not compared. */
function resultKey(value: unknown): unknown {
  if (value && typeof value === 'object' && 'timings' in value) {
    const { timings: _, ...rest } = value as Record<string, unknown>;
    return rest;
  }
  return value;
}

/**
 * Overlap: groups of 2..4 calls (valid and invalid) run alone one by one, then all at once on the
 * same instance; each overlapped call must settle as it did alone (same value, or the same error).
 */
export async function fuzzOverlap(b: Backend, report: FuzzReport, groups: number, seed: number, ms: number): Promise<void> {
  const { isDeepStrictEqual } = await import('node:util');
  const sizes = fc.sample(fc.integer({ min: 2, max: 4 }), { numRuns: groups, seed });
  let offset = 0;
  for (const size of sizes) {
    const calls = drawCalls(size, seed + 7919 * ++offset);
    trace(() => `overlap group ${offset}: ${calls.map(describeCall).join(' | ')}`);
    const alone: Array<{ value: unknown } | { error: unknown }> = [];
    for (const call of calls) alone.push(await call.run(b).then((value) => ({ value }), (error: unknown) => ({ error })));
    const together = await within(Promise.all(calls.map((call) => call.run(b).then((value) => ({ value }), (error: unknown) => ({ error })))), ms);
    if (together === HANG) {
      report.add('hang', () => `${calls.length} overlapped calls did not settle`);
      return;
    }
    calls.forEach((call, i) => {
      const a = alone[i]!;
      const t = together[i]!;
      const [outcome, why] = classify(call, t, false);
      const same =
        'value' in a && 'value' in t
          ? isDeepStrictEqual(resultKey(a.value), resultKey(t.value))
          : 'error' in a && 'error' in t && (a.error as Error)?.constructor === (t.error as Error)?.constructor && (a.error as Error)?.message === (t.error as Error)?.message;
      if (outcome !== 'ok' && outcome !== 'typed') report.add(outcome, () => `overlapped ${describeCall(call)}: ${why}`);
      else if (!same) report.add('wrong', () => `overlapped ${describeCall(call)} settled otherwise than alone (${'value' in t ? 'a value' : String((t as { error: unknown }).error)})`);
      else report.add(outcome, () => '');
    });
  }
}

/**
 * Disposal during calls: a fresh instance per trial, 1..4 valid calls started, dispose() after
 * 0..30 ms; each call resolves correctly or rejects with BackendLostError, a call after dispose
 * rejects with BackendLostError, and a second dispose() resolves.
 */
export async function fuzzDispose(create: () => Promise<Backend>, report: FuzzReport, trials: number, seed: number, ms: number): Promise<void> {
  const plans = fc.sample(fc.record({ calls: fc.integer({ min: 1, max: 4 }), delay: fc.integer({ min: 0, max: 30 }) }), { numRuns: trials, seed });
  let offset = 0;
  for (const plan of plans) {
    const b = await create();
    const calls = drawCalls(plan.calls, seed + 104729 * ++offset, true);
    trace(() => `dispose trial ${offset} after ${plan.delay} ms: ${calls.map(describeCall).join(' | ')}`);
    const running = calls.map((call) => runCall(b, call, ms, true));
    if (plan.delay > 0) await new Promise((r) => setTimeout(r, plan.delay));
    const disposing = within(b.dispose().then(() => 'disposed'), ms);
    const outcomes = await Promise.all(running);
    outcomes.forEach(([outcome, why], i) => report.add(outcome, () => `during dispose: ${describeCall(calls[i]!)}: ${why}`));
    if ((await disposing) === HANG) {
      report.add('hang', () => 'dispose() did not settle');
      return;
    }
    const after = await within(b.tokenSparseAttention(VALID.input, VALID.options).then(() => 'resolved', (e: unknown) => e), ms);
    if (after instanceof BackendLostError) report.add('typed', () => '');
    else report.add(after === HANG ? 'hang' : after instanceof TsaError || after === 'resolved' ? 'wrong' : 'untyped', () => `call after dispose: ${String(after)} (due: BackendLostError)`);
    const again = await within(b.dispose().then(() => 'ok', (e: unknown) => e), ms);
    if (again !== 'ok') report.add(again === HANG ? 'hang' : 'untyped', () => `second dispose(): ${String(again)}`);
  }
}
