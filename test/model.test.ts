/**
 * The Llama runtime on stories260K: loader, tokenizer, forward pass and layer selection, pinned
 * against values computed here independently (a plain float64 forward pass written below, a
 * naive llama2.c merge loop), plus loader errors on bad files and TSA/dense equivalences.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../harness/core/generators.js';
import { createReferenceBackend, createWasmMatmul, TsaInputError, type Backend, type WasmMatmul } from '../harness/index.js';
import { denseAttention, fixedRatioAttention, randomAttention, randomIndices, tsaAttention } from '../harness/llama/attention.js';
import { loadCheckpoint, ModelFormatError, parseCheckpoint, type LlamaModel } from '../harness/llama/checkpoint.js';
import { chooseSparseLayers, defaultDriftProfile, driftFromResiduals, parseLayerList, rankByDrift, sparseLayerCount } from '../harness/llama/drift.js';
import { captureAttention, benchInputFromModel } from '../harness/llama/capture.js';
import { Llama } from '../harness/llama/llama.js';
import { run as runBenchCommand } from '../harness/tools/commands/bench.js';
import { tsaDefaultsFor } from '../harness/llama/options.js';
import { buildTexts, DEFAULT_QUALITY_SETTINGS, settingsForContext } from '../harness/llama/quality.js';
import { argmax, generate, sample } from '../harness/llama/sampling.js';
import { FROG_KING } from '../harness/llama/texts.js';
import { BOS, loadTokenizer, parseTokenizer, type Tokenizer } from '../harness/llama/tokenizer.js';
import { REPO_ROOT } from './shared/golden-dir.js';

const MODELS = process.env.TSA_MODELS_DIR ? resolve(process.env.TSA_MODELS_DIR) : resolve(REPO_ROOT, '../shared/models');
const MODEL_PATH = join(MODELS, 'stories260K.bin');
const TOKENIZER_PATH = join(MODELS, 'tok512.bin');
const SOTU_PATH = join(MODELS, 'sotu5M.bin');
const SOTU_TOKENIZER_PATH = join(MODELS, 'tok4096.bin');
const GREEDY_STORY = 'Once upon a time, there was a little girl named Lily. She loved to play outside in the park.';

let modelBytes: Uint8Array;
let tokenizerBytes: Uint8Array;
let model: LlamaModel;
let llama: Llama;
let tok: Tokenizer;
let backend: Backend;
let tmp: string;
let wasmMatmul: WasmMatmul;

beforeAll(async () => {
  wasmMatmul = await createWasmMatmul({ threads: 2 });
  // Plain copies (a Node Buffer's slice() would share memory with the original).
  modelBytes = new Uint8Array(readFileSync(MODEL_PATH));
  tokenizerBytes = new Uint8Array(readFileSync(TOKENIZER_PATH));
  model = loadCheckpoint(MODEL_PATH);
  llama = new Llama(model);
  tok = loadTokenizer(TOKENIZER_PATH, model.config.vocabSize);
  backend = createReferenceBackend();
  tmp = mkdtempSync(join(tmpdir(), 'tsa-model-test-'));
});

afterAll(async () => {
  rmSync(tmp, { recursive: true, force: true });
  await wasmMatmul.dispose();
});

const onWasm = (m: LlamaModel) => new Llama(m, (a, b, rows, k, n) => wasmMatmul.matmul(a, b, rows, k, n));

/** max_t,j |got[t][j] - expected[t][j]| for logits rows [L][V]. */
function maxLogitError(expected: Float64Array[], got: Float32Array, V: number): number {
  let maxErr = 0;
  expected.forEach((row, t) => row.forEach((x, j) => (maxErr = Math.max(maxErr, Math.abs(x - got[t * V + j]!)))));
  return maxErr;
}

/**
 * An independent float64 forward pass straight from the file bytes (llama2.c's run.c as plain
 * loops): returns the logits of every position, [L][V].
 */
