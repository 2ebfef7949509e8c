/**
 * The sentencepiece-style BPE tokenizer of llama2.c (tok512.bin).
 *
 * File: int32 maxTokenLength, then per token: float32 merge score, int32 byte
 * length, the piece's bytes. The token count is not stored; it is the model's
 * vocabulary size. Token 0 is <unk>, 1 is BOS, 2 is EOS, 3..258 are the byte
 * tokens <0x00>..<0xFF>; a leading space in a piece stands for sentencepiece's
 * word boundary.
 *
 * Pieces are kept as latin1 strings (one char per byte), so concatenation and
 * lookup are exact on bytes; text is UTF-8 on the way in and out.
 */
import { ModelFormatError, readBytes } from './checkpoint.js';

export const BOS = 1;
export const EOS = 2;
/** Byte token of byte b is BYTE_BASE + b (llama2.c's byte fallback). */
const BYTE_BASE = 3;
/** A piece that stands for one raw byte, e.g. <0x0A>. */
const BYTE_PIECE = /^<0x([0-9A-Fa-f]{2})>$/;

const utf8 = new TextEncoder();

export class Tokenizer {
  /** token id -> piece (latin1 bytes). */
  readonly pieces: string[];
  readonly scores: Float32Array;
  private readonly ids = new Map<string, number>();
  /** token id -> the byte a byte piece stands for, or -1. */
  private readonly byteOf: Int16Array;

  constructor(pieces: string[], scores: Float32Array) {
    this.pieces = pieces;
    this.scores = scores;
    this.byteOf = Int16Array.from(pieces, (p) => {
      const m = BYTE_PIECE.exec(p);
      return m ? parseInt(m[1]!, 16) : -1;
    });
    // The first id of a piece wins, as llama2.c's sorted-vocab lookup does for unique pieces.
    pieces.forEach((p, i) => {
      if (!this.ids.has(p)) this.ids.set(p, i);
    });
  }

  get vocabSize(): number {
    return this.pieces.length;
  }

  /**
   * encode: BOS (when `bos`), then llama2.c's algorithm: a dummy-prefix space token when the
   * text is not empty, one token per UTF-8 code point (byte tokens when the code point is not a
   * piece), then repeatedly merge the adjacent pair whose concatenation is the piece with the
   * highest score (the leftmost pair on ties) until no pair is a piece.
   */
  encode(text: string, bos = true): number[] {
    const bytes = utf8.encode(text);
    const tokens: number[] = [];
    if (bos) tokens.push(BOS);
    if (bytes.length > 0) tokens.push(this.lookup(' '));
    for (let i = 0; i < bytes.length; ) {
      let n = 1;
      while (n < 4 && i + n < bytes.length && (bytes[i + n]! & 0xc0) === 0x80) n++;
      const id = this.ids.get(latin1(bytes, i, i + n));
      if (id !== undefined) tokens.push(id);
      else for (let j = 0; j < n; j++) tokens.push(BYTE_BASE + bytes[i + j]!);
      i += n;
    }
    return this.mergePairs(tokens);
  }

  /**
   * BPE merge loop: repeatedly merges the adjacent pair whose concatenation is the best-scoring
   * piece, the leftmost on ties (llama2.c's rule), in O(n log n): the tokens form a linked list
   * (node = original index, so index order is left-to-right order) and candidate pairs wait in a
   * heap ordered by (score desc, left node asc); entries made stale by a merge are skipped.
   */
  private mergePairs(tokens: number[]): number[] {
    const n = tokens.length;
    const tok = Int32Array.from(tokens);
    const next = Int32Array.from({ length: n }, (_, i) => (i + 1 < n ? i + 1 : -1));
    const prev = Int32Array.from({ length: n }, (_, i) => i - 1);
    const version = new Int32Array(n);
    const heap = new PairHeap();
    const push = (i: number): void => {
      version[i]!++;
      const j = next[i]!;
      if (j < 0) return;
      const id = this.ids.get(this.pieces[tok[i]!]! + this.pieces[tok[j]!]!);
      if (id !== undefined) heap.push({ score: this.scores[id]!, left: i, version: version[i]!, id });
    };
    for (let i = 0; i + 1 < n; i++) push(i);
    for (let e = heap.pop(); e; e = heap.pop()) {
      const i = e.left;
      if (e.version !== version[i]) continue;
      const j = next[i]!;
      tok[i] = e.id;
      next[i] = next[j]!;
      if (next[j]! >= 0) prev[next[j]!] = i;
      version[j]!++;
      if (prev[i]! >= 0) push(prev[i]!);
      push(i);
    }
    const out: number[] = [];
    for (let i = n > 0 ? 0 : -1; i >= 0; i = next[i]!) out.push(tok[i]!);
    return out;
  }

