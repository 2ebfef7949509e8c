/**
 * The XAttention rows of the quality report (`tsa eval`): XAttention alone, random blocks at its
 * selected count, and XAttention on TSA's rows, on a tiny prefix of stories260K; and the
 * random-blocks mask itself.
 */
import { join, resolve } from 'node:path';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { createReferenceBackend, Rng, TsaInputError, type Backend } from '../harness/index.js';
import { randomBlockMask } from '../harness/llama/block-attention.js';
import { loadCheckpoint } from '../harness/llama/checkpoint.js';
import { Llama } from '../harness/llama/llama.js';
import { DEFAULT_QUALITY_SETTINGS, runQualityEval, settingsForContext, type QualitySettings } from '../harness/llama/quality.js';
import { FROG_KING } from '../harness/llama/texts.js';
import { loadTokenizer, type Tokenizer } from '../harness/llama/tokenizer.js';
import { REPO_ROOT } from './shared/golden-dir.js';

const MODELS = process.env.TSA_MODELS_DIR ? resolve(process.env.TSA_MODELS_DIR) : resolve(REPO_ROOT, '../shared/models');

let llama: Llama;
let tok: Tokenizer;
let backend: Backend;

beforeAll(() => {
  const model = loadCheckpoint(join(MODELS, 'stories260K.bin'));
  llama = new Llama(model);
  tok = loadTokenizer(join(MODELS, 'tok512.bin'), model.config.vocabSize);
  backend = createReferenceBackend();
});

describe('tsa eval: XAttention rows', () => {
  it('scales the block to a short context and keeps the library defaults from 2048 on', () => {
    expect(settingsForContext(512).xattention).toEqual({ method: 'xattention', blockSize: 16, stride: 4, threshold: 0.9 });
    expect(settingsForContext(4096).xattention).toEqual({ method: 'xattention', blockSize: 128, stride: 16, threshold: 0.9 });
  });

  it('reports xattn, random-blocks (same block counts) and tsa+xattn beside dense, tsa and the baselines', async () => {
    // One sampled story plus the fixture, 96 tokens, 80 prefilled: 5 block rows of 16.
    const s: QualitySettings = {
      ...DEFAULT_QUALITY_SETTINGS,
      taus: [0.05],
      window: 8,
      minTokens: 16,
      textLength: 96,
      prefillLength: 80,
      stories: 1,
      sparseLayers: [2, 3],
      driftText: { name: 'fixture', text: FROG_KING.text.slice(0, 200) },
      xattention: { method: 'xattention', blockSize: 16, stride: 4, threshold: 0.6 },
    };
    const r = await runQualityEval(llama, tok, backend, s);
    expect(r.records.map((x) => [x.tau, x.method])).toEqual([
      [0, 'xattn'],
      [0, 'random-blocks'],
      [0.05, 'tsa'],
      [0.05, 'fixed-ratio'],
      [0.05, 'random'],
      [0.05, 'tsa+xattn'],
    ]);
    const [xattn, random, tsa, fixed, randomTokens, composed] = r.records;
    for (const x of r.records) {
      expect(x.tokens).toBe(2 * 16);
      expect(Number.isFinite(x.nllDeltaPct)).toBe(true);
      expect(x.klDense).toBeGreaterThanOrEqual(0);
      expect(x.top1Agreement).toBeGreaterThanOrEqual(0);
      expect(x.top1Agreement).toBeLessThanOrEqual(1);
    }
    // XAttention alone keeps every token and (threshold 0.6) skips blocks; the diagonal (5 of 15) is always in.
    expect(xattn!.keptFraction).toBe(1);
    expect(xattn!.denseByRule).toBe(2 * 2);
    expect(xattn!.blockShare!).toBeLessThan(1);
    for (const share of xattn!.layerBlockShare!) expect(share).toBeGreaterThanOrEqual(5 / 15);
    // Random blocks: exactly XAttention's counts per text, layer and head, hence the same shares; other blocks, other logits.
    expect(random!.layerBlockShare).toEqual(xattn!.layerBlockShare);
    expect(random!.keptFraction).toBe(1);
    expect(random!.nll).not.toBe(xattn!.nll);
    for (const x of [tsa, fixed, randomTokens]) {
      expect(x!.blockShare).toBeNull();
      expect(x!.layerBlockShare).toBeNull();
    }
    // Composed: TSA's selection in the first sparse layer is the same input, so the same kept fraction there.
    expect(composed!.layerKeptFraction[0]).toBe(tsa!.layerKeptFraction[0]);
    expect(composed!.keptFraction).toBeLessThan(1);
    expect(composed!.layerBlockShare).toHaveLength(2);
    expect(composed!.blockShare!).toBeGreaterThan(0);
    expect(composed!.blockShare!).toBeLessThanOrEqual(1);
  });
});

describe('random block masks', () => {
  it('keep the diagonal, draw exactly the asked count below it, and are reproducible by seed', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 4 }), fc.integer(), fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 4, maxLength: 4 }), (nb, H, seed, u) => {
        const causal = (nb * (nb + 1)) / 2;
        const selected = Array.from({ length: H }, (_, h) => nb + Math.floor(u[h]! * (causal - nb + 1 - 1e-9)));
        const mask = randomBlockMask(new Rng(seed), H, nb, selected);
        expect(randomBlockMask(new Rng(seed), H, nb, selected)).toEqual(mask);
        for (let h = 0; h < H; h++) {
          let n = 0;
          for (let i = 0; i < nb; i++) {
            expect(mask[(h * nb + i) * nb + i]).toBe(1);
            for (let j = 0; j < nb; j++) {
              const x = mask[(h * nb + i) * nb + j]!;
              if (j > i) expect(x).toBe(0);
              n += x;
            }
          }
          expect(n).toBe(selected[h]);
        }
      }),
    );
  });

  it('reject counts below the diagonal or above the causal blocks', () => {
    expect(() => randomBlockMask(new Rng(1), 1, 4, [3])).toThrow(TsaInputError);
    expect(() => randomBlockMask(new Rng(1), 1, 4, [11])).toThrow(TsaInputError);
    expect(() => randomBlockMask(new Rng(1), 1, 4, [10])).not.toThrow();
  });
});
