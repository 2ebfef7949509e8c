/**
 * One stage vocabulary for the whole library: the pipeline's stages by their
 * public names. StageTimings has one field per stage, conformance rows and the
 * GPU recorder's marks use these names, and every backend's stage table is
 * keyed by the methods below.
 *
 *   scores -> pool -> budget -> select -> attend (gather + attend + scatter, or dense)
 * With options.blockSparse, attend is blockScores -> blockSelect -> attendBlocks (XAttention),
 * on TSA's compact rows or on the full sequence.
 */

/** The stages of one tokenSparseAttention call, in order (the keys of StageTimings besides total). */
export const STAGES = ['scores', 'pool', 'budget', 'select', 'attend'] as const;
export type StageName = (typeof STAGES)[number];

/** The Backend methods that each compute one stage (attend is attendSelected, or dense). */
export const STAGE_METHODS = ['scores', 'pool', 'budget', 'select', 'attendSelected', 'dense'] as const;
export type StageMethod = (typeof STAGE_METHODS)[number];

/** The stage a method's time is reported under. */
export const STAGE_OF: Readonly<Record<StageMethod, StageName>> = {
  scores: 'scores',
  pool: 'pool',
  budget: 'budget',
  select: 'select',
  attendSelected: 'attend',
  dense: 'attend',
};

/** Zeroed timings of one call: every stage of STAGES and total. */
export function emptyTimings(): Record<StageName | 'total', number> {
  const t = { total: 0 } as Record<StageName | 'total', number>;
  for (const stage of STAGES) t[stage] = 0;
  return t;
}

/** The block-sparse (XAttention) stages inside attend, in order; each is a Backend method of BlockSparseStages and a StageTimings field. */
export const BLOCK_STAGES = ['blockScores', 'blockSelect', 'attendBlocks'] as const;
export type BlockStageName = (typeof BLOCK_STAGES)[number];
