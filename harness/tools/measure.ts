/**
 * Timing calls for the benchmark: one call (tinybench: a warmup call, then
 * enough calls for a stable median within a small budget), or several calls
 * in interleaved rounds (measureRounds: dense, then each method, round after
 * round), so that a ratio between them compares calls made in the same
 * minutes of a host whose speed drifts. The median and the causal FLOP count
 * are core's (core/stats.ts, core/cost.ts), shared with the cost rule's calibration.
 */
import { Bench } from 'tinybench';
import type { Backend } from '../core/interface.js';
import { median } from '../core/stats.js';

export interface Measurement {
  /** Median wall time of one call, ms. */
  medianMs: number;
  /** Median accelerator-side time of one call, where the backend measures it. */
  deviceMedianMs: number | null;
  samples: number;
}

/**
 * Times `fn`: one warmup call, then as many calls as measureRounds makes rounds
 * (long calls get 3-4 samples, short ones at least 5 and about 1.5 s).
 * With a backend, also the median of its `lastDeviceTimeMs()` over the timed calls.
 */
export async function measure(fn: () => Promise<void>, backend?: Backend): Promise<Measurement> {
  const t0 = performance.now();
  await fn();
  const warm = performance.now() - t0;
  const device: number[] = [];
  const call = async () => {
    await fn();
    const dev = backend?.lastDeviceTimeMs?.();
    if (dev != null) device.push(dev);
  };
  const bench = new Bench({ iterations: roundsFor(warm, warm), time: 0, warmup: false, throws: true });
  bench.add('call', call);
  await bench.run();
  const result = bench.tasks[0]!.result;
  if (result.state !== 'completed') throw new Error(`benchmark did not complete: ${result.state}`);
  return { medianMs: result.latency.p50, deviceMedianMs: device.length ? median(device) : null, samples: result.latency.samplesCount };
}

/**
 * Timed calls (measure) or rounds (measureRounds) after the warmup, from the slowest call of a
 * round and the round's time: 3 over 4 s (a median of 3, where one of 2 is a mean), 4 over 0.3 s,
 * else at least 5 and about 1.5 s, at most 100.
 */
function roundsFor(slowestMs: number, roundMs: number): number {
  if (slowestMs > 4000) return 3;
  if (slowestMs > 300) return 4;
  return Math.min(100, Math.max(5, Math.ceil(1500 / Math.max(roundMs, 1e-3))));
}

/**
 * Times each of `fns` (one warmup call each, in order), then rounds of one call of each in the
 * same order: 3-4 rounds where a call is long, else at least 5 and about 1.5 s. Medians per
 * function, with `backend`'s lastDeviceTimeMs() of each call where it measures one.
 */
export async function measureRounds(fns: readonly (() => Promise<void>)[], backend?: Backend): Promise<Measurement[]> {
  const warm: number[] = [];
  for (const fn of fns) {
    const t0 = performance.now();
    await fn();
    warm.push(performance.now() - t0);
  }
  const rounds = roundsFor(Math.max(...warm), warm.reduce((a, b) => a + b, 0));
  const wall = fns.map((): number[] => []);
  const device = fns.map((): number[] => []);
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < fns.length; i++) {
      const t0 = performance.now();
      await fns[i]!();
      wall[i]!.push(performance.now() - t0);
      const dev = backend?.lastDeviceTimeMs?.();
      if (dev != null) device[i]!.push(dev);
    }
  }
  return fns.map((_, i) => ({ medianMs: median(wall[i]!), deviceMedianMs: device[i]!.length ? median(device[i]!) : null, samples: rounds }));
}
