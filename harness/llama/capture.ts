/**
 * Real attention inputs for benchmarks: Q, K (after RoPE) and V of one layer of a llama2.c model
 * prefilling a real text densely, in the library's layouts (Q [H][L][D], K/V [Hkv][L][D]), the
 * shape taken from the model and L from the text (cut to the model's context).
 */
import { TsaInputError, type AttentionInput, type Backend } from '../index.js';
import { denseAttention } from './attention.js';
import type { Llama, PrefillAttention } from './llama.js';
import { int, loadModel, readText } from './options.js';
import type { Tokenizer } from './tokenizer.js';

/** A dense plan that keeps the attention input of layer `layer`. */
function recordLayer(backend: Backend, layer: number, into: { input?: AttentionInput }): PrefillAttention {
  const dense = denseAttention(backend);
  return {
    label: `dense (capturing layer ${layer})`,
    selects: () => false,
    attend(l, input) {
      if (l === layer) into.input = input;
      return dense.attend(l, input);
    },
  };
}

/** The attention input of `layer` when `llama` prefills `text` (BOS first, at most its context) densely on `backend`. */
export async function captureAttention(llama: Llama, tokenizer: Tokenizer, backend: Backend, text: string, layer: number): Promise<AttentionInput> {
  const { layers, seqLen } = llama.config;
  if (!(Number.isInteger(layer) && layer >= 0 && layer < layers)) throw new TsaInputError(`layer ${layer}: the model has layers 0..${layers - 1}`, 'OPTION');
  const tokens = tokenizer.encode(text).slice(0, seqLen);
  const into: { input?: AttentionInput } = {};
  await llama.prefill(tokens, recordLayer(backend, layer, into));
  return into.input!;
}

/** `tsa bench --inputs model`: loads --model/--tokenizer, reads --text and captures --layer's input. */
export async function benchInputFromModel(
  values: { model?: string; tokenizer?: string; text?: string; layer?: string; threads?: string },
  backend: Backend,
): Promise<AttentionInput> {
  const missing = (['model', 'tokenizer', 'text', 'layer'] as const).filter((k) => values[k] === undefined);
  if (missing.length) {
    throw new TsaInputError(`--inputs model needs ${missing.map((k) => `--${k}`).join(', ')} (a llama2.c model, its tokenizer, a text file and a layer index)`, 'OPTION');
  }
  const text = readText(values.text!).text;
  const layer = int('layer', values.layer!, 0);
  const { llama, tokenizer, dispose } = await loadModel({ model: values.model!, tokenizer: values.tokenizer! }, values.threads);
  try {
    return await captureAttention(llama, tokenizer, backend, text, layer);
  } finally {
    await dispose();
  }
}