function float64Logits(bytes: Uint8Array, tokens: number[]): Float64Array[] {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const [dim, hid, nl, nh, nkv, vocab] = [0, 1, 2, 3, 4, 5].map((i) => dv.getInt32(4 * i, true)) as number[];
  const hs = dim! / nh!;
  const kvDim = nkv! * hs;
  let off = 28;
  const read = (n: number): Float64Array => {
    const a = new Float64Array(n);
    for (let i = 0; i < n; i++) a[i] = dv.getFloat32(off + 4 * i, true);
    off += 4 * n;
    return a;
  };
  const emb = read(vocab! * dim!);
  const rmsAtt = read(nl! * dim!);
  const wq = read(nl! * dim! * dim!);
  const wk = read(nl! * kvDim * dim!);
  const wv = read(nl! * kvDim * dim!);
  const wo = read(nl! * dim! * dim!);
  const rmsFfn = read(nl! * dim!);
  const w1 = read(nl! * hid! * dim!);
  const w2 = read(nl! * dim! * hid!);
  const w3 = read(nl! * hid! * dim!);
  const rmsFinal = read(dim!);
  const mat = (w: Float64Array, base: number, x: Float64Array, rows: number, cols: number) =>
    Float64Array.from({ length: rows }, (_, r) => {
      let s = 0;
      for (let c = 0; c < cols; c++) s += w[base + r * cols + c]! * x[c]!;
      return s;
    });
  const norm = (x: Float64Array, w: Float64Array, base: number) => {
    let ss = 0;
    for (const v of x) ss += v * v;
    const k = 1 / Math.sqrt(ss / x.length + 1e-5);
    return x.map((v, i) => w[base + i]! * v * k);
  };
  const rot = (x: Float64Array, pos: number) => {
    for (let i = 0; i < x.length; i += 2) {
      const f = pos / Math.pow(10000, (i % hs) / hs);
      const [a, b] = [x[i]!, x[i + 1]!];
      x[i] = a * Math.cos(f) - b * Math.sin(f);
      x[i + 1] = a * Math.sin(f) + b * Math.cos(f);
    }
  };
  const xs = tokens.map((t) => emb.slice(t * dim!, (t + 1) * dim!));
  for (let l = 0; l < nl!; l++) {
    const q: Float64Array[] = [];
    const k: Float64Array[] = [];
    const v: Float64Array[] = [];
    xs.forEach((x, pos) => {
      const n = norm(x, rmsAtt, l * dim!);
      q.push(mat(wq, l * dim! * dim!, n, dim!, dim!));
      k.push(mat(wk, l * kvDim * dim!, n, kvDim, dim!));
      v.push(mat(wv, l * kvDim * dim!, n, kvDim, dim!));
      rot(q[pos]!, pos);
      rot(k[pos]!, pos);
    });
    xs.forEach((x, pos) => {
      const att = new Float64Array(dim!);
      for (let h = 0; h < nh!; h++) {
        const g = Math.floor(h / (nh! / nkv!));
        const s: number[] = [];
        for (let j = 0; j <= pos; j++) {
          let d = 0;
          for (let i = 0; i < hs; i++) d += q[pos]![h * hs + i]! * k[j]![g * hs + i]!;
          s.push(d / Math.sqrt(hs));
        }
        const m = Math.max(...s);
        const e = s.map((z) => Math.exp(z - m));
        const z = e.reduce((a, b) => a + b, 0);
        for (let j = 0; j <= pos; j++) for (let i = 0; i < hs; i++) att[h * hs + i]! += (e[j]! / z) * v[j]![g * hs + i]!;
      }
      const o = mat(wo, l * dim! * dim!, att, dim!, dim!);
      for (let i = 0; i < dim!; i++) x[i]! += o[i]!;
      const n = norm(x, rmsFfn, l * dim!);
      const a = mat(w1, l * hid! * dim!, n, hid!, dim!);
      const b = mat(w3, l * hid! * dim!, n, hid!, dim!);
      const gated = a.map((u, i) => (u / (1 + Math.exp(-u))) * b[i]!);
      const f = mat(w2, l * dim! * hid!, gated, dim!, hid!);
      for (let i = 0; i < dim!; i++) x[i]! += f[i]!;
    });
  }
  return xs.map((x) => mat(emb, 0, norm(x, rmsFinal, 0), vocab!, dim!));
}

