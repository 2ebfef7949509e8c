/**
 * Runtime backend selection. Backends register with a priority and a factory
 * that either returns a working backend or throws with the reason it cannot
 * run here. `selectBackend()` tries them from the highest priority down and
 * keeps every reason; forcing a backend by name never falls back silently.
 */
import { BackendUnavailableError, TsaError, TsaInputError, type UnavailableReason } from './core/errors.js';
import type { Backend, BackendCreateOptions } from './core/interface.js';

export interface BackendEntry {
  name: string;
  /** Higher wins when no backend is forced. */
  priority: number;
  /** One line on what it is, for `tsa backends`. */
  summary: string;
  /**
   * Creates a working instance or throws (ideally `BackendUnavailableError`)
   * saying why not. `autoSelect: false` means "works, but do not pick me
   * unless forced" (for example a GPU backend on a software rasterizer), with
   * the reason in `whyNotAuto`.
   */
  create(options: BackendCreateOptions): Promise<Backend & { autoSelect?: boolean; whyNotAuto?: string }>;
}

export interface ProbeRow {
  name: string;
  priority: number;
  summary: string;
  /** The factory returned a working instance. */
  available: boolean;
  /** Available and willing to be picked without being forced. */
  autoSelect: boolean;
  /** Selected / skipped explanation. */
  reason: string;
}

export interface Selection {
  backend: Backend;
  /** One row per registered backend, highest priority first. */
  report: ProbeRow[];
  /** Why this backend was picked. */
  why: string;
}

const entries = new Map<string, BackendEntry>();

export function registerBackend(entry: BackendEntry): void {
  entries.set(entry.name, entry);
}

export function registeredBackends(): BackendEntry[] {
  return [...entries.values()].sort((a, b) => b.priority - a.priority);
}

function reasonOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Checks the options every factory shares (an invalid one is the caller's error, never a reason
 * to skip a backend): threads an integer in [1, 256], costRule a boolean.
 */
export function validateCreateOptions(options: unknown): void {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new TsaInputError(`backend options must be an object, got ${options === null ? 'null' : typeof options}`, 'OPTION');
  }
  const { threads, costRule } = options as BackendCreateOptions;
  if (threads !== undefined && !(typeof threads === 'number' && Number.isInteger(threads) && threads >= 1 && threads <= 256)) {
    throw new TsaInputError(`option threads must be an integer in [1, 256], got ${typeof threads === 'string' ? `'${threads}'` : String(threads)}`, 'OPTION');
  }
  if (costRule !== undefined && typeof costRule !== 'boolean') {
    throw new TsaInputError(`option costRule must be a boolean, got ${String(costRule)}`, 'OPTION');
  }
}

/** How long one factory may take before selectBackend gives up on it (default of `probeTimeoutMs`). */
export const DEFAULT_PROBE_TIMEOUT_MS = 60_000;

/**
 * `entry.create(options)`, or a BackendUnavailableError after `ms`; a factory that resolves
 * later has its backend disposed.
 */
