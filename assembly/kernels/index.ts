/**
 * The WASM kernels of the CPU backend, one per stage of Token Sparse Attention:
 * score (scoreLogits, scoreStats, scoreMean) -> pool -> budget -> select -> gather (gatherKeys,
 * gatherQueries, gatherRows) -> attend -> scatter; XAttention's blockScores -> blockSelect ->
 * attendBlocks; and a dense matmul (C = A B^T, matmul.ts) for model runtimes around attention.
 * Compiled twice (asconfig.json): plain SIMD and relaxed SIMD (fused multiply-add),
 * both with threads over an imported shared memory. The host (assembly/index.ts)
 * lays out all memory and calls parallel kernels on every thread at once (see common.ts).
 */
export { BK as BLOCK_KEYS, BQ as BLOCK_QUERIES } from './common';
export { scoreLogits, scoreStats, scoreMean } from './score';
export { pool } from './pool';
export { budget } from './budget';
export { select } from './select';
export { gatherKeys, gatherQueries, gatherRows } from './gather';
export { attend } from './attend';
export { scatter } from './scatter';
export { blockScores } from './block-scores';
export { blockSelect } from './block-select';
export { attendBlocks } from './attend-blocks';
export { matmul, MATMUL_ROWS } from './matmul';