/** llama2.c's merge loop verbatim in spirit: rescan every pair, concatenate, look up, merge the best. */
function naiveEncode(t: Tokenizer, text: string): number[] {
  const ids = new Map<string, number>();
  t.pieces.forEach((p, i) => ids.has(p) || ids.set(p, i));
  const bytes = new TextEncoder().encode(text);
  const out = [BOS];
  if (bytes.length) out.push(ids.get(' ')!);
  let i = 0;
  while (i < bytes.length) {
    let j = i + 1;
    while (j < bytes.length && j - i < 4 && (bytes[j]! & 0xc0) === 0x80) j++;
    const piece = String.fromCharCode(...bytes.subarray(i, j));
    if (ids.has(piece)) out.push(ids.get(piece)!);
    else for (let b = i; b < j; b++) out.push(bytes[b]! + 3);
    i = j;
  }
  for (;;) {
    let best = -1e10;
    let at = -1;
    let id = -1;
    for (let p = 0; p + 1 < out.length; p++) {
      const m = ids.get(t.pieces[out[p]!]! + t.pieces[out[p + 1]!]!);
      if (m !== undefined && t.scores[m]! > best) [best, at, id] = [t.scores[m]!, p, m];
    }
    if (at < 0) return out;
    out.splice(at, 2, id);
  }
}

const options = (coverage: number) => ({ coverage, window: 32, minTokens: 64, poolKernel: 7 });

describe('checkpoint loader', () => {
  it('reads the stories260K header and sizes', () => {
    expect(model.config).toEqual({
      dim: 64,
      hiddenDim: 172,
      layers: 5,
      heads: 8,
      kvHeads: 4,
      vocabSize: 512,
      seqLen: 512,
      headDim: 8,
      sharedClassifier: true,
    });
    expect(model.layers[4]!.w2.length).toBe(64 * 172);
    expect(model.classifier).toBe(model.tokenEmbedding);
  });

  it('rejects any truncation with TRUNCATED, naming the tensor it ends in', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: modelBytes.length - 1 }), (n) => {
        const e = catchError(() => parseCheckpoint(modelBytes.subarray(0, n), 'cut.bin'));
        expect(e).toBeInstanceOf(ModelFormatError);
        expect((e as ModelFormatError).formatCode).toBe('TRUNCATED');
        expect((e as Error).message).toMatch(n < 28 ? /header/ : /truncated.*ends inside/);
      }),
      { numRuns: 25 },
    );
  });

  it('rejects bad files written to disk: truncated, trailing bytes, wrong file, bad header, NaN weight, missing', () => {
    const write = (name: string, bytes: Uint8Array) => {
      const p = join(tmp, name);
      writeFileSync(p, bytes);
      return p;
    };
    const code = (path: string) => (catchError(() => loadCheckpoint(path)) as ModelFormatError).formatCode;
    expect(code(write('short.bin', modelBytes.subarray(0, modelBytes.length - 4)))).toBe('TRUNCATED');
    const longer = new Uint8Array(modelBytes.length + 8);
    longer.set(modelBytes);
    expect(code(write('long.bin', longer))).toBe('TRAILING');
    expect(code(TOKENIZER_PATH)).toBe('HEADER');
    const badHeads = modelBytes.slice();
    new DataView(badHeads.buffer).setInt32(16, 3, true); // kvHeads 3 does not divide heads 8
    expect(code(write('heads.bin', badHeads))).toBe('HEADER');
    const nan = modelBytes.slice();
    new DataView(nan.buffer).setFloat32(28 + 4 * 1000, NaN, true);
    expect(code(write('nan.bin', nan))).toBe('NON_FINITE');
    expect(code(join(tmp, 'missing.bin'))).toBe('READ');
    expect(catchError(() => loadCheckpoint(join(tmp, 'short.bin')))?.message).toMatch(/short\.bin.*truncated/);
  });

  it('rejects tokenizer files that are cut, or hold another number of tokens', () => {
    const code = (bytes: Uint8Array, vocab = 512) => (catchError(() => parseTokenizer(bytes, vocab)) as ModelFormatError).formatCode;
    expect(code(tokenizerBytes.subarray(0, tokenizerBytes.length - 1))).toBe('TRUNCATED');
    expect(code(tokenizerBytes, 513)).toBe('TRUNCATED');
    expect(code(tokenizerBytes, 511)).toBe('TRAILING');
    expect(code(modelBytes)).toBe('HEADER');
    const p = join(tmp, 'tok-cut.bin');
    writeFileSync(p, tokenizerBytes.subarray(0, 100));
    expect(catchError(() => loadTokenizer(p, 512))?.message).toMatch(/tok-cut\.bin: truncated/);
  });
});

