/**
 * Checks used by the shared backend suite. Each throws an Error naming the first
 * violation (head, position, values), so a fast-check counterexample reads well.
 */
import type { AttentionInput, Budget, ResolvedTsaOptions } from '../../harness/core/interface.js';

export function check(ok: boolean, message: () => string): asserts ok {
  if (!ok) throw new Error(message());
}

/** Every head's row of `indices` [H][keptLength] strictly ascending inside [0, L). */
export function checkAscending(indices: Int32Array, keptLength: number, heads: number, L: number): void {
  check(indices.length === heads * keptLength, () => `indices has ${indices.length} entries, expected ${heads} * ${keptLength}`);
  for (let h = 0; h < heads; h++) {
    let prev = -1;
    for (let r = 0; r < keptLength; r++) {
      const t = indices[h * keptLength + r]!;
      check(t > prev && t < L, () => `head ${h}: entry ${r} is ${t} after ${prev} (must be strictly ascending in [0, ${L}))`);
      prev = t;
    }
  }
}

/** The last W entries of each head are L-W..L-1 and the first `keep` lie in the prefix. */
export function checkWindowKept(indices: Int32Array, keep: number, heads: number, L: number, W: number): void {
  const Lc = keep + W;
  check(indices.length === heads * Lc, () => `indices has ${indices.length} entries, expected ${heads} * (keep ${keep} + W ${W})`);
  for (let h = 0; h < heads; h++) {
    for (let r = 0; r < Lc; r++) {
      const t = indices[h * Lc + r]!;
      if (r < keep) check(t < L - W, () => `head ${h}: prefix entry ${r} is ${t}, inside the window [${L - W}, ${L})`);
      else check(t === L - W + (r - keep), () => `head ${h}: window entry ${r - keep} is ${t}, expected ${L - W + (r - keep)}`);
    }
  }
}

/** Rows (t, h) not kept by head h are exactly 0; kept rows are finite. */
export function checkPrunedRowsZero(output: Float32Array, indices: Int32Array, keptLength: number, input: AttentionInput): void {
  const { heads: H, headDim: D, seqLen: L } = input;
  check(output.length === L * H * D, () => `output has ${output.length} elements, expected L*H*D = ${L * H * D}`);
  const kept = new Uint8Array(L);
  for (let h = 0; h < H; h++) {
    kept.fill(0);
    for (let r = 0; r < keptLength; r++) kept[indices[h * keptLength + r]!] = 1;
    for (let t = 0; t < L; t++) {
      for (let d = 0; d < D; d++) {
        const x = output[(t * H + h) * D + d]!;
        if (kept[t]) check(Number.isFinite(x), () => `kept row (t=${t}, h=${h}) has ${x} at d=${d}`);
        else check(x === 0, () => `pruned row (t=${t}, h=${h}) is not zero: ${x} at d=${d}`);
      }
    }
  }
}

/** Entry-wise |a - b| <= tol, naming the worst element in [L][H][D] terms. */
export function checkClose(what: string, a: ArrayLike<number>, b: ArrayLike<number>, tol: number, H: number, D: number): void {
  check(a.length === b.length, () => `${what}: ${a.length} elements vs ${b.length}`);
  let worst = -1;
  let at = 0;
  for (let i = 0; i < b.length; i++) {
    const e = Math.abs(a[i]! - b[i]!);
    if (!(e <= worst)) {
      worst = e;
      at = i;
    }
  }
  const t = Math.floor(at / (H * D));
  const h = Math.floor(at / D) % H;
  check(worst <= tol, () => `${what}: max abs error ${worst.toExponential(3)} > tol ${tol.toExponential(3)} at t=${t}, h=${h}, d=${at % D} (${a[at]} vs ${b[at]})`);
}

/** Entry-wise |a - b| <= rel * |b| (score arrays [H][P]). */
export function checkRelClose(what: string, a: ArrayLike<number>, b: ArrayLike<number>, rel: number, prefixLen: number): void {
  check(a.length === b.length, () => `${what}: ${a.length} elements vs ${b.length}`);
  for (let i = 0; i < b.length; i++) {
    const e = Math.abs(a[i]! - b[i]!);
    check(e <= rel * Math.abs(b[i]!), () =>
      `${what}: head ${Math.floor(i / prefixLen)} position ${i % prefixLen}: ${a[i]} vs ${b[i]}, relative error ${(e / Math.abs(b[i]!)).toExponential(3)} > ${rel.toExponential(3)}`,
    );
  }
}

