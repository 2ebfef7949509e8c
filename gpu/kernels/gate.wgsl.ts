/**
 * probeGate: the cost rule's verdict on the probe's budget (harness/core/cost.ts
 * step 3), on the device. The budget kernels ran on the probe's pooled
 * scores with the bound maxKeptLength and left mode and keep in the state
 * words; the estimate is L'_est = keep + W (sparse or not-worth-it) or L
 * (nothing pruned). Sparse pays iff L'_est <= maxKeptLength. If it does not,
 * every workgroup count of the gated full selection (grids: [x, y, z] u32 per
 * dispatch, Recorder.gated) becomes 0 and the state says modeNotWorthIt with
 * keep = L'_est - W, so only the dense attention (GATE.ifDense) runs.
 * One workgroup.
 */
import { read, write, type Kernel } from './kernel.js';
import { STATE } from './state.js';

const S = STATE;

export const PROBE_GATE: Kernel<'state' | 'grids'> = {
  name: 'probeGate',
  key: 'probeGate',
  params: [
    ['L', 'u32'],
    ['W', 'u32'],
    ['maxKeptLength', 'u32'],
    ['words', 'u32'],
  ],
  bindings: [write('state', 'u32'), write('grids', 'u32')],
  workgroupSize: 64,
  source: () => `var<workgroup> estimate: u32;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) tid: u32) {
  if (tid == 0u) {
    let mode = state[${S.mode}];
    estimate = p.L;
    if (mode == ${S.modeSparse}u || mode == ${S.modeNotWorthIt}u) { estimate = state[${S.keep}] + p.W; }
  }
  let est = workgroupUniformLoad(&estimate);
  if (est <= p.maxKeptLength) { return; }
  for (var i = tid; i < p.words; i = i + WG) { grids[i] = 0u; }
  if (tid == 0u) {
    state[${S.mode}] = ${S.modeNotWorthIt}u;
    state[${S.keep}] = est - p.W;
    state[${S.keptLength}] = p.L;
  }
}
`,
};

/**
 * modeGate: zeroes every workgroup count of one attention branch (grids, Recorder.gated)
 * unless the state's mode selects it: `sparse` 1 keeps the branch when the mode is sparse,
 * 0 when it is any dense mode. So of the two recorded branches (dense; gather, compact
 * attention, scatter) only the one the budget chose launches workgroups. One workgroup.
 */
export const MODE_GATE: Kernel<'state' | 'grids'> = {
  name: 'modeGate',
  key: 'modeGate',
  params: [
    ['sparse', 'u32'],
    ['words', 'u32'],
  ],
  bindings: [read('state', 'u32'), write('grids', 'u32')],
  workgroupSize: 64,
  source: () => `@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) tid: u32) {
  let sparse = state[${S.mode}] == ${S.modeSparse}u;
  if (sparse == (p.sparse == 1u)) { return; }
  for (var i = tid; i < p.words; i = i + WG) { grids[i] = 0u; }
}
`,
};
