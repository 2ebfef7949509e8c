/** What every backend's bench rows of --methods dense,tsa,xattn,tsa+xattn must show. */
import { expect } from 'vitest';
import type { BenchRecord } from '../../harness/tools/bench.js';

/** The four rows in order; the XAttention ones with their block share and scoring time. Returns them. */
export function expectMethodRows(records: BenchRecord[]): [BenchRecord, BenchRecord, BenchRecord, BenchRecord] {
  expect(records.map((r) => r.mode)).toEqual(['dense', 'tsa', 'xattn', 'tsa+xattn']);
  const [dense, tsa, xattn, both] = records as [BenchRecord, BenchRecord, BenchRecord, BenchRecord];
  expect(dense.blockShare).toBeUndefined();
  expect(tsa.blockShare).toBeUndefined();
  expect(xattn.keptFraction).toBe(1);
  expect(both.keptFraction).toBe(tsa.keptFraction);
  expect(both.keptFraction).toBeLessThan(1);
  for (const r of [xattn, both]) {
    expect(r.blockShare).toBeGreaterThan(0);
    expect(r.blockShare).toBeLessThanOrEqual(1);
    expect(r.blockScoringMs).toBeGreaterThan(0);
    expect(r.idealSpeedup).toBeCloseTo(1 / (r.keptFraction ** 2 * r.blockShare!), 10);
  }
  return [dense, tsa, xattn, both];
}