describe('tokenizer', () => {
  it('encodes the greedy story as llama2.c does and decodes it back', () => {
    const ids = tok.encode('Once upon a time, there was a little girl named Lily.');
    expect(ids.slice(0, 5)).toEqual([BOS, 403, 407, 261, 378]); // <s> " Once" " upon" " a" " time"
    expect(tok.pieces[403]).toBe(' Once');
    expect(tok.decode(ids)).toBe('Once upon a time, there was a little girl named Lily.');
  });

  it('uses byte tokens for bytes without a piece: <0x0A> for a newline, UTF-8 bytes for a snowman', () => {
    const ids = tok.encode('a\nb');
    expect(ids).toContain(3 + 0x0a);
    expect(tok.pieces[3 + 0x0a]).toBe('<0x0A>');
    expect(tok.decode(ids)).toBe('a\nb');
    const snow = tok.encode('\u2603');
    expect(snow.slice(2)).toEqual([3 + 0xe2, 3 + 0x98, 3 + 0x83]);
    expect(tok.decode(snow)).toBe('\u2603');
  });

  it('round-trips random ASCII strings (printable and control characters)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 60 }), fc.string({ unit: 'binary-ascii', maxLength: 40 })), (s) => {
        expect(tok.decode(tok.encode(s))).toBe(s);
      }),
      { numRuns: 300 },
    );
  });

  it('matches a naive rescanning merge loop, and leaves no adjacent pair that is a piece', () => {
    const pieceSet = new Set(tok.pieces);
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom(...'aeiou tnsrhl.,!\'"LTO'), maxLength: 50 }), (s) => {
        const ids = tok.encode(s);
        expect(ids).toEqual(naiveEncode(tok, s));
        for (let i = 1; i + 1 < ids.length; i++) expect(pieceSet.has(tok.pieces[ids[i]!]! + tok.pieces[ids[i + 1]!]!)).toBe(false);
      }),
      { numRuns: 150 },
    );
  });
});

