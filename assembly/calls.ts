/**
 * The kernels' call table: each exported kernel of assembly/kernels/ with its parameters by name,
 * in the kernel's order. The host calls kernels with named fields
 * (`k.attend({ q, qHeadStride, ... })`); the table turns them into the positional wasm call, and
 * WasmRuntime.create checks once, against the module's exports, that every kernel takes exactly
 * these parameters, so a build and a host that disagree fail at startup, not with wrong numbers.
 *
 * Parallel kernels take (thread, counter) before these; every value is an i32/usize/f32/f64 number.
 */

/** Parallel kernels: (thread, counter, ...params) => void, run on every thread at once. */
export const PARALLEL_PARAMS = {
  scoreLogits: ['q', 'qHeadStride', 'kt', 'ktHeadStride', 'group', 'heads', 'L', 'W', 'Dp', 'scale2', 'logits', 'scratch', 'scratchStride'],
  scoreStats: ['logits', 'heads', 'L', 'W', 'w'],
  scoreMean: ['e', 'heads', 'L', 'W', 'w', 'out', 'scratch', 'scratchStride'],
  pool: ['src', 'heads', 'P', 'K', 'out'],
  select: ['pooled', 'heads', 'P', 'keep', 'W', 'out', 'scratch', 'scratchStride'],
  gatherKeys: ['src', 'srcHeadStride', 'group', 'idx', 'heads', 'n', 'Dp', 'dst', 'dstHeadStride'],
  gatherQueries: ['src', 'srcHeadStride', 'idx', 'heads', 'n', 'rows', 'Dp', 'dst', 'dstHeadStride'],
  gatherRows: ['src', 'srcHeadStride', 'group', 'idx', 'heads', 'n', 'rows', 'Dp', 'dst', 'dstHeadStride'],
  attend: [
    'q', 'qHeadStride', 'kt', 'ktHeadStride', 'v', 'vHeadStride', 'group', 'heads', 'n', 'Dp', 'D', 'scale2',
    'out', 'outHeadStride', 'outRowStride', 'scratch', 'scratchStride',
  ],
  scatter: ['oc', 'idx', 'heads', 'n', 'L', 'D', 'out', 'outHeadStride', 'outRowStride'],
  matmul: ['a', 'bp', 'm', 'k', 'n', 'c', 'scratch'],
  blockScores: ['qt', 'qHeadStride', 'kt', 'ktHeadStride', 'group', 'heads', 'Rn', 'per', 'nb', 'SDp', 'scale2', 'masses', 'scratch', 'scratchStride'],
  blockSelect: ['masses', 'heads', 'nb', 'threshold', 'mask', 'scratch', 'scratchStride'],
  attendBlocks: [
    'q', 'qHeadStride', 'kt', 'ktHeadStride', 'v', 'vHeadStride', 'group', 'heads', 'n', 'Dp', 'D', 'scale2', 'B', 'T',
    'rowStart', 'blockList', 'out', 'outHeadStride', 'outRowStride', 'scratch', 'scratchStride',
  ],
} as const satisfies Record<string, readonly string[]>;

/** Serial kernels: (...params) => number, run on the calling thread. */
export const SERIAL_PARAMS = {
  /** Returns the count c of the keep-count rule. */
  budget: ['pooled', 'heads', 'P', 'tau', 'g', 'tmp', 'hist'],
} as const satisfies Record<string, readonly string[]>;

export type ParallelKernel = keyof typeof PARALLEL_PARAMS;
export type SerialKernel = keyof typeof SERIAL_PARAMS;
export const PARALLEL_KERNELS = Object.keys(PARALLEL_PARAMS) as ParallelKernel[];

/** A kernel's named arguments. */
export type ArgsOf<T extends readonly string[]> = { readonly [P in T[number]]: number };

/** The named-argument calls of every kernel. */
export type KernelCalls = { [K in ParallelKernel]: (args: ArgsOf<(typeof PARALLEL_PARAMS)[K]>) => Promise<void> } & {
  [K in SerialKernel]: (args: ArgsOf<(typeof SERIAL_PARAMS)[K]>) => number;
};

/** The positional argument list of `params` from named `args`. */
export function positional(params: readonly string[], args: Readonly<Record<string, number>>): number[] {
  return params.map((p) => args[p]!);
}

/**
 * Every kernel the table names whose export is missing or takes another number of parameters,
 * as "name (why)"; empty when the build matches the table.
 */
export function callTableMismatches(exports: Record<string, unknown>): string[] {
  const expected: Array<[string, number]> = [
    ...PARALLEL_KERNELS.map((k): [string, number] => [k, PARALLEL_PARAMS[k].length + 2]),
    ...(Object.keys(SERIAL_PARAMS) as SerialKernel[]).map((k): [string, number] => [k, SERIAL_PARAMS[k].length]),
  ];
  const wrong: string[] = [];
  for (const [name, arity] of expected) {
    const fn = exports[name];
    if (typeof fn !== 'function') wrong.push(`${name} (missing)`);
    else if (fn.length !== arity) wrong.push(`${name} (takes ${fn.length} parameters, the host's call table ${arity})`);
  }
  return wrong;
}
