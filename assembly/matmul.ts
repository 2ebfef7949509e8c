/**
 * A public dense matmul on the wasm kernels (assembly/kernels/matmul.ts), for the parts of a model
 * around attention (projections, feed-forward, classifier): C = A B^T in f32, threaded like the
 * backend's kernels over its own shared memory. B is given by its rows, as weights y = W x are
 * stored ((out, in) row-major), so a layer's outputs for m tokens are matmul(X, W, m, in, out).
 *
 * Platform-neutral: createWasmMatmul is in assembly/node.ts (Node) and assembly/browser.ts.
 */
import { TsaInputError } from '../harness/core/errors.js';
import { chooseVariant, HEADER_BYTES, threadsOf, WasmRuntime, type SimdVariant, type WasmHost } from './runtime.js';

export interface WasmMatmulOptions {
  /** Threads (default: the number of cores; 1 runs without workers). */
  threads?: number;
  /** Force a build: 'relaxed' (fused multiply-add) or 'plain' SIMD. Default: relaxed where valid. */
  simd?: SimdVariant;
}

export interface WasmMatmul {
  /** e.g. "wasm relaxed-simd matmul, 2 threads". */
  readonly description: string;
  readonly threads: number;
  /**
   * C [m][n] = A [m][k] B^T for B [n][k] row-major: C[i][j] = sum_kk A[i][kk] B[j][kk], f32
   * multiply-adds in ascending kk. Calls run one at a time. Throws TsaInputError on bad sizes.
   */
  matmul(a: Float32Array, b: Float32Array, m: number, k: number, n: number): Promise<Float32Array>;
  dispose(): Promise<void>;
}

/** Columns of C per packed panel of B (the kernel's register tile width). */
const PANEL = 8;
const align64 = (x: number): number => Math.ceil(x / 64) * 64;

function checkSizes(a: Float32Array, b: Float32Array, m: number, k: number, n: number): void {
  for (const [name, x] of [['m', m], ['k', k], ['n', n]] as const) {
    if (!Number.isInteger(x) || x < 1) throw new TsaInputError(`matmul: ${name} must be a positive integer, got ${x}`, 'SHAPE');
  }
  if (a.length !== m * k) throw new TsaInputError(`matmul: A has ${a.length} floats, expected m * k = ${m * k}`, 'SHAPE');
  if (b.length !== n * k) throw new TsaInputError(`matmul: B has ${b.length} floats, expected n * k = ${n * k}`, 'SHAPE');
}

/** packPanels: dst[p][kk][c] = b[8p + c][kk] (B [n][k] into panels of 8 transposed rows), zero past n. */
function packPanels(dst: Float32Array, b: Float32Array, k: number, n: number): void {
  const panels = Math.ceil(n / PANEL);
  dst.fill(0, (panels - 1) * PANEL * k, panels * PANEL * k);
  for (let j = 0; j < n; j++) {
    const base = Math.floor(j / PANEL) * PANEL * k + (j % PANEL);
    const row = j * k;
    for (let kk = 0; kk < k; kk++) dst[base + kk * PANEL] = b[row + kk]!;
  }
}

class Matmul implements WasmMatmul {
  constructor(
    private readonly rt: WasmRuntime,
    readonly description: string,
  ) {}

  get threads(): number {
    return this.rt.threads;
  }

  matmul(a: Float32Array, b: Float32Array, m: number, k: number, n: number): Promise<Float32Array> {
    checkSizes(a, b, m, k, n);
    return this.rt.exclusive('wasm matmul', () => this.run(a, b, m, k, n));
  }

  private async run(a: Float32Array, b: Float32Array, m: number, k: number, n: number): Promise<Float32Array> {
    const rt = this.rt;
    const panelFloats = Math.ceil(n / PANEL) * PANEL * k;
    const scratch = HEADER_BYTES;
    const at = align64(scratch + 128 * rt.threads);
    const bp = align64(at + 4 * m * k);
    const c = align64(bp + 4 * panelFloats);
    rt.reserve(c + 4 * m * n);
    rt.f32(at, m * k).set(a);
    packPanels(rt.f32(bp, panelFloats), b, k, n);
    await rt.calls().matmul({ a: at, bp, m, k, n, c, scratch });
    return rt.f32(c, m * n).slice();
  }

  dispose(): Promise<void> {
    return this.rt.dispose();
  }
}

/** Creates the wasm matmul on `host` (Node's or the browser's; see createWasmMatmul there). */
export async function createWasmMatmulOn(host: WasmHost, options: WasmMatmulOptions = {}): Promise<WasmMatmul> {
  const threads = threadsOf(host, options.threads);
  const { variant, bytes } = await chooseVariant(host, options.simd);
  const rt = await WasmRuntime.create(host, variant, bytes, threads);
  return new Matmul(rt, `wasm ${variant === 'relaxed' ? 'relaxed-simd' : 'simd'} matmul, ${threads} thread${threads === 1 ? '' : 's'}`);
}
