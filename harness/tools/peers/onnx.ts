/**
 * ONNX Runtime peers of the CPU backend: one causal attention graph, built here as ONNX protobuf
 * bytes (no dependency), run by
 *   - onnxruntime-node on its native CPU execution provider, with com.microsoft.GroupQueryAttention
 *     (GQA fused in one op; the fastest causal attention it has on CPU: ~2x its MultiHeadAttention);
 *   - onnxruntime-web on its WebAssembly backend, with com.microsoft.MultiHeadAttention
 *     (unidirectional = 1, K and V expanded to H heads in the graph; its GroupQueryAttention
 *     runs but ~8x slower there).
 * Graph: q [1,H,L,D], k, v [1,Hkv,L,D] (our layouts) -> Transpose + Reshape to [1,L,heads*D]
 * -> attention op -> out [1,L,H*D] (our output layout).
 * Each peer checks its output against the reference backend on a small shape when created.
 */
import { createReferenceBackend } from '../../../reference/index.js';
import { generateInput } from '../../core/generators.js';
import { maxAbsErr } from '../../core/compare.js';
import type { AttentionInput, AttentionShape } from '../../core/interface.js';
import { PeerUnavailableError, type Peer, type PeerFactory } from './peer.js';

// ---------------------------------------------------------------- protobuf writing

type Bytes = number[];
const utf8 = new TextEncoder();

/** Unsigned LEB128 of a non-negative safe integer. */
function varint(value: number): Bytes {
  const out: Bytes = [];
  let v = value;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return out;
}

const pb = {
  int: (field: number, v: number): Bytes => [...varint(field * 8), ...varint(v)],
  float: (field: number, v: number): Bytes => [...varint(field * 8 + 5), ...new Uint8Array(Float32Array.of(v).buffer)],
  bytes: (field: number, b: ArrayLike<number>): Bytes => [...varint(field * 8 + 2), ...varint(b.length), ...Array.from(b)],
  string: (field: number, s: string): Bytes => pb.bytes(field, utf8.encode(s)),
};

// ---------------------------------------------------------------- ONNX messages (onnx.proto field numbers)

const FLOAT = 1;
const INT32 = 6;
const INT64 = 7;

type Attribute = { name: string } & ({ int: number } | { float: number } | { ints: number[] });

/** AttributeProto: name 1, f 2, i 3, ints 8, type 20 (FLOAT 1, INT 2, INTS 7). */
function attribute(a: Attribute): Bytes {
  const name = pb.string(1, a.name);
  if ('int' in a) return [...name, ...pb.int(3, a.int), ...pb.int(20, 2)];
  if ('float' in a) return [...name, ...pb.float(2, a.float), ...pb.int(20, 1)];
  return [...name, ...a.ints.flatMap((v) => pb.int(8, v)), ...pb.int(20, 7)];
}

/** NodeProto: input 1, output 2, op_type 4, attribute 5, domain 7 ('' is an absent optional input). */
function node(op: string, inputs: string[], outputs: string[], attributes: Attribute[] = [], domain = ''): Bytes {
  return [
    ...inputs.flatMap((i) => pb.string(1, i)),
    ...outputs.flatMap((o) => pb.string(2, o)),
    ...pb.string(4, op),
    ...attributes.flatMap((a) => pb.bytes(5, attribute(a))),
    ...(domain ? pb.string(7, domain) : []),
  ];
}

/** TensorProto initializer of int32 or int64 values: dims 1, data_type 2, int32_data 5, int64_data 7, name 8. */
function intTensor(name: string, type: typeof INT32 | typeof INT64, dims: number[], values: number[]): Bytes {
  return [
    ...dims.flatMap((d) => pb.int(1, d)),
    ...pb.int(2, type),
    ...values.flatMap((v) => pb.int(type === INT32 ? 5 : 7, v)),
    ...pb.string(8, name),
  ];
}

/** ValueInfoProto of a float tensor: name 1, type 2 -> tensor_type 1 -> elem_type 1, shape 2 -> dim 1 -> dim_value 1. */
function floatInput(name: string, dims: number[]): Bytes {
  const shape = dims.flatMap((d) => pb.bytes(1, pb.int(1, d)));
  return [...pb.string(1, name), ...pb.bytes(2, pb.bytes(1, [...pb.int(1, FLOAT), ...pb.bytes(2, shape)]))];
}