/**
 * The keep-count rule of TSA-SPEC step 2 against `cum` (cum[k] = sum of the k smallest shares of
 * the normalised layer distribution, from sortedLayerCumsum): a sparse budget with pruned
 * count p has cum[p-1] < tau and cum[p] >= tau (each within `tol`) and keep = max(minTokens,
 * P - p); a dense budget is 'zero-coverage' when tau = 0, 'short-context' when L <= minTokens + W, and otherwise
 * 'nothing-pruned' only when the smallest share already reaches tau. 'not-worth-it' (a
 * backend's cost rule) is accepted when L > minTokens + W.
 */
export function checkCountRule(budget: Budget, cum: Float64Array, o: ResolvedTsaOptions, tol: number): void {
  const P = cum.length - 1;
  const L = P + o.window;
  const tau = o.coverage;
  if (tau === 0) {
    check(budget.mode === 'dense' && budget.reason === 'zero-coverage', () => `tau = 0 must be dense 'zero-coverage', got ${JSON.stringify(budget)}`);
    return;
  }
  if (L <= o.minTokens + o.window) {
    check(budget.mode === 'dense' && budget.reason === 'short-context', () => `L = ${L} <= minTokens + W must be dense 'short-context', got ${JSON.stringify(budget)}`);
    return;
  }
  if (budget.mode === 'dense') {
    check(budget.reason === 'nothing-pruned' || budget.reason === 'not-worth-it', () => `unexpected dense reason ${JSON.stringify(budget)}`);
    if (budget.reason === 'nothing-pruned') {
      check(cum[1]! >= tau - tol, () => `dense 'nothing-pruned' but the smallest share ${cum[1]} < tau ${tau} (tol ${tol.toExponential(2)})`);
    }
    return;
  }
  const p = budget.pruned;
  check(Number.isInteger(p) && p >= 2 && p <= P + 1, () => `pruned count ${p} outside [2, P + 1 = ${P + 1}]`);
  check(cum[p - 1]! < tau + tol, () => `pruned ${p}: the ${p - 1} smallest shares sum to ${cum[p - 1]}, not < tau ${tau} (tol ${tol.toExponential(2)})`);
  const reach = p <= P ? cum[p]! : Infinity;
  check(reach >= tau - tol, () => `pruned ${p}: the ${p} smallest shares sum to ${reach}, below tau ${tau}: more should be pruned (tol ${tol.toExponential(2)})`);
  check(budget.keep === Math.max(o.minTokens, P - p), () => `keep ${budget.keep} != max(minTokens ${o.minTokens}, P ${P} - pruned ${p})`);
}

/**
 * Selection validity per head on reference scores `ref` [H][P]: every kept prefix score >= every
 * dropped one, up to the relative error `rel` of the selecting backend's own scores
 * (b = r (1 +- rel) and b_kept >= b_dropped imply r_kept >= r_dropped (1 - 2 rel)).
 */
export function checkSelectionValid(indices: Int32Array, keep: number, heads: number, W: number, ref: ArrayLike<number>, rel: number): void {
  const P = ref.length / heads;
  const Lc = keep + W;
  const kept = new Uint8Array(P);
  for (let h = 0; h < heads; h++) {
    kept.fill(0);
    for (let r = 0; r < keep; r++) kept[indices[h * Lc + r]!] = 1;
    let minKept = Infinity;
    let minAt = -1;
    let maxDropped = -Infinity;
    let maxAt = -1;
    for (let t = 0; t < P; t++) {
      const x = ref[h * P + t]!;
      if (kept[t] && x < minKept) [minKept, minAt] = [x, t];
      if (!kept[t] && x > maxDropped) [maxDropped, maxAt] = [x, t];
    }
    check(minKept >= maxDropped * (1 - 2 * rel), () =>
      `head ${h}: kept position ${minAt} scores ${minKept} < dropped position ${maxAt} at ${maxDropped} (rel tol ${rel.toExponential(2)})`,
    );
  }
}
