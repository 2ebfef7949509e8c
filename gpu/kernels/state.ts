/**
 * Layout of the layer-state buffer (u32 words) that carries the budget from
 * the budget kernels to select, gather, attend and scatter without a host
 * round trip. The host reads it back only with the final output.
 */
export const STATE = {
  /** modeSparse, modeNothingPruned or modeNotWorthIt. */
  mode: 0,
  keep: 1,
  pruned: 2,
  /** L' = keep + W (sparse) or L. */
  keptLength: 3,
  /** c: the count of cumulative sums below tau (before the +1). */
  count: 4,
  /** Radix-select scratch of the budget (see budget.wgsl.ts). */
  maxBits: 5,
  done: 6,
  groupCount: 7,
  baseCount: 8,
  /** s: pooled values are scaled by 2^s into 128-bit fixed point (i32 bits). */
  shift: 9,
  /** 4 words each: 128-bit integers, least significant word first. */
  baseSum: 12,
  theta: 16,
  prefix: 20,
  words: 24,
  /** Modes are non-zero: a state no kernel wrote (all zero) is never mistaken for a decision. */
  modeSparse: 1,
  modeNothingPruned: 2,
  modeNotWorthIt: 3,
  /** Dense decided on the host (short context, tau 0, cost rule before scoring, `dense()`). */
  modeDense: 4,
} as const;