function createWithin(entry: BackendEntry, options: BackendCreateOptions, ms: number): Promise<Created> {
  return new Promise<Created>((resolve, reject) => {
    let late = false;
    const timer = setTimeout(() => {
      late = true;
      reject(new BackendUnavailableError(`backend '${entry.name}' did not finish starting within ${ms} ms`, [{ backend: entry.name, reason: `probe timed out after ${ms} ms` }]));
    }, ms);
    (timer as { unref?: () => void }).unref?.();
    entry.create(options).then(
      (backend) => {
        clearTimeout(timer);
        if (late) void backend.dispose().catch(() => {});
        else resolve(backend);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}

/** Creates one backend by name; throws `BackendUnavailableError` with the probe's reason. */
export async function createBackend(name: string, options: BackendCreateOptions = {}, timeoutMs = DEFAULT_PROBE_TIMEOUT_MS): Promise<Backend> {
  validateCreateOptions(options);
  const entry = entries.get(name);
  if (!entry) {
    throw new BackendUnavailableError(
      `unknown backend '${name}'; registered: ${registeredBackends().map((e) => e.name).join(', ')}`,
      [{ backend: name, reason: 'not registered' }],
    );
  }
  try {
    return await createWithin(entry, options, timeoutMs);
  } catch (e) {
    if (e instanceof TsaError && !(e instanceof BackendUnavailableError)) throw e;
    throw new BackendUnavailableError(`backend '${name}' is unavailable: ${reasonOf(e)}`, [
      { backend: name, reason: reasonOf(e) },
    ]);
  }
}

export interface SelectOptions extends BackendCreateOptions {
  /** Force this backend; an unavailable forced backend is an error. */
  backend?: string;
  /** Milliseconds one factory may take to start (default 60000); a slower one counts as unavailable. */
  probeTimeoutMs?: number;
}

type Created = Awaited<ReturnType<BackendEntry['create']>>;

/** Creates one entry's backend and describes the outcome (the caller disposes the backend). */
async function probe(entry: BackendEntry, options: BackendCreateOptions, timeoutMs: number): Promise<{ row: ProbeRow; backend: Created | null }> {
  const row: ProbeRow = { name: entry.name, priority: entry.priority, summary: entry.summary, available: false, autoSelect: false, reason: '' };
  try {
    const backend = await createWithin(entry, options, timeoutMs);
    row.available = true;
    row.autoSelect = backend.autoSelect !== false;
    row.reason = row.autoSelect ? backend.description : `works, not auto-selected: ${backend.whyNotAuto ?? 'no reason given'}`;
    return { row, backend };
  } catch (e) {
    // Bad options are the caller's error on every backend, not a reason to skip this one.
    if (e instanceof TsaInputError) throw e;
    row.reason = reasonOf(e);
    return { row, backend: null };
  }
}

/**
 * The best backend that works here. Without `backend`, tries every registered
 * backend by priority and disposes the ones it does not return.
 */
export async function selectBackend(options: SelectOptions = {}): Promise<Selection> {
  validateCreateOptions(options);
  const { backend: forced, probeTimeoutMs = DEFAULT_PROBE_TIMEOUT_MS, ...createOptions } = options;
  if (!(typeof probeTimeoutMs === 'number' && probeTimeoutMs > 0)) {
    throw new TsaInputError(`option probeTimeoutMs must be a positive number of milliseconds, got ${String(probeTimeoutMs)}`, 'OPTION');
  }
  if (forced !== undefined) {
    const backend = await createBackend(forced, createOptions, probeTimeoutMs);
    const entry = entries.get(forced)!;
    const row = { name: forced, priority: entry.priority, summary: entry.summary, available: true, autoSelect: true, reason: 'forced by name' };
    return { backend, report: [row], why: `'${forced}' forced by name (${backend.description})` };
  }
  const report: ProbeRow[] = [];
  const reasons: UnavailableReason[] = [];
  let chosen: Backend | null = null;
  for (const entry of registeredBackends()) {
    if (chosen) {
      report.push({ name: entry.name, priority: entry.priority, summary: entry.summary, available: false, autoSelect: false, reason: `not probed: '${chosen.name}' has higher priority` });
      continue;
    }
    const { row, backend } = await probe(entry, createOptions, probeTimeoutMs);
    report.push(row);
    if (backend && row.autoSelect) {
      chosen = backend;
      row.reason = `selected: ${backend.description}`;
    } else {
      reasons.push({ backend: entry.name, reason: row.reason });
      await backend?.dispose();
    }
  }
  const skipped = reasons.map((r) => `${r.backend}: ${r.reason}`).join('; ');
  if (!chosen) throw new BackendUnavailableError(`no backend works here: ${skipped}`, reasons);
  const why = `'${chosen.name}' is the highest-priority backend that works here (${chosen.description})${skipped ? `; skipped ${skipped}` : ''}`;
  return { backend: chosen, report, why };
}

/** Probes every backend (creating and disposing each) for `tsa backends`. */
export async function probeBackends(options: BackendCreateOptions = {}, timeoutMs = DEFAULT_PROBE_TIMEOUT_MS): Promise<ProbeRow[]> {
  validateCreateOptions(options);
  const rows: ProbeRow[] = [];
  for (const entry of registeredBackends()) {
    const { row, backend } = await probe(entry, options, timeoutMs);
    await backend?.dispose();
    rows.push(row);
  }
  return rows;
}