describe('forward pass', () => {
  const prompt = [BOS, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298];

  it('prefill logits equal an independent float64 forward pass', async () => {
    const expected = float64Logits(modelBytes, prompt);
    const got = (await llama.prefill(prompt, denseAttention(backend))).logits;
    const V = model.config.vocabSize;
    expect(maxLogitError(expected, got, V)).toBeLessThan(2e-5);
    // The same pass with its matmuls on the wasm kernel (f32 sums).
    expect(maxLogitError(expected, (await onWasm(model).prefill(prompt, denseAttention(backend))).logits, V)).toBeLessThan(2e-5);
    // The prompt is "Once upon a time, there was a little g"; the greedy next token is "ir".
    expect(tok.decode(prompt)).toBe('Once upon a time, there was a little g');
    expect(tok.pieces[argmax(expected[prompt.length - 1]!)]).toBe('ir');
  });

  it('decode with the KV cache gives the same logits as prefill, token by token', async () => {
    const expected = float64Logits(modelBytes, prompt);
    const pre = await llama.prefill(prompt.slice(0, 3), denseAttention(backend));
    for (let t = 3; t < prompt.length; t++) {
      const row = llama.decodeStep(pre.cache, prompt[t]!);
      let err = 0;
      row.forEach((x, j) => (err = Math.max(err, Math.abs(x - expected[t]![j]!))));
      expect(err).toBeLessThan(2e-5);
    }
    expect(pre.cache.length).toBe(prompt.length);
  });

  it('greedy decoding from BOS tells the known story', async () => {
    const g = await generate(llama, [BOS], tsaAttention(backend, [2, 3], options(0.005)), { steps: 40, temperature: 0, rng: new Rng(1) });
    expect(tok.decode([BOS, ...g.tokens]).startsWith(GREEDY_STORY)).toBe(true);
  });

  it('seeded temperature sampling is reproducible and follows the softmax', async () => {
    const run = (seed: number) => generate(llama, [BOS], denseAttention(backend), { steps: 20, temperature: 1, rng: new Rng(seed) });
    expect((await run(5)).tokens).toEqual((await run(5)).tokens);
    const rng = new Rng(9);
    const logits = Float32Array.of(0, Math.log(3), -Infinity);
    let ones = 0;
    for (let i = 0; i < 4000; i++) {
      const s = sample(logits, 1, rng);
      expect(s).not.toBe(2);
      if (s === 1) ones++;
    }
    expect(ones / 4000).toBeGreaterThan(0.72);
    expect(ones / 4000).toBeLessThan(0.78);
  });
});

describe('teacher forcing (prefill and a known continuation in one pass)', () => {
  const text = () => tok.encode(FROG_KING.text).slice(0, 180);

  it('equals prefill then dense decode step by step, resumed runs equal whole ones, on both matmuls', async () => {
    const tokens = text();
    const P = 150;
    const V = model.config.vocabSize;
    const pre = await llama.prefill(tokens.slice(0, P), tsaAttention(backend, [2, 3], options(0.05)));
    const expected = [Float64Array.from(pre.logits.subarray((P - 1) * V))];
    for (let t = P; t + 1 < tokens.length; t++) expected.push(Float64Array.from(llama.decodeStep(pre.cache, tokens[t]!)));
    for (const runtime of [llama, onWasm(model)]) {
      const dense = await runtime.teacherForce(tokens, P, denseAttention(backend), { keepAt: 2 });
      const tsa = await runtime.teacherForce(tokens, P, tsaAttention(backend, [2, 3], options(0.05)));
      expect(tsa.logits.length).toBe((tokens.length - P) * V);
      // Continuation attention sums in f32 (matmul) where decode sums in float64.
      expect(maxLogitError(expected, tsa.logits, V)).toBeLessThan(5e-5);
      expect(tsa.layers.map((l) => l.mode)).toEqual(['dense', 'dense', 'sparse', 'sparse', 'dense']);
      const resumed = await runtime.teacherForce(tokens, P, tsaAttention(backend, [2, 3], options(0.05)), { start: dense.kept });
      expect(resumed.logits).toEqual(tsa.logits);
      expect(resumed.layers.map((l) => l.layer)).toEqual([2, 3, 4]);
    }
    await expect(llama.teacherForce(tokens, P, tsaAttention(backend, [1, 3], options(0.05)), { start: (await llama.teacherForce(tokens, P, denseAttention(backend), { keepAt: 2 })).kept })).rejects.toThrow(/cannot resume/);
    await expect(llama.teacherForce(tokens, tokens.length, denseAttention(backend))).rejects.toThrow(TsaInputError);
  });
});

