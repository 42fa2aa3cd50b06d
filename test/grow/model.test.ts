/**
 * The pipelines through real causal LMs on the CPU (the bundled base; a fresh nano GPT-2 with room
 * for Evol-Instruct's long prompts): the generator adapter matches direct calls to generate(), stop
 * strings cut where they should, long prompts are refused with what to change, runs reproduce from
 * their seed, and no tensor is left behind.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, it, expect, beforeAll } from 'vitest';
import { useBackend } from '../helpers/backends.js';
import { loadModel } from '../../src/io/checkpoint.js';
import { loadTokenizer, type Tokenizer } from '../../src/data/tokenizer.js';
import { BUILTIN_TEMPLATES } from '../../src/data/template.js';
import { generate } from '../../src/train/generate.js';
import { loadDataset } from '../../src/data/dataset.js';
import {
  modelTextGenerator, selfInstruct, evolInstruct, parseSelfInstructOutput, seedTaskFromExample,
  type GrowCandidate, type GrowPrompt, type GrowSampling, type GrowGeneration, type SeedTask, type TextGenerator,
} from '../../src/grow/index.js';
import { CausalLM } from '../../models/causal_lm.js';
import { presetConfig, dims, type ModelConfig } from '../../models/config.js';
import { evolPrompt, type EvolOperation } from '../../src/grow/index.js';

let model: CausalLM;
let tokenizer: Tokenizer;
let seeds: SeedTask[];
const template = BUILTIN_TEMPLATES.chatml;

beforeAll(async () => {
  await useBackend('cpu');
  model = await loadModel('models/base');
  tokenizer = await loadTokenizer('models/base');
  seeds = (await loadDataset('demo/data/train.jsonl')).examples.slice(0, 24).map(seedTaskFromExample);
});

async function collect(run: AsyncIterable<GrowCandidate>): Promise<GrowCandidate[]> {
  const out: GrowCandidate[] = [];
  for await (const c of run) out.push(c);
  return out;
}

describe('grow through a real CausalLM (models/base, CPU)', () => {
  it('the generator is generate() on the prompt, cut at stop strings', async () => {
    const gen = modelTextGenerator(model, tokenizer, template);
    const text = 'The word happy in capitals is';
    const ref = await generate(model, tokenizer.encode(text).ids, { maxNewTokens: 20, doSample: false, stopTokens: [tokenizer.eosTokenId], tokenizer });
    const out = await gen({ format: 'completion', text }, { temperature: 0, topP: 1, maxNewTokens: 20, seed: 0 });
    expect(out.text).toBe(ref.text);
    expect(out.finish).toBe(ref.stopReason === 'max-new-tokens' ? 'length' : 'stop');
    // Sampled: the same draws as generate() with the same seed and warpers.
    const sampled = await generate(model, tokenizer.encode(text).ids, { maxNewTokens: 20, temperature: 0.7, topP: 0.5, seed: 9, stopTokens: [tokenizer.eosTokenId], tokenizer });
    expect((await gen({ format: 'completion', text }, { temperature: 0.7, topP: 0.5, maxNewTokens: 20, seed: 9 })).text).toBe(sampled.text);
    // A stop string taken from the middle of the greedy text ends generation there.
    const stop = ref.text.slice(6, 10);
    expect(stop.trim().length).toBeGreaterThan(0);
    const cut = await gen({ format: 'completion', text }, { temperature: 0, topP: 1, maxNewTokens: 20, seed: 0, stop: [stop] });
    expect(cut).toEqual({ text: ref.text.slice(0, ref.text.indexOf(stop)), finish: 'stop' });
    // Chat prompts go through the template.
    const chat = await gen({ format: 'chat', messages: [{ role: 'user', content: 'What is 2 plus 3?' }] }, { temperature: 0, topP: 1, maxNewTokens: 8, seed: 0 });
    expect(typeof chat.text).toBe('string');
    // A prompt longer than the model reads is refused, saying what to change.
    const reads = dims(model.config).maxPositions;
    await expect(gen({ format: 'completion', text: 'word '.repeat(reads + 40) }, { temperature: 0, topP: 1, maxNewTokens: 4, seed: 0 }))
      .rejects.toThrow(new RegExp(`the completion prompt has \\d+ tokens, and the model reads at most ${reads}: use a model with a longer context`));
  }, 120_000);

  it('Self-Instruct on the model: parses its real output, reproduces, leaks no tensors', async () => {
    const seen: Array<{ prompt: GrowPrompt; s: GrowSampling; out: GrowGeneration }> = [];
    const inner = modelTextGenerator(model, tokenizer, template);
    const spy: TextGenerator = async (prompt, s) => { const out = await inner(prompt, s); seen.push({ prompt, s, out }); return out; };
    const opts = {
      seedTasks: seeds, n: 2, maxPrompts: 3, promptFormat: 'completion' as const, modelName: 'models/base', seed: 4,
      instructionSampling: { maxNewTokens: 40 }, answerSampling: { maxNewTokens: 12 },
    };
    const before = tf.memory().numTensors;
    const run = selfInstruct({ ...opts, generator: spy });
    const got = await collect(run);
    expect(tf.memory().numTensors).toBe(before);
    expect(got.length).toBeGreaterThan(0);
    // The candidates are exactly the parse of what the model wrote for each instruction prompt.
    const instr = seen.filter((x) => x.prompt.format === 'completion' && x.prompt.text.startsWith('Come up with'));
    expect(instr.length).toBe(run.stats.prompts);
    const parsed = instr.map((x) => parseSelfInstructOutput(x.out.text, { format: 'completion', first: 9, finish: x.out.finish }));
    expect(got.filter((c) => c.verdict !== 'parse').map((c) => c.instruction)).toEqual(parsed.flatMap((p) => p.tasks).slice(0, got.filter((c) => c.verdict !== 'parse').length));
    expect(run.stats.malformed).toBe(got.filter((c) => c.verdict === 'parse').length);
    expect(run.stats.candidates).toBe(got.length);
    expect(run.stats.kept).toBe(got.filter((c) => c.kept).length);
    for (const c of got.filter((x) => x.row)) {
      expect(c.row!.model).toBe('models/base');
      expect(c.row!.parents).toHaveLength(8);
      expect(c.row!.messages[1].content).toBe(seen.find((x) => x.prompt.format === 'completion' && x.prompt.text.endsWith(`Task: ${c.instruction}\nOutput:`))!.out.text.trim());
    }
    // The same seed gives the same candidates, through the model built from model + tokenizer + template.
    const again = await collect(selfInstruct({ ...opts, model, tokenizer, template }));
    expect(again.map((c) => [c.verdict, c.instruction, c.answer])).toEqual(got.map((c) => [c.verdict, c.instruction, c.answer]));
  }, 300_000);

  it('Evol-Instruct refuses, naming the fix, when its prompt does not fit the model', async () => {
    // A fresh nano model (256 positions): Evol-Instruct's prompts are longer than that.
    const short = CausalLM.create(presetConfig('nano', { vocabSize: tokenizer.vocabSize }), { seed: 3 });
    const run = evolInstruct({ model: short, tokenizer, template, seedTasks: seeds, n: 1, promptFormat: 'completion' });
    await expect(collect(run)).rejects.toThrow(/tokens, and the model reads at most 256/);
    short.dispose();
  });

  it('Evol-Instruct through a CausalLM with room for its prompts (a fresh nano GPT-2 with 1024 positions)', async () => {
    const config = { ...presetConfig('nano', { vocabSize: tokenizer.vocabSize }), n_positions: 1024 } as ModelConfig;
    const long = CausalLM.create(config, { seed: 3 });
    try {
      const seen: GrowPrompt[] = [];
      const inner = modelTextGenerator(long, tokenizer, template);
      const spy: TextGenerator = async (p, s) => { seen.push(p); return inner(p, s); };
      const before = tf.memory().numTensors;
      const run = evolInstruct({
        generator: spy, seedTasks: seeds.slice(0, 3), n: 3, rounds: 1, modelName: 'nano-1024', promptFormat: 'chat',
        evolSampling: { maxNewTokens: 12 }, answerSampling: { maxNewTokens: 6 },
      });
      const got = await collect(run);
      expect(tf.memory().numTensors).toBe(before);
      // One rewrite per seed in the round, each prompt the paper's for its drawn operation on that seed.
      expect(got).toHaveLength(3);
      const rewrites = seen.filter((p) => p.format === 'chat' && p.messages[0].content.startsWith('I want you act as'));
      got.forEach((c, i) => {
        expect(c.parents).toEqual([seeds[i].id]);
        expect(rewrites[i]).toEqual({ format: 'chat', messages: [{ role: 'user', content: evolPrompt(c.operation as EvolOperation, seeds[i].instruction) }] });
        expect(c.decisions[0].filter).toBe('parse');
        expect(c.kept).toBe(c.decisions.every((d) => d.passed));
      });
      expect(run.stats.candidates).toBe(3);
      expect(run.stats.prompts).toBe(3);
      expect(run.stats.answers).toBe(got.filter((c) => c.answer !== undefined).length);
    } finally {
      long.dispose();
    }
  }, 300_000);
});
