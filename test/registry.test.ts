/**
 * Backend registry: priority order, fall-through with every reason, autoSelect: false,
 * forced backends never falling back, unknown names, and the always-available reference.
 * The registry is module state shared by the tests of this file: each test registers
 * fakes with unique names at priorities above everything registered before it.
 */
import { describe, expect, it } from 'vitest';
import '../harness/backends.js';
import { BackendUnavailableError, TsaInputError } from '../harness/core/errors.js';
import type { Backend } from '../harness/core/interface.js';
import { createBackend, probeBackends, registerBackend, registeredBackends, selectBackend } from '../harness/registry.js';
import { createReferenceBackend } from '../reference/index.js';

let fakeCount = 0;

/** What happened to one fake: creations, disposals. */
interface FakeLog {
  created: number;
  disposed: number;
}

/**
 * Registers a fake backend above every registered one (offset orders fakes of one test).
 * `behaviour`: 'works', an Error to throw from create, or { whyNotAuto } for autoSelect: false.
 */
function registerFake(offset: number, behaviour: 'works' | Error | { whyNotAuto: string }): { name: string; log: FakeLog } {
  const name = `fake-${++fakeCount}`;
  const log: FakeLog = { created: 0, disposed: 0 };
  const top = Math.max(...registeredBackends().map((e) => e.priority));
  registerBackend({
    name,
    priority: top + 100 + offset,
    summary: `fake backend ${name}`,
    create: async () => {
      log.created++;
      if (behaviour instanceof Error) throw behaviour;
      // A working fake: the reference's stages under another name.
      const backend: Backend & { autoSelect?: boolean; whyNotAuto?: string } = {
        ...createReferenceBackend(),
        name,
        description: `fake ${name}`,
        dispose: async () => {
          log.disposed++;
        },
      };
      if (behaviour !== 'works') Object.assign(backend, { autoSelect: false, whyNotAuto: behaviour.whyNotAuto });
      return backend;
    },
  });
  return { name, log };
}