describe('real documents and captured attention', () => {
  it('documents are cut to the text length; a shorter one is used whole with its prefill shortened; too short is an error', async () => {
    const s = { ...DEFAULT_QUALITY_SETTINGS, textLength: 200, prefillLength: 150 };
    const long = { name: 'long', text: FROG_KING.text };
    const short = { name: 'short', text: FROG_KING.text.slice(0, 250) };
    const texts = await buildTexts(llama, tok, backend, { ...s, documents: [long, short] });
    const n = tok.encode(short.text).length;
    expect(n).toBeLessThan(200);
    expect(texts.map((t) => [t.tokens.length, t.prefill])).toEqual([[200, 150], [n, 150 - (200 - n)]]);
    expect(texts[0]!.tokens).toEqual(tok.encode(FROG_KING.text).slice(0, 200));
    await expect(buildTexts(llama, tok, backend, { ...s, documents: [{ name: 'tiny', text: 'Once.' }] })).rejects.toThrow(/'tiny' has \d+ tokens: too short/);
  });

  it('settings by context: the library defaults from 2048 tokens on, the scaled ones below', () => {
    expect(tsaDefaultsFor(4096)).toMatchObject({ window: 128, minTokens: 1024, poolKernel: 7 });
    expect(tsaDefaultsFor(512)).toMatchObject({ window: 32, minTokens: 64, poolKernel: 7 });
    expect(settingsForContext(4096)).toMatchObject({ textLength: 4096, prefillLength: 3584, taus: [0.005, 0.01, 0.02] });
    expect(settingsForContext(512)).toMatchObject({ textLength: 512, prefillLength: 384, taus: [0.005, 0.01, 0.02, 0.05] });
  });

  it('captures Q, K (after RoPE) and V of a layer in the library layouts, as the layer sees them', async () => {
    const tokens = tok.encode(FROG_KING.text);
    const input = await captureAttention(llama, tok, backend, FROG_KING.text, 3);
    const c = model.config;
    expect(input).toMatchObject({ heads: c.heads, kvHeads: c.kvHeads, headDim: c.headDim, seqLen: Math.min(tokens.length, c.seqLen) });
    expect(input.q.length).toBe(c.heads * input.seqLen * c.headDim);
    // Dense attention on the captured input is what layer 3 computed: replaying it through the plan gives dense logits.
    const seen: Float32Array[] = [];
    const probe = { ...denseAttention(backend), attend: async (l: number, x: typeof input) => (l === 3 && seen.push(x.k), denseAttention(backend).attend(l, x)) };
    await llama.prefill(tokens.slice(0, input.seqLen), probe);
    expect(input.k).toEqual(seen[0]);
    await expect(benchInputFromModel({ model: MODEL_PATH, tokenizer: TOKENIZER_PATH }, backend)).rejects.toThrow(/needs --text, --layer/);
    await expect(captureAttention(llama, tok, backend, 'x', 5)).rejects.toThrow(/layers 0\.\.4/);
    // tsa bench --inputs model takes the shape from the model: shape flags with it are an error (before any backend starts).
    for (const flag of [['--heads', '4'], ['--kv-heads=1'], ['--head-dim', '64'], ['--lengths', '4096']]) {
      await expect(runBenchCommand(['--inputs', 'model', ...flag])).rejects.toThrow(/takes its shape and length from the model/);
    }
    await expect(runBenchCommand(['--inputs', 'model,structured'])).rejects.toThrow(/or model alone/);
  });
});