  /**
   * decode: concatenates pieces as UTF-8 bytes. BOS, EOS and <unk> produce nothing; the piece
   * right after BOS loses its leading space (the dummy prefix); byte tokens produce their byte.
   */
  decode(tokens: readonly number[]): string {
    const stream = this.decoder();
    return tokens.map((t) => stream.push(t)).join('') + stream.flush();
  }

  /** A streaming decoder for printing tokens as they are generated (multi-byte characters wait for their last byte). */
  decoder(): { push(token: number): string; flush(): string } {
    const td = new TextDecoder('utf-8');
    let prev = -1;
    return {
      push: (token: number): string => {
        const bytes = this.pieceBytes(prev, token);
        prev = token;
        return td.decode(bytes, { stream: true });
      },
      flush: (): string => td.decode(),
    };
  }

  /** The bytes token `token` contributes after token `prev`. */
  pieceBytes(prev: number, token: number): Uint8Array {
    if (!Number.isInteger(token) || token < 0 || token >= this.pieces.length) {
      throw new RangeError(`token id ${token} is outside the vocabulary [0, ${this.pieces.length})`);
    }
    if (token <= EOS) return new Uint8Array(0);
    if (this.byteOf[token]! >= 0) return Uint8Array.of(this.byteOf[token]!);
    let piece = this.pieces[token]!;
    if (prev === BOS && piece.startsWith(' ')) piece = piece.slice(1);
    return Uint8Array.from(piece, (c) => c.charCodeAt(0));
  }

  private lookup(piece: string): number {
    const id = this.ids.get(piece);
    if (id === undefined) throw new ModelFormatError(`tokenizer has no piece ${JSON.stringify(piece)}`, 'HEADER');
    return id;
  }
}

function latin1(bytes: Uint8Array, from: number, to: number): string {
  let s = '';
  for (let i = from; i < to; i++) s += String.fromCharCode(bytes[i]!);
  return s;
}

/**
 * Parses a tokenizer file of exactly `vocabSize` tokens. Throws `ModelFormatError` when a
 * record runs past the end, a length is negative or above the file's maxTokenLength, or
 * bytes remain after the last token (a vocabulary of another size).
 */
export function parseTokenizer(bytes: Uint8Array, vocabSize: number, source = 'tokenizer'): Tokenizer {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.byteLength < 4) throw new ModelFormatError(`${source}: ${bytes.byteLength} bytes, too short for a tokenizer`, 'TRUNCATED');
  const maxLen = view.getInt32(0, true);
  if (!(maxLen > 0 && maxLen <= 1024)) {
    throw new ModelFormatError(`${source}: not a llama2.c tokenizer: max token length ${maxLen}, expected 1..1024`, 'HEADER');
  }
  const pieces: string[] = [];
  const scores = new Float32Array(vocabSize);
  let o = 4;
  for (let i = 0; i < vocabSize; i++) {
    if (o + 8 > bytes.byteLength) {
      throw new ModelFormatError(`${source}: truncated: token ${i} of ${vocabSize} starts at byte ${o}, the file has ${bytes.byteLength}`, 'TRUNCATED');
    }
    scores[i] = view.getFloat32(o, true);
    const n = view.getInt32(o + 4, true);
    if (!Number.isFinite(scores[i]!) || n < 0 || n > maxLen) {
      throw new ModelFormatError(
        `${source}: token ${i}: score ${scores[i]}, length ${n}; expected a finite score and a length in [0, ${maxLen}]`,
        'HEADER',
      );
    }
    if (o + 8 + n > bytes.byteLength) {
      throw new ModelFormatError(`${source}: truncated inside token ${i} of ${vocabSize}`, 'TRUNCATED');
    }
    pieces.push(latin1(bytes, o + 8, o + 8 + n));
    o += 8 + n;
  }
  if (o !== bytes.byteLength) {
    throw new ModelFormatError(
      `${source}: ${bytes.byteLength - o} bytes after token ${vocabSize - 1}: this tokenizer does not have the model's ${vocabSize} tokens`,
      'TRAILING',
    );
  }
  return new Tokenizer(pieces, scores);
}

/** Reads and parses a tokenizer file for a model of `vocabSize` tokens. */
export function loadTokenizer(path: string, vocabSize: number): Tokenizer {
  return parseTokenizer(readBytes(path, 'tokenizer'), vocabSize, path);
}

interface PairEntry {
  score: number;
  left: number;
  version: number;
  id: number;
}

/** A binary max-heap of merge candidates: higher score first, then the lower left node. */
class PairHeap {
  private readonly items: PairEntry[] = [];

  private above(a: PairEntry, b: PairEntry): boolean {
    return a.score > b.score || (a.score === b.score && a.left < b.left);
  }

  push(e: PairEntry): void {
    const h = this.items;
    h.push(e);
    for (let i = h.length - 1; i > 0; ) {
      const p = (i - 1) >> 1;
      if (!this.above(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  pop(): PairEntry | undefined {
    const h = this.items;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      h[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.above(h[l]!, h[m]!)) m = l;
        if (r < h.length && this.above(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}
