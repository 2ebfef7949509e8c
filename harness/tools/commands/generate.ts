/**
 * `tsa generate`: a story from a llama2.c model, the prompt prefilled with token-sparse
 * attention in the sparse layers and the rest decoded densely (TSA's sparse prefill, dense decode).
 */
import { Rng } from '../../core/generators.js';
import { tsaAttention } from '../../llama/attention.js';
import { checkBackendNames, parseCommandArgs } from '../args.js';
import { chooseBackend, int, loadModel, MODEL_FLAGS, MODEL_HELP, num, requireFiles, sparseLayersFrom, TSA_FLAGS, TSA_HELP } from '../../llama/options.js';
import { generate } from '../../llama/sampling.js';

const HELP = `usage: tsa generate --model M --tokenizer T [--prompt "..."] [options]

Prints a story: the prompt (default: empty, the story starts from BOS) is prefilled
with Token Sparse Attention in the sparse layers, then tokens are sampled one by one
with dense attention over the KV cache; stops at --steps or when the model ends the story.

${MODEL_HELP}
  --prompt TEXT           text to continue (default: none)
  --steps 256             new tokens at most
  --temperature 0         0 = greedy; otherwise softmax(logits / T)
  --seed 1                sampling seed
  --coverage 0.005        tau
${TSA_HELP}`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs({
    args: argv,
    options: {
      ...MODEL_FLAGS,
      ...TSA_FLAGS,
      prompt: { type: 'string', default: '' },
      steps: { type: 'string', default: '256' },
      temperature: { type: 'string', default: '0' },
      seed: { type: 'string', default: '1' },
      coverage: { type: 'string', default: '0.005' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  checkBackendNames(values.backend);
  const { llama, tokenizer } = loadModel(requireFiles(values.model, values.tokenizer));
  const options = {
    coverage: num('coverage', values.coverage, 0, 0.999),
    window: int('window', values.window, 1),
    minTokens: int('min-tokens', values['min-tokens'], 1),
    poolKernel: int('pool-kernel', values['pool-kernel'], 1),
  };
  const steps = int('steps', values.steps, 1);
  const temperature = num('temperature', values.temperature, 0);
  const seed = int('seed', values.seed, 0);
  const backend = await chooseBackend(values.backend, values.threads);
  try {
    const sparse = await sparseLayersFrom(values, llama, backend);
    const prompt = tokenizer.encode(values.prompt);
    const c = llama.config;
    if (prompt.length > c.seqLen) {
      console.error(`tsa generate: the prompt is ${prompt.length} tokens; the model has ${c.seqLen} positions`);
      return 2;
    }
    console.error(`sparse layers: ${sparse.layers.join(',') || 'none'} (${sparse.how})`);
    console.error(`tsa: tau ${options.coverage}, window ${options.window}, minTokens ${options.minTokens}, pool ${options.poolKernel}; prompt ${prompt.length} tokens`);

    const out = tokenizer.decoder();
    process.stdout.write(prompt.map((t) => out.push(t)).join(''));
    const g = await generate(llama, prompt, tsaAttention(backend, sparse.layers, options), {
      steps,
      temperature,
      rng: new Rng(seed),
      onToken: (t) => process.stdout.write(out.push(t)),
    });
    process.stdout.write(out.flush() + '\n');

    for (const info of g.prefillLayers.filter((i) => sparse.layers.includes(i.layer))) {
      console.error(`prefill layer ${info.layer}: ${info.mode}, kept ${(100 * info.keptFraction).toFixed(1)}% (${info.detail})`);
    }
    const tps = g.tokens.length / (g.decodeMs / 1000);
    console.error(`prefill ${prompt.length} tokens in ${g.prefillMs.toFixed(0)} ms; ${g.tokens.length} tokens decoded at ${tps.toFixed(0)} tokens/s`);
  } finally {
    await backend.dispose();
  }
  return 0;
}