/** ModelProto: ir_version 1, producer_name 2, graph 7 (node 1, name 2, initializer 5, input 11, output 12), opset_import 8. */
function model(nodes: Bytes[], inputs: Bytes[], outputs: Bytes[], initializers: Bytes[]): Uint8Array {
  const graph = [
    ...nodes.flatMap((n) => pb.bytes(1, n)),
    ...pb.string(2, 'causal_attention'),
    ...initializers.flatMap((t) => pb.bytes(5, t)),
    ...inputs.flatMap((v) => pb.bytes(11, v)),
    ...outputs.flatMap((v) => pb.bytes(12, v)),
  ];
  const opset = (domain: string, version: number) => pb.bytes(8, [...pb.string(1, domain), ...pb.int(2, version)]);
  return Uint8Array.from([...pb.int(1, 8), ...pb.string(2, 'token-sparse-attention'), ...pb.bytes(7, graph), ...opset('', 17), ...opset('com.microsoft', 1)]);
}

// ---------------------------------------------------------------- the attention graph

export type OrtAttentionOp = 'GroupQueryAttention' | 'MultiHeadAttention';

/** Causal attention of one shape as an ONNX model: inputs q, k, v in our layouts, output out [1, L, H*D]. */
export function causalAttentionModel(shape: AttentionShape, op: OrtAttentionOp): Uint8Array {
  const { heads: H, kvHeads: Hkv, headDim: D, seqLen: L } = shape;
  const G = H / Hkv;
  const nodes: Bytes[] = [];
  const inits: Bytes[] = [];
  const reshapes = new Set<number>();
  // [1, heads, L, D] -> [1, L, heads * D]
  const tokenMajor = (name: string, heads: number): string => {
    const shapeName = `shape_${heads}`;
    if (!reshapes.has(heads)) inits.push(intTensor(shapeName, INT64, [3], [1, L, heads * D]));
    reshapes.add(heads);
    nodes.push(node('Transpose', [name], [`${name}_t`], [{ name: 'perm', ints: [0, 2, 1, 3] }]));
    nodes.push(node('Reshape', [`${name}_t`, shapeName], [`${name}_seq`]));
    return `${name}_seq`;
  };
  const scale = { name: 'scale', float: 1 / Math.sqrt(D) };
  if (op === 'GroupQueryAttention') {
    // Prompt processing without a cache: seqlens_k = L - 1 and total_sequence_length = L make it causal.
    inits.push(intTensor('seqlens_k', INT32, [1], [L - 1]), intTensor('total_len', INT32, [], [L]));
    const inputs = [tokenMajor('q', H), tokenMajor('k', Hkv), tokenMajor('v', Hkv), '', '', 'seqlens_k', 'total_len'];
    const attrs = [{ name: 'num_heads', int: H }, { name: 'kv_num_heads', int: Hkv }, scale];
    nodes.push(node(op, inputs, ['out', 'present_k', 'present_v'], attrs, 'com.microsoft'));
  } else {
    // K, V repeated to H heads: [1, Hkv, L, D] -> [1, Hkv, 1, L, D] -> [1, Hkv, G, L, D] -> [1, H, L, D].
    inits.push(
      intTensor('kv5', INT64, [5], [1, Hkv, 1, L, D]),
      intTensor('kv5x', INT64, [5], [1, Hkv, G, L, D]),
      intTensor('kv4', INT64, [4], [1, H, L, D]),
    );
    const expand = (name: string): string => {
      nodes.push(node('Reshape', [name, 'kv5'], [`${name}_5`]));
      nodes.push(node('Expand', [`${name}_5`, 'kv5x'], [`${name}_x`]));
      nodes.push(node('Reshape', [`${name}_x`, 'kv4'], [`${name}_h`]));
      return `${name}_h`;
    };
    const inputs = [tokenMajor('q', H), tokenMajor(expand('k'), H), tokenMajor(expand('v'), H)];
    const attrs = [{ name: 'num_heads', int: H }, { name: 'unidirectional', int: 1 }, scale];
    nodes.push(node(op, inputs, ['out'], attrs, 'com.microsoft'));
  }
  return model(
    nodes,
    [floatInput('q', [1, H, L, D]), floatInput('k', [1, Hkv, L, D]), floatInput('v', [1, Hkv, L, D])],
    [floatInput('out', [1, L, H * D])],
    inits,
  );
}

// ---------------------------------------------------------------- peers

