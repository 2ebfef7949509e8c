/**
 * Timing one call for the benchmark (tinybench: a warmup call, then enough
 * calls for a stable median within a small budget). The median and the
 * causal FLOP count are core's (core/stats.ts, core/cost.ts), shared with
 * the cost rule's calibration.
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
 * Times `fn`: one warmup call, then enough calls for a stable median within
 * a small budget (long calls get 2-3 samples, short ones run for ~1.5 s).
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
  const iterations = warm > 4000 ? 2 : warm > 300 ? 3 : 5;
  const bench = new Bench({ iterations, time: warm > 300 ? 0 : 1500, warmup: false, throws: true });
  bench.add('call', call);
  await bench.run();
  const result = bench.tasks[0]!.result;
  if (result.state !== 'completed') throw new Error(`benchmark did not complete: ${result.state}`);
  return { medianMs: result.latency.p50, deviceMedianMs: device.length ? median(device) : null, samples: result.latency.samplesCount };
}