describe('sotu5M (context 4096, GQA 4/2 heads of 64)', () => {
  let sotuBytes: Uint8Array;
  let sotu: LlamaModel;
  let sotuTok: Tokenizer;

  beforeAll(() => {
    sotuBytes = new Uint8Array(readFileSync(SOTU_PATH));
    sotu = parseCheckpoint(sotuBytes, SOTU_PATH);
    sotuTok = loadTokenizer(SOTU_TOKENIZER_PATH, sotu.config.vocabSize);
  });

  it('reads the header: dim 256, 6 layers, 4 heads, 2 KV heads, hidden 704, vocab 4096, context 4096', () => {
    expect(sotu.config).toEqual({ dim: 256, hiddenDim: 704, layers: 6, heads: 4, kvHeads: 2, vocabSize: 4096, seqLen: 4096, headDim: 64, sharedClassifier: true });
  });

  it('prefill logits (plain loops and wasm matmul) and decode equal an independent float64 forward pass', async () => {
    const prompt = sotuTok.encode('Fellow-Citizens of the Senate and House of Representatives:').slice(0, 12);
    expect(prompt.length).toBe(12);
    const expected = float64Logits(sotuBytes, prompt);
    const V = sotu.config.vocabSize;
    const plain = new Llama(sotu);
    expect(maxLogitError(expected, (await plain.prefill(prompt, denseAttention(backend))).logits, V)).toBeLessThan(2e-5);
    expect(maxLogitError(expected, (await onWasm(sotu).prefill(prompt, denseAttention(backend))).logits, V)).toBeLessThan(5e-5);
    const pre = await plain.prefill(prompt.slice(0, 6), denseAttention(backend));
    for (let t = 6; t < prompt.length; t++) expect(maxLogitError([expected[t]!], plain.decodeStep(pre.cache, prompt[t]!), V)).toBeLessThan(2e-5);
  });

  it('its tokenizer matches the naive merge loop and round-trips text', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom(...'aeiou tnsrhl.,;:-\'"\nTGCFS0123'), maxLength: 60 }), (s) => {
        const ids = sotuTok.encode(s);
        expect(ids).toEqual(naiveEncode(sotuTok, s));
        expect(sotuTok.decode(ids)).toBe(s);
      }),
      { numRuns: 60 },
    );
  });
});

describe('token-sparse prefill in the model', () => {
  const text = () => tok.encode(FROG_KING.text).slice(0, 200);

  it('TSA at tau = 0, and TSA on a prompt too short to select from, equal dense prefill exactly', async () => {
    const dense = await llama.prefill(text(), denseAttention(backend));
    const tau0 = await llama.prefill(text(), tsaAttention(backend, [0, 1, 2, 3, 4], options(0)));
    expect(tau0.logits).toEqual(dense.logits);
    expect(tau0.layers.every((l) => l.mode === 'dense')).toBe(true);
    const short = text().slice(0, 96); // L <= minTokens + W
    const a = await llama.prefill(short, tsaAttention(backend, [0, 1, 2, 3, 4], options(0.05)));
    expect(a.logits).toEqual((await llama.prefill(short, denseAttention(backend))).logits);
  });

  it('TSA engages on a long prompt, prunes in the sparse layers only, and stays close to dense', async () => {
    const dense = await llama.prefill(text(), denseAttention(backend));
    const sparse = await llama.prefill(text(), tsaAttention(backend, [2, 3], options(0.05)));
    expect(sparse.layers.map((l) => l.mode)).toEqual(['dense', 'dense', 'sparse', 'sparse', 'dense']);
    for (const l of [2, 3]) expect(sparse.layers[l]!.keptFraction).toBeLessThan(1);
    const V = model.config.vocabSize;
    const last = (x: Float32Array) => x.subarray(x.length - V);
    let diff = 0;
    last(dense.logits).forEach((x, j) => (diff = Math.max(diff, Math.abs(x - last(sparse.logits)[j]!))));
    expect(diff).toBeGreaterThan(0);
    expect(diff).toBeLessThan(1);
  });

  it('baselines keeping every position equal dense exactly; random indices are valid selections', async () => {
    const dense = await llama.prefill(text(), denseAttention(backend));
    expect((await llama.prefill(text(), fixedRatioAttention(backend, [2, 3], options(0.01), 1))).logits).toEqual(dense.logits);
    expect((await llama.prefill(text(), randomAttention(backend, [2, 3], options(0.01), 1, 3))).logits).toEqual(dense.logits);
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 60 }), fc.integer({ min: 1, max: 8 }), fc.integer(), (L, W, seed) => {
        fc.pre(W < L);
        const keep = 1 + (Math.abs(seed) % (L - W));
        const idx = randomIndices(new Rng(seed), 2, L, W, keep);
        for (let h = 0; h < 2; h++) {
          const row = [...idx.subarray(h * (keep + W), (h + 1) * (keep + W))];
          expect(row.every((t, i) => i === 0 || t > row[i - 1]!)).toBe(true);
          expect(row.slice(keep)).toEqual(Array.from({ length: W }, (_, w) => L - W + w));
          expect(row[keep - 1]!).toBeLessThan(L - W);
        }
      }),
    );
  });
});