/** The parts of onnxruntime-node / onnxruntime-web used here (the two share onnxruntime-common's API). */
interface Ort {
  InferenceSession: { create(model: Uint8Array, options: object): Promise<Session> };
  Tensor: new (type: 'float32', data: Float32Array, dims: readonly number[]) => unknown;
}
interface Session {
  run(feeds: Record<string, unknown>): Promise<Record<string, { data: unknown }>>;
  release(): Promise<void>;
}

class OrtPeer implements Peer {
  constructor(
    readonly name: string,
    private readonly ort: Ort,
    private readonly session: Session,
    private readonly shape: AttentionShape,
  ) {}

  static async create(name: string, ort: Ort, op: OrtAttentionOp, options: object, shape: AttentionShape): Promise<OrtPeer> {
    // Before timing: the same graph on a small shape of the same heads must match the reference.
    const small = { ...shape, seqLen: Math.min(shape.seqLen, 48) };
    const check = new OrtPeer(name, ort, await ort.InferenceSession.create(causalAttentionModel(small, op), options), small);
    try {
      const input = generateInput('gaussian', small, 20260);
      const err = maxAbsErr(await check.dense(input), await createReferenceBackend().dense(input));
      if (!(err <= 1e-4)) throw new Error(`${name}: ${op} differs from the reference by ${err} on ${JSON.stringify(small)}`);
    } finally {
      await check.dispose();
    }
    return new OrtPeer(name, ort, await ort.InferenceSession.create(causalAttentionModel(shape, op), options), shape);
  }

  async dense(input: AttentionInput): Promise<Float32Array> {
    const { heads: H, kvHeads: Hkv, headDim: D, seqLen: L } = this.shape;
    if (input.heads !== H || input.kvHeads !== Hkv || input.headDim !== D || input.seqLen !== L) {
      throw new Error(`${this.name} was built for ${JSON.stringify(this.shape)}`);
    }
    const { Tensor } = this.ort;
    const result = await this.session.run({
      q: new Tensor('float32', input.q, [1, H, L, D]),
      k: new Tensor('float32', input.k, [1, Hkv, L, D]),
      v: new Tensor('float32', input.v, [1, Hkv, L, D]),
    });
    return result.out!.data as Float32Array;
  }

  dispose(): Promise<void> {
    return this.session.release();
  }
}

async function load(pkg: 'onnxruntime-node' | 'onnxruntime-web'): Promise<Ort> {
  try {
    return (await import(pkg)) as unknown as Ort;
  } catch (e) {
    if ((e as { code?: string }).code === 'ERR_MODULE_NOT_FOUND' && String(e).includes(`'${pkg}'`)) throw new PeerUnavailableError(`${pkg} is not installed (npm install ${pkg} to compare with it)`);
    throw new PeerUnavailableError(`${pkg} failed to load: ${(e as Error).message}`);
  }
}

/** onnxruntime-web fixes its wasm thread count when it first runs; later peers must use the same. */
let webThreads: number | null = null;

export const ONNX_PEERS: PeerFactory[] = [
  {
    name: 'onnxruntime-node (cpu)',
    group: 'onnx',
    comparesWith: ['wasm'],
    async create(shape, threads) {
      if (shape.headDim % 8 !== 0) throw new Error(`GroupQueryAttention needs a head dimension that is a multiple of 8, got ${shape.headDim}`);
      const ort = await load('onnxruntime-node');
      const options = { intraOpNumThreads: threads, interOpNumThreads: 1 };
      return OrtPeer.create('onnxruntime-node (cpu, GroupQueryAttention)', ort, 'GroupQueryAttention', options, shape);
    },
  },
  {
    name: 'onnxruntime-web (wasm)',
    group: 'onnx',
    comparesWith: ['wasm'],
    async create(shape, threads) {
      const ort = await load('onnxruntime-web');
      const env = (ort as unknown as { env: { logLevel: string; wasm: { numThreads: number } } }).env;
      if (webThreads !== null && webThreads !== threads) {
        throw new Error(`onnxruntime-web runs with the ${webThreads} wasm threads of its first use in this process, not ${threads}`);
      }
      webThreads = threads;
      env.logLevel = 'error';
      env.wasm.numThreads = threads;
      return OrtPeer.create('onnxruntime-web (wasm, MultiHeadAttention)', ort, 'MultiHeadAttention', { executionProviders: ['wasm'] }, shape);
    },
  },
];
