/**
 * Base-model probe (not part of the test suite): what does a base model know in the plain prose
 * it was pre-trained on, before any chat formatting? Fine-tuning can only elicit a skill or a fact
 * the base has, so this separates "the base never learned it" from "fine-tuning did not reach it".
 *
 *   npx tsx test/bench/base_probe.ts [--model models/base] [--per-family 24] [--max-new-tokens 16]
 *
 * Probes are the corpus's own sentences cut before their answer: for each family whose prose
 * ends with the answer (sums and differences, doubling, reversed / capitalised / counted words,
 * sorted lists, records as JSON), the sentences `family.prose` writes about an input, with the
 * text up to the answer as the prompt ("The sum of 15 and 14 is" -> "29"). Inputs come from two
 * splits: `test` (held out: the corpus never states their answers) and `train` (it does). Facts
 * are probed in the forms `factSentences` gives them; the corpus states every fact, held-out ones
 * included, so for facts "held out" means held out of fine-tuning only. The model continues each
 * prompt greedily; the continuation up to its first full stop, line break or special token is
 * scored with the row's own eval spec.
 */
import { parseFlags } from '../../src/cli/args.js';
import { loadModel, loadTokenizer } from '../../src/index.js';
import { FAMILIES, factKey, factSentences } from '../../src/data/instruct/families.js';
import { FACTS, type Fact } from '../../src/data/instruct/facts.js';
import { inputSplit } from '../../src/data/instruct/build.js';
import type { EvalSpec, Split } from '../../src/data/instruct/types.js';
import { score } from '../../src/eval/scorers.js';
import { generate } from '../../src/train/generate.js';
import { Rng } from '../../src/utils/random.js';

const SPEC = {
  model: { type: 'string', default: 'models/base', help: 'checkpoint directory (with its tokenizer files)' },
  'per-family': { type: 'number', default: 24, help: 'inputs probed per family and split (facts: all of the split)' },
  'max-new-tokens': { type: 'number', default: 16, help: 'longest continuation' },
} as const;

interface Probe { family: string; split: Split; prompt: string; spec: EvalSpec }

/** Sentences that end with ` answer.`, cut into prompt and spec. */
function cut(family: string, split: Split, sentences: Iterable<string>, answer: string, spec: EvalSpec): Probe[] {
  const tail = ` ${answer}.`;
  return [...new Set(sentences)].filter((s) => s.endsWith(tail)).map((s) => ({ family, split, prompt: s.slice(0, -tail.length), spec }));
}

function probes(perFamily: number): Probe[] {
  const out: Probe[] = [];
  for (const split of ['test', 'train'] as const) {
    for (const f of FAMILIES) {
      if (f.name === 'qa') continue;
      const rng = new Rng(12345);
      const seen = new Set<string>();
      for (let tries = 0; seen.size < perFamily && tries < 20_000; tries++) {
        const input = f.draw(rng);
        const key = f.key(input);
        if (inputSplit(key) !== split || seen.has(key)) continue;
        seen.add(key);
        const built = f.build(input, f.templates[0], rng);
        const sentences = Array.from({ length: 40 }, () => f.prose(rng, () => input));
        out.push(...cut(f.name, split, sentences, built.messages.at(-1)!.content, built.eval));
      }
    }
    const facts = FACTS.filter((fact: Fact) => inputSplit(factKey(fact)) === split).slice(0, split === 'test' ? undefined : perFamily);
    for (const fact of facts) out.push(...cut('qa (facts)', split, factSentences(fact), fact.answer, { kind: 'normalized', expected: fact.answer }));
  }
  return out;
}

async function main(): Promise<void> {
  const f = parseFlags('base_probe', process.argv.slice(2), SPEC, 'What a base model knows in plain prose: its corpus sentences cut before the answer, held-out and training inputs.');
  if (!f) return;
  const model = await loadModel(f.model!);
  const tokenizer = await loadTokenizer(f.model!);
  const all = probes(f['per-family']!);
  const tally = new Map<string, { n: number; ok: number; example?: string }>();
  for (const p of all) {
    const { ids } = await generate(model, tokenizer.encode(p.prompt).ids, { maxNewTokens: f['max-new-tokens']! });
    const text = tokenizer.decode(ids);
    const answer = text.split(/[.\n]|<\|/)[0].trim();   // up to a full stop, line break or special token
    const { correct } = score(p.spec, answer);
    const k = `${p.family}\t${p.split}`;
    const t = tally.get(k) ?? { n: 0, ok: 0 };
    t.n++;
    if (correct) t.ok++;
    else t.example ??= `"${p.prompt}" -> "${answer}"`;
    tally.set(k, t);
  }
  const families = [...new Set(all.map((p) => p.family))];
  const cell = (fam: string, split: Split) => {
    const t = tally.get(`${fam}\t${split}`);
    return t ? `${((100 * t.ok) / t.n).toFixed(1)}% (${t.ok}/${t.n})` : '-';
  };
  const lines = [`| family | held-out inputs (test split) | training inputs | a wrong held-out answer |`, '| --- | --- | --- | --- |',
    ...families.map((fam) => `| ${fam} | ${cell(fam, 'test')} | ${cell(fam, 'train')} | ${tally.get(`${fam}\ttest`)?.example ?? ''} |`)];
  console.log(`${lines.join('\n')}\n\nModel ${f.model}; ${all.length} prose prompts, greedy, at most ${f['max-new-tokens']} new tokens, scored up to the first full stop.`);
}

main().then(() => process.exit(0), (e) => { console.error(e instanceof Error ? e.stack : e); process.exit(1); });