describe('layer selection by drift', () => {
  const residualStreams = fc
    .record({ layers: fc.integer({ min: 1, max: 6 }), L: fc.integer({ min: 1, max: 5 }), dim: fc.integer({ min: 1, max: 6 }), seed: fc.integer() })
    .map(({ layers, L, dim, seed }) => {
      const rng = new Rng(seed);
      // Entries of magnitude >= 1, so the eps in the drift denominator is negligible.
      const row = () => rng.fillNormal(new Float32Array(L * dim)).map((v) => v + Math.sign(v));
      return { dim, h: Array.from({ length: layers + 1 }, row) };
    });

  it('R_l is scale-invariant, 0 for an identity layer and |a| for a layer that scales by 1 + a', () => {
    const near = (x: number, y: number) => expect(Math.abs(x - y)).toBeLessThanOrEqual(1e-4 * (1 + Math.abs(y)));
    fc.assert(
      fc.property(residualStreams, fc.double({ min: 0.1, max: 10, noNaN: true }), fc.double({ min: -0.9, max: 3, noNaN: true }), ({ dim, h }, c, a) => {
        const r = driftFromResiduals(h, dim);
        const scaled = driftFromResiduals(h.map((x) => x.map((v) => v * c)), dim);
        r.forEach((x, l) => near(scaled[l]!, x));
        const withIdentity = [h[0]!, h[0]!.slice(), ...h.slice(1)];
        expect(driftFromResiduals(withIdentity, dim)[0]).toBe(0);
        expect(rankByDrift(driftFromResiduals(withIdentity, dim))[0]).toBe(0);
        const grown = [h[0]!, h[0]!.map((v) => v * (1 + a))];
        near(driftFromResiduals(grown, dim)[0]!, Math.abs(a));
      }),
      { numRuns: 60 },
    );
  });

  it('chooses the round-half-down share of lowest-drift layers, nested as delta grows', () => {
    expect([0, 0.1, 0.3, 0.5, 0.6, 0.7, 1].map((d) => sparseLayerCount(5, d))).toEqual([0, 0, 1, 2, 3, 3, 5]);
    fc.assert(
      fc.property(fc.array(fc.double({ min: 0, max: 2, noNaN: true }), { minLength: 1, maxLength: 12 }), fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true }), (drift, d1, d2) => {
        const [lo, hi] = d1 <= d2 ? [d1, d2] : [d2, d1];
        const small = chooseSparseLayers(drift, lo);
        const big = chooseSparseLayers(drift, hi);
        expect(big.length).toBe(sparseLayerCount(drift.length, hi));
        expect(small.every((l) => big.includes(l))).toBe(true);
        const rest = drift.map((_, l) => l).filter((l) => !big.includes(l));
        for (const s of big) for (const r of rest) expect(drift[s]!).toBeLessThanOrEqual(drift[r]!);
        expect(rankByDrift(drift).slice().sort((a, b) => a - b)).toEqual(drift.map((_, l) => l));
      }),
    );
    expect(parseLayerList('3, 2,3', 5)).toEqual([2, 3]);
    expect(() => parseLayerList('5', 5)).toThrow(/layer index in \[0, 5\)/);
  });

  it('on stories260K the default profile picks layers 2 and 3; the embedding layer drifts most', async () => {
    const drift = await defaultDriftProfile(llama, backend);
    expect(drift).toHaveLength(5);
    expect(drift.every((r) => Number.isFinite(r) && r > 0)).toBe(true);
    expect(rankByDrift(drift).at(-1)).toBe(0);
    expect(chooseSparseLayers(drift, 0.5)).toEqual([2, 3]);
  });
});

function catchError(f: () => unknown): Error | undefined {
  try {
    f();
  } catch (e) {
    return e as Error;
  }
  return undefined;
}
