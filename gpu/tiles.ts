/**
 * Tile shapes of the logits kernels (score, attend), chosen per head
 * dimension from the adapter's limits.
 *
 * A workgroup has NX * NY threads. Thread (ty, tx) owns logit rows
 * ty + i*NY (i < TM) and columns tx + j*NX (j < TN) of a BM x BN tile
 * (BM = NY*TM query rows, BN = NX*TN keys), and output vec4 columns
 * tx + j*NX (j < TD4) of the BM x DP output tile. DP is D rounded up so the
 * vec4 columns split evenly over NX threads; padded columns are zero.
 */

export interface TileConfig {
  nx: number;
  ny: number;
  /** Logit rows per thread. */
  tm: number;
  /** Logit columns per thread. */
  tn: number;
  /** Keys per V chunk in workgroup memory (attend's P.V phase). */
  bv: number;
  /** Head-dimension floats per Q/K chunk in workgroup memory (the Q.K^T phase). */
  dk: number;
  /** Padded head dimension (multiple of 4 * nx and of dk). */
  dp: number;
  /** attend: load the next K or V chunk into registers while computing on the current one (default; faster on the H200). */
  prefetch: boolean;
  /**
   * Q, K, V and O bound as vec4 arrays (one 16-byte load or store per 4 floats);
   * needs the head dimension to be a multiple of 4, else f32 arrays.
   */
  vec4: boolean;
}

export const bm = (c: TileConfig): number => c.ny * c.tm;
export const bn = (c: TileConfig): number => c.nx * c.tn;
export const threads = (c: TileConfig): number => c.nx * c.ny;
/** A tile configuration as a pipeline cache key. */
export const tileKey = (c: TileConfig): string =>
  `${c.nx}.${c.ny}.${c.tm}.${c.tn}.${c.bv}.${c.dk}.${c.dp}${c.prefetch ? '.pf' : ''}${c.vec4 ? '.v4' : ''}`;

/** vec4 slots of the shared union: max(Q.K^T phase: Q and K chunks, P.V phase: a V chunk). */
export function unionVec4(c: TileConfig): number {
  return Math.max((bm(c) + bn(c)) * (c.dk / 4 + 1), c.bv * (c.dp / 4));
}

/** Workgroup memory of the attend kernel in bytes: the union, P [BM][BN+1] and two row-reduction arrays. */
export function attendSharedBytes(c: TileConfig): number {
  return 16 * unionVec4(c) + 4 * bm(c) * (bn(c) + 1) + 2 * 4 * bm(c) * c.nx;
}

export interface TileLimits {
  maxComputeWorkgroupStorageSize: number;
  maxComputeInvocationsPerWorkgroup: number;
  maxComputeWorkgroupSizeX: number;
}

function roundUp(x: number, m: number): number {
  return Math.ceil(x / m) * m;
}

/** The largest power of two <= 16 with 4 * nx <= D rounded up to 4. */
function nxFor(headDim: number): number {
  const d4 = roundUp(headDim, 4) / 4;
  let nx = 1;
  while (nx * 2 <= Math.min(16, d4)) nx *= 2;
  return nx;
}

/**
 * Tiles for head dimension `headDim`: rows per thread `tm` (default 4), then the
 * largest V chunk and Q/K chunk that fit the adapter's workgroup memory
 * (`prefer` fields first, where they fit).
 */
export function chooseTiles(headDim: number, limits: TileLimits, prefer: Partial<TileConfig> = {}): TileConfig {
  const nx = prefer.nx ?? nxFor(headDim);
  const tm = prefer.tm ?? 4;
  const tn = prefer.tn ?? 4;
  const dp = roundUp(headDim, 4 * nx);
  // Preferences (tuning) come first; where one does not fit this head dimension the defaults follow.
  const first = <T>(pref: T | undefined, all: T[]) => (pref === undefined ? all : [pref, ...all.filter((x) => x !== pref)]);
  const dks = first(prefer.dk, [32, 16, 8, 4]).filter((dk) => dp % dk === 0);
  const bvs = first(prefer.bv, [64, 32, 16, 8, 4]);
  for (const ny of first(prefer.ny, [16, 8])) {
    if (nx * ny > Math.min(limits.maxComputeInvocationsPerWorkgroup, limits.maxComputeWorkgroupSizeX)) continue;
    for (const dk of dks) {
      for (const bv of bvs) {
        const c: TileConfig = { nx, ny, tm, tn, bv, dk, dp, prefetch: prefer.prefetch ?? true, vec4: headDim % 4 === 0 && (prefer.vec4 ?? true) };
        if (bv > bn(c) || bn(c) % bv !== 0) continue;
        if (attendSharedBytes(c) <= limits.maxComputeWorkgroupStorageSize) return c;
      }
    }
  }
  throw new Error(
    `no attention tile fits head dimension ${headDim} in ${limits.maxComputeWorkgroupStorageSize} bytes of workgroup memory`,
  );
}

/**
 * Tiles of attendBlocks (block mode) for block size B (a multiple of 16): chooseTiles with rows
 * and keys per thread lowered from 4 until BM and BN divide B, so that a query tile lies in
 * one block and key tiles tile each block (tm = 1 always does: NY divides 16; so does some tn, NX being a power of two <= 16).
 */
export function chooseBlockTiles(headDim: number, B: number, limits: TileLimits, prefer: Partial<TileConfig> = {}): TileConfig {
  for (const tm of [prefer.tm ?? 4, 2, 1]) {
    for (const tn of [prefer.tn ?? 4, 2, 1]) {
      let c: TileConfig;
      try {
        c = chooseTiles(headDim, limits, { ...prefer, tm, tn });
      } catch {
        continue; // no V chunk fits so few keys per tile
      }
      if (B % bm(c) === 0 && B % bn(c) === 0) return c;
    }
  }
  throw new Error(`no attention tile divides block size ${B}`);
}