describe('registry', () => {
  it('the reference is always registered and available, and selectBackend() picks a working backend', async () => {
    expect(registeredBackends().map((e) => e.name)).toContain('reference');
    const ref = await createBackend('reference');
    expect(ref.name).toBe('reference');
    await ref.dispose();
    const { backend, report, why } = await selectBackend();
    expect(report.map((r) => r.name)).toEqual(registeredBackends().map((e) => e.name));
    const row = report.find((r) => r.name === backend.name)!;
    expect(row.available).toBe(true);
    expect(row.reason).toMatch(/^selected: /);
    expect(why).toContain(`'${backend.name}'`);
    await backend.dispose();
  });

  it('picks the highest priority that works and does not probe the ones below it', async () => {
    const low = registerFake(0, 'works');
    const high = registerFake(1, 'works');
    const { backend, report } = await selectBackend();
    expect(backend.name).toBe(high.name);
    expect(report.map((r) => r.priority)).toEqual([...report.map((r) => r.priority)].sort((a, b) => b - a));
    expect(report[0]).toMatchObject({ name: high.name, available: true });
    expect(report.find((r) => r.name === low.name)?.reason).toBe(`not probed: '${high.name}' has higher priority`);
    expect(low.log.created).toBe(0);
    await backend.dispose();
  });

  it('falls through unavailable backends and keeps each reason', async () => {
    const works = registerFake(0, 'works');
    const broken = registerFake(1, new Error('factory crashed: no SharedArrayBuffer'));
    const missing = registerFake(2, new BackendUnavailableError('no GPU adapter'));
    const { backend, report, why } = await selectBackend();
    expect(backend.name).toBe(works.name);
    expect(report.find((r) => r.name === missing.name)).toMatchObject({ available: false, reason: 'no GPU adapter' });
    expect(report.find((r) => r.name === broken.name)).toMatchObject({ available: false, reason: 'factory crashed: no SharedArrayBuffer' });
    expect(why).toContain(`${missing.name}: no GPU adapter`);
    expect(why).toContain(`${broken.name}: factory crashed: no SharedArrayBuffer`);
    await backend.dispose();
  });

  it('skips a working backend with autoSelect: false, gives its reason and disposes it', async () => {
    const works = registerFake(0, 'works');
    const soft = registerFake(1, { whyNotAuto: 'software rasterizer (llvmpipe) is slower than the CPU backends' });
    const { backend, report, why } = await selectBackend();
    expect(backend.name).toBe(works.name);
    const row = report.find((r) => r.name === soft.name)!;
    expect(row.available).toBe(true);
    expect(row.reason).toContain('software rasterizer (llvmpipe)');
    expect(why).toContain('software rasterizer (llvmpipe)');
    expect(soft.log).toEqual({ created: 1, disposed: 1 });
    await backend.dispose();
    // Forced by name, the same backend is used (forcing overrides autoSelect: false).
    const forced = await selectBackend({ backend: soft.name });
    expect(forced.backend.name).toBe(soft.name);
    expect(forced.why).toContain('forced by name');
    await forced.backend.dispose();
  });

  it('a forced unavailable backend is an error with its reason and never falls back', async () => {
    const works = registerFake(0, 'works');
    const down = registerFake(1, new BackendUnavailableError('WebGPU adapter lost'));
    const crashing = registerFake(2, new Error('worker failed to start'));
    const before = works.log.created;
    const err = await selectBackend({ backend: down.name }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackendUnavailableError);
    expect((err as BackendUnavailableError).message).toBe(`backend '${down.name}' is unavailable: WebGPU adapter lost`);
    expect((err as BackendUnavailableError).reasons).toEqual([{ backend: down.name, reason: 'WebGPU adapter lost' }]);
    // A plain Error from a factory becomes BackendUnavailableError with that reason.
    const crash = await createBackend(crashing.name).catch((e: unknown) => e);
    expect(crash).toBeInstanceOf(BackendUnavailableError);
    expect(crash).toMatchObject({
      message: `backend '${crashing.name}' is unavailable: worker failed to start`,
      reasons: [{ backend: crashing.name, reason: 'worker failed to start' }],
    });
    expect(works.log.created).toBe(before);
  });

  it('an unknown backend name is an error listing the registered ones', async () => {
    const err = await selectBackend({ backend: 'nosuch' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackendUnavailableError);
    expect((err as Error).message).toMatch(/^unknown backend 'nosuch'; registered: .*reference/);
    expect((err as BackendUnavailableError).reasons).toEqual([{ backend: 'nosuch', reason: 'not registered' }]);
  });

  it('probeBackends creates and disposes every backend and reports each one', async () => {
    const works = registerFake(0, 'works');
    const down = registerFake(1, new BackendUnavailableError('no device'));
    const soft = registerFake(2, { whyNotAuto: 'slow here' });
    const rows = await probeBackends();
    expect(rows.map((r) => r.name)).toEqual(registeredBackends().map((e) => e.name));
    expect(rows.find((r) => r.name === works.name)).toMatchObject({ available: true, autoSelect: true, reason: `fake ${works.name}` });
    expect(rows.find((r) => r.name === down.name)).toMatchObject({ available: false, autoSelect: false, reason: 'no device' });
    expect(rows.find((r) => r.name === soft.name)).toMatchObject({ available: true, autoSelect: false, reason: 'works, not auto-selected: slow here' });
    expect(rows.find((r) => r.name === 'reference')?.available).toBe(true);
    expect([works.log, soft.log]).toEqual([
      { created: 1, disposed: 1 },
      { created: 1, disposed: 1 },
    ]);
  });
});

describe('registry: caller errors and slow factories', () => {
  const BAD_OPTIONS: Array<[object, RegExp]> = [
    [{ threads: 0 }, /option threads must be an integer in \[1, 256\], got 0/],
    [{ threads: '2' }, /option threads must be an integer in \[1, 256\], got '2'/],
    [{ threads: 1.5 }, /option threads must be an integer in \[1, 256\], got 1.5/],
    [{ threads: 257 }, /option threads must be an integer in \[1, 256\], got 257/],
    [{ costRule: 'yes' }, /option costRule must be a boolean, got yes/],
  ];

  it('invalid create options are TsaInputError (OPTION) from selectBackend, forced or not, createBackend and probeBackends: never a fall-back', async () => {
    const works = registerFake(0, 'works');
    for (const [options, message] of BAD_OPTIONS) {
      for (const call of [
        () => selectBackend(options),
        () => selectBackend({ ...options, backend: 'reference' }),
        () => createBackend('reference', options),
        () => probeBackends(options),
      ]) {
        const e = await call().then(() => null, (x: unknown) => x);
        expect(e).toBeInstanceOf(TsaInputError);
        expect((e as TsaInputError).inputCode).toBe('OPTION');
        expect((e as TsaInputError).message).toMatch(message);
      }
    }
    const timeout = await selectBackend({ probeTimeoutMs: 0 }).catch((x: unknown) => x);
    expect(timeout).toBeInstanceOf(TsaInputError);
    expect((timeout as Error).message).toMatch(/option probeTimeoutMs must be a positive number of milliseconds, got 0/);
    expect(works.log.created).toBe(0);
  });

  it('a factory that rejects an option with TsaInputError fails selectBackend with it instead of skipping the backend', async () => {
    const works = registerFake(0, 'works');
    const picky = registerFake(1, new TsaInputError("option simd must be 'plain' or 'relaxed', got 'avx'", 'OPTION'));
    const e = await selectBackend().catch((x: unknown) => x);
    expect(e).toBeInstanceOf(TsaInputError);
    expect((e as Error).message).toMatch(/option simd must be 'plain' or 'relaxed'/);
    expect(picky.log.created).toBe(1);
    expect(works.log.created).toBe(0);
  });

  it('a factory that never resolves is given up after probeTimeoutMs with the reason in the report; its late backend is disposed', async () => {
    const works = registerFake(0, 'works');
    const name = `fake-${++fakeCount}`;
    const gate: { release?: (b: Backend) => void } = {};
    let lateDisposed = 0;
    const top = Math.max(...registeredBackends().map((e) => e.priority));
    registerBackend({
      name,
      priority: top + 100,
      summary: 'a factory that hangs once',
      // The first creation hangs until released; later ones (other tests) work at once.
      create: () =>
        gate.release === undefined
          ? new Promise<Backend>((resolve) => (gate.release = resolve))
          : Promise.resolve({ ...createReferenceBackend(), name, description: `fake ${name}` }),
    });
    const started = performance.now();
    const { backend, report } = await selectBackend({ probeTimeoutMs: 300 });
    expect(performance.now() - started).toBeLessThan(10_000);
    expect(backend.name).toBe(works.name);
    expect(report.find((r) => r.name === name)).toMatchObject({ available: false, reason: `backend '${name}' did not finish starting within 300 ms` });
    await backend.dispose();
    gate.release!({ ...createReferenceBackend(), name, description: 'late', dispose: async () => void lateDisposed++ });
    await new Promise((r) => setTimeout(r, 10));
    expect(lateDisposed).toBe(1);
  });
});
