/**
 * Self-Instruct and Evol-Instruct driven by a scripted generator behind the same TextGenerator
 * interface the model's generation uses: every prompt, sampling setting, parse, filter verdict,
 * provenance field and count is checked against hand-written expectations.
 */
import { describe, expect, it } from 'vitest';
import {
  selfInstruct, evolInstruct, selfInstructPrompt, parseSelfInstructOutput, parseEvolOutput, evolPrompt, parseSeedTasks,
  grownExamples, type GrowCandidate, type GrowPrompt, type GrowSampling, type GrowGeneration, type SeedTask, type TextGenerator,
} from '../../src/grow/index.js';
import { parseLine } from '../../src/data/dataset.js';
import { rougeL } from '../../src/data/filters.js';

interface Call { prompt: GrowPrompt; sampling: GrowSampling }
/** A generator that records its calls and answers from `reply`. */
function scripted(reply: (p: GrowPrompt, s: GrowSampling, i: number) => GrowGeneration): { gen: TextGenerator; calls: Call[] } {
  const calls: Call[] = [];
  return { calls, gen: async (prompt, sampling) => { calls.push({ prompt, sampling }); return reply(prompt, sampling, calls.length - 1); } };
}
const text = (p: GrowPrompt) => (p.format === 'completion' ? p.text : p.messages.at(-1)!.content);
async function collect(run: AsyncIterable<GrowCandidate>): Promise<GrowCandidate[]> {
  const out: GrowCandidate[] = [];
  for await (const c of run) out.push(c);
  return out;
}

const SEEDS: SeedTask[] = [
  { id: 's0', instruction: 'Sort the following numbers from smallest to largest.', output: '1, 2, 3' },
  { id: 's1', instruction: 'Give an antonym for the word happy.', output: 'sad' },
  { id: 's2', instruction: 'Count how many letters are in a given word.', output: '5' },
  { id: 's3', instruction: 'Classify the sentiment of this review as positive or negative.', output: 'positive' },
  { id: 's4', instruction: 'Extract the person name from a sentence as JSON.', output: '{"name": "Ana"}' },
  { id: 's5', instruction: 'Answer a short question about world capitals.', output: 'Paris' },
  { id: 's6', instruction: 'Repeat the input string backwards.', output: 'cba' },
  { id: 's7', instruction: 'Add two whole numbers together and report the sum.', output: '7' },
  { id: 's8', instruction: 'Rewrite the sentence entirely in capital letters.', output: 'HI' },
  { id: 's9', instruction: 'Politely decline a request that is unsafe.', output: 'I cannot help with that.' },
];
const SEED_TEXT = new Map(SEEDS.map((s) => [s.instruction, s.id]));

describe('Self-Instruct', () => {
  it('writes the paper\'s prompt and parses numbered continuations', () => {
    expect(selfInstructPrompt(['Sort numbers:', '  Say   hi ', 'Add 2 and 3'])).toBe('Come up with a series of tasks:\n1. Sort numbers\n2. Say hi\n3. Add 2 and 3\n4.');
    const cases: Array<[string, Parameters<typeof parseSelfInstructOutput>[1], string[], number]> = [
      // plain continuation: starts inside task 4
      [' Name a color.\n5. Name a fruit.\n6 . Name a city', { format: 'completion', first: 4, finish: 'stop' }, ['Name a color.', 'Name a fruit.', 'Name a city'], 0],
      // cut off by the token limit: the last task is dropped and counted
      [' Name a color.\n5. Name a fr', { format: 'completion', first: 4, finish: 'length' }, ['Name a color.'], 1],
      // chat reply: preamble ignored, "9)" accepted, an empty task counted
      ['Sure, here you go:\n9) Name a bird.\n10.\n11. Name a tree.', { format: 'chat', first: 9, finish: 'stop' }, ['Name a bird.', 'Name a tree.'], 1],
      // no numbered task at all
      ['I like trains.', { format: 'chat', first: 9, finish: 'stop' }, [], 1],
    ];
    for (const [out, o, tasks, bad] of cases) {
      const r = parseSelfInstructOutput(out, o);
      expect(r.tasks, out).toEqual(tasks);
      expect(r.malformed, out).toHaveLength(bad);
    }
  });

  it('few-shot prompts, sampling settings, filters, counts and provenance', async () => {
    const first = [
      ' Name three colors of the rainbow in order.',
      '10. Translate the word dog into French please.',
      '11. Write a program to sort numbers in a list.',
      '12. Describe the image below in detail please.',
      '13. Hi there',
      '14. Sort the following numbers from largest to smallest.',   // ROUGE-L 0.75 with s0
      '15.',
    ].join('\n');
    const second = ' Count the vowels in the word banana.\n10. Spell the word';
    const answers: Record<string, string> = {
      'Name three colors of the rainbow in order.': 'Red, orange, yellow.',
      'Translate the word dog into French please.': 'chien',
      'Count the vowels in the word banana.': 'Three.',
    };
    let instructionCalls = 0;
    const { gen, calls } = scripted((p) => {
      const t = text(p);
      if (t.startsWith('Come up with')) return instructionCalls++ === 0 ? { text: first, finish: 'stop' } : { text: second, finish: 'length' };
      const task = /Task: ([^\n]*)\nOutput:$/.exec(t)![1];
      return { text: ` ${answers[task]}`, finish: 'stop' };
    });
    const run = selfInstruct({ generator: gen, seedTasks: SEEDS, n: 3, promptFormat: 'completion', modelName: 'stub-lm', seed: 5 });
    const got = await collect(run);

    // Prompts: two instruction prompts of 8 tasks each, numbered 1-8 and ending "9.".
    const instr = calls.filter((c) => text(c.prompt).startsWith('Come up with'));
    expect(instr).toHaveLength(2);
    const listed = (c: Call) => [...text(c.prompt).matchAll(/^(\d+)\. (.*)$/gm)].map((m) => m[2]);
    for (const c of instr) {
      expect(text(c.prompt)).toMatch(/^Come up with a series of tasks:\n(\d\. [^\n]+\n){8}9\.$/);
      expect(new Set(listed(c)).size).toBe(8);
      expect(c.sampling).toMatchObject({ temperature: 0.7, topP: 0.5, maxNewTokens: 256, stop: ['\n\n'] });
    }
    // The first prompt draws 8 seeds; the second 6 seeds and the 2 instructions generated so far.
    expect(listed(instr[0]).every((t) => SEED_TEXT.has(t))).toBe(true);
    const gen2 = listed(instr[1]).filter((t) => !SEED_TEXT.has(t)).sort();
    expect(gen2).toEqual(['Name three colors of the rainbow in order.', 'Translate the word dog into French please.']);
    expect(instr[0].sampling.seed).not.toBe(instr[1].sampling.seed);

    // Answers: greedy, with three seed tasks and their outputs as examples, stopping at the next task.
    const ans = calls.filter((c) => !text(c.prompt).startsWith('Come up with'));
    expect(ans).toHaveLength(3);
    for (const c of ans) {
      expect(c.sampling).toMatchObject({ temperature: 0, maxNewTokens: 128, stop: ['\n\nTask:', '\nTask:'] });
      const blocks = text(c.prompt).split('\n\n');
      expect(blocks).toHaveLength(4);
      for (const b of blocks.slice(0, 3)) {
        const [, inst, out] = /^Task: (.*)\nOutput: (.*)$/.exec(b)!;
        expect(SEEDS.find((s) => s.instruction === inst)?.output).toBe(out);
      }
    }

    // Verdicts, in stream order (malformed parts of an output first, then its tasks).
    expect(got.map((c) => [c.verdict, c.instruction])).toEqual([
      ['parse', ''],
      ['kept', 'Name three colors of the rainbow in order.'],
      ['kept', 'Translate the word dog into French please.'],
      ['format', 'Write a program to sort numbers in a list.'],
      ['keywords', 'Describe the image below in detail please.'],
      ['instruction_length', 'Hi there'],
      ['near_dedup', 'Sort the following numbers from largest to smallest.'],
      ['parse', ''],
      ['kept', 'Count the vowels in the word banana.'],
    ]);
    expect(rougeL(SEEDS[0].instruction, got[6].instruction)).toBeCloseTo(0.75, 12);  // LCS 6 of 8 and 8 words
    expect(got.map((c) => c.reason)).toEqual([
      'an empty task', '', '', 'starts with "Write a program"', "matched /\\bimage\\b/i ('image')", '2 words < min 4',
      'ROUGE-L 0.750 > 0.7 with row s0', 'the last task was cut off at the token limit', '',
    ]);
    expect(run.stats).toEqual({
      prompts: 2, answers: 3, candidates: 9, kept: 3, malformed: 2,
      dropped: { parse: 2, format: 1, keywords: 1, instruction_length: 1, near_dedup: 1 }, acceptanceRate: 3 / 9,
    });

    // Provenance of a kept row: method, id, the 8 tasks of its prompt (in prompt order), model, prompt, settings, every filter.
    const row = got[1].row!;
    const idOf = (t: string) => SEED_TEXT.get(t) ?? got.find((c) => c.instruction === t)!.id;
    expect(row).toMatchObject({
      messages: [{ role: 'user', content: 'Name three colors of the rainbow in order.' }, { role: 'assistant', content: 'Red, orange, yellow.' }],
      source: 'self-instruct', id: got[1].id, model: 'stub-lm', prompt_format: 'completion',
      parents: listed(instr[0]).map(idOf), generation_prompt: text(instr[0].prompt),
      sampling: { instruction: { temperature: 0.7, topP: 0.5, seed: instr[0].sampling.seed }, answer: { temperature: 0 } },
    });
    expect(row.filters).toEqual(['parse', 'instruction_length', 'keywords', 'format', 'near_dedup', 'answer_length'].map((filter) => ({ filter, passed: true })));
    const second2 = got[8].row!;
    expect(second2.parents.filter((id) => id.startsWith('self-instruct-')).sort()).toEqual([got[1].id, got[2].id]);
    // Dropped instructions never got an answer, and the rows train as they are: the dataset reader takes them back.
    expect(got.filter((c) => !c.kept).every((c) => c.row === undefined)).toBe(true);
    const back = parseLine(JSON.stringify(row), { file: 'grown.jsonl', line: 1 });
    expect(back.example?.messages).toEqual(row.messages);
    expect(back.example?.meta).toMatchObject({ source: 'self-instruct', parents: row.parents, model: 'stub-lm' });
    expect(grownExamples([row])[0]).toMatchObject({ format: 'messages', messages: row.messages, meta: { id: row.id } });
  });

  it('chat prompts: the list in a user turn, malformed replies dropped and counted, the same seed reproduces', async () => {
    const replies = ['No idea, sorry.', 'Here are more:\n9. Name a large animal that lives in the ocean.\n10. Name a small bird that cannot fly.'];
    const make = () => scripted((p, _s, i) => (text(p).startsWith('Come up with') ? { text: replies[Math.min(i, 1)], finish: 'stop' } : { text: 'A whale.', finish: 'stop' }));
    const a = make();
    const run = selfInstruct({ generator: a.gen, seedTasks: SEEDS.slice(0, 3), n: 2, seed: 1 });
    const got = await collect(run);
    const p0 = a.calls[0].prompt;
    expect(p0.format).toBe('chat');
    if (p0.format !== 'chat') throw new Error('unreachable');
    expect(p0.messages).toHaveLength(1);
    expect(a.calls[0].sampling.stop).toBeUndefined();   // a chat reply ends at its end-of-turn token, not at a blank line
    // Only 3 seeds exist: all three are listed, and the reply is asked to continue from 4.
    expect(p0.messages[0].content).toMatch(/^Come up with a series of tasks:\n1\. .*\n2\. .*\n3\. .*\n\nContinue the list with new, different tasks, one per line, numbered from 4\.$/);
    expect(got.map((c) => c.verdict)).toEqual(['parse', 'kept', 'kept']);
    expect(got[0].reason).toMatch(/^no numbered task in the output: "No idea, sorry\."/);
    expect(got[0].raw).toBe('No idea, sorry.');
    expect(run.stats).toMatchObject({ prompts: 2, malformed: 1, kept: 2, candidates: 3 });
    // Answers are asked as a plain user turn.
    const ans = a.calls.find((c) => !text(c.prompt).startsWith('Come up with'))!;
    expect(ans.prompt).toEqual({ format: 'chat', messages: [{ role: 'user', content: 'Name a large animal that lives in the ocean.' }] });
    // Same seed, same prompts and settings.
    const b = make();
    await collect(selfInstruct({ generator: b.gen, seedTasks: SEEDS.slice(0, 3), n: 2, seed: 1 }));
    expect(b.calls).toEqual(a.calls);
  });

  it('stops after maxPrompts when the model never writes a usable task, and refuses bad options', async () => {
    const { gen, calls } = scripted(() => ({ text: '', finish: 'length' }));
    const run = selfInstruct({ generator: gen, seedTasks: SEEDS, n: 5, maxPrompts: 3 });
    const got = await collect(run);
    expect(calls).toHaveLength(3);
    expect(run.stats).toMatchObject({ prompts: 3, kept: 0, acceptanceRate: 0, malformed: 3 });
    expect(got.every((c) => c.verdict === 'parse')).toBe(true);
    expect(() => selfInstruct({ generator: gen, seedTasks: [], n: 1 })).toThrow(/seedTasks is empty/);
    expect(() => selfInstruct({ generator: gen, seedTasks: SEEDS, n: 0 })).toThrow(/n must be an integer >= 1, got 0/);
    expect(() => selfInstruct({ seedTasks: SEEDS, n: 1 })).toThrow(/give either generator, or model \+ tokenizer \+ template/);
  });
});

describe('Evol-Instruct', () => {
  it('writes the paper\'s prompts and parses rewrites', () => {
    const p = evolPrompt('constraints', 'Explain why the sky is blue.');
    expect(p).toMatch(/^I want you act as a Prompt Rewriter\.\n/);
    expect(p).toContain('\nPlease add one more constraints/requirements into #The Given Prompt#\n');
    expect(p.endsWith('#The Given Prompt#:\nExplain why the sky is blue.\n#Rewritten Prompt#:\n')).toBe(true);
    const b = evolPrompt('breadth', 'Explain why the sky is blue.');
    expect(b).toMatch(/^I want you act as a Prompt Creator\./);
    expect(b.endsWith('#Given Prompt#:\nExplain why the sky is blue.\n#Created Prompt#:\n')).toBe(true);
    for (const [op, words] of [['deepen', 'depth and breadth of the inquiry'], ['concretize', 'more specific concepts'], ['reasoning', 'multiple-step reasoning']] as const) {
      expect(evolPrompt(op, 'x')).toContain(words);
    }
    expect(parseEvolOutput('#Rewritten Prompt#: Explain it twice.\n#Note#: shorter')).toEqual({ instruction: 'Explain it twice.' });
    expect(parseEvolOutput('  Created Prompt: Name a rare gem.  ')).toEqual({ instruction: 'Name a rare gem.' });
    expect(parseEvolOutput('#Rewritten Prompt#:\n  ')).toHaveProperty('malformed');
  });

  it('rounds over the pool, elimination rules, counts and provenance', async () => {
    const A = 'Explain why the sky is blue.';
    const B = 'List three uses of a paper clip.';
    const rewrites = [
      '#Rewritten Prompt#: Explain why the sky is blue, in exactly two sentences a child can follow.', // kept
      'List three uses of a paper clip!',                                                            // no change
      'Rewrite the given prompt so that it is harder to answer.',                                   // copied prompt
      'List three unusual uses of a paper clip in a busy office.',                                   // answer: refusal
      'Explain why the sky looks blue at noon but red at sunset.',                                   // answer: too short
      '   ',                                                                                         // malformed
    ];
    const answers: Record<string, string> = {
      'Explain why the sky is blue, in exactly two sentences a child can follow.': 'Sunlight scatters off the air. Blue light scatters the most.',
      'List three unusual uses of a paper clip in a busy office.': "I'm sorry, but I can't help with that.",
      'Explain why the sky looks blue at noon but red at sunset.': 'It is the ... of the.',
    };
    let r = 0;
    const { gen, calls } = scripted((p) => {
      const t = text(p);
      return t.startsWith('I want you act as') ? { text: rewrites[r++], finish: 'stop' } : { text: answers[t], finish: 'stop' };
    });
    const run = evolInstruct({ generator: gen, seedTasks: [{ id: 'a', instruction: A }, { id: 'b', instruction: B }], n: 10, rounds: 3, operations: ['constraints', 'breadth'], modelName: 'stub-lm', seed: 3 });
    const got = await collect(run);
    expect(got).toHaveLength(6);

    // Each rewrite prompt is the paper's prompt for the drawn operation on the parent's text; settings as WizardLM's.
    const evolCalls = calls.filter((c) => text(c.prompt).startsWith('I want you act as'));
    const parentText: Record<string, string> = { a: A, b: B, [got[0].id]: 'Explain why the sky is blue, in exactly two sentences a child can follow.' };
    got.forEach((c, i) => {
      expect(['constraints', 'breadth']).toContain(c.operation);
      expect(text(evolCalls[i].prompt)).toBe(evolPrompt(c.operation as 'constraints', parentText[c.parents[0]]));
      expect(evolCalls[i].sampling).toMatchObject({ temperature: 1, topP: 0.95, maxNewTokens: 128 });
    });
    expect(new Set(got.map((c) => c.operation)).size).toBe(2);   // both operations drawn over 6 calls

    // A kept evolution replaces its parent in the pool; a failed one leaves the parent.
    expect(got.map((c) => [c.round, c.parents[0], c.verdict])).toEqual([
      [1, 'a', 'kept'], [1, 'b', 'no_change'],
      [2, got[0].id, 'copied_prompt'], [2, 'b', 'refusal'],
      [3, got[0].id, 'too_short'], [3, 'b', 'parse'],
    ]);
    expect(got.map((c) => c.reason)).toEqual([
      '', 'the rewrite is the parent instruction unchanged', "repeats the evolving prompt's words 'given prompt'",
      'the answer says "sorry" in 8 words (< 80)', 'the answer holds only punctuation and stop words',
      'no rewritten instruction in the output: "   "',
    ]);
    expect(got[0].instruction).toBe('Explain why the sky is blue, in exactly two sentences a child can follow.');
    expect(run.stats).toEqual({
      prompts: 6, answers: 3, candidates: 6, kept: 1, malformed: 1,
      dropped: { no_change: 1, copied_prompt: 1, refusal: 1, too_short: 1, parse: 1 }, acceptanceRate: 1 / 6,
    });
    expect(got[0].row).toMatchObject({
      source: 'evol-instruct', parents: ['a'], model: 'stub-lm', operation: got[0].operation, round: 1, prompt_format: 'chat',
      generation_prompt: evolPrompt(got[0].operation as 'constraints', A),
      messages: [{ role: 'user', content: got[0].instruction }, { role: 'assistant', content: answers[got[0].instruction] }],
    });
    expect(got[0].row!.filters.map((d) => d.filter)).toEqual(['parse', 'no_change', 'copied_prompt', 'instruction_length', 'near_dedup', 'refusal', 'too_short', 'answer_length']);
    // A row dropped at the answer stage still carries its row, so the user may keep it by hand.
    expect(got[3].row?.filters.at(-1)).toEqual({ filter: 'refusal', passed: false, reason: got[3].reason });
    expect(() => evolInstruct({ generator: gen, seedTasks: [{ id: 'a', instruction: A }], n: 1, operations: ['sideways' as 'breadth'] })).toThrow(/unknown operation 'sideways'/);
  });
});

describe('seed tasks', () => {
  it('reads Self-Instruct\'s seed format and WebTune rows; bad rows name file, line and field', () => {
    const lines = [
      JSON.stringify({ id: 'seed_task_0', name: 'breakfast', instruction: 'Suggest a breakfast.', instances: [{ input: '', output: 'Oatmeal.' }], is_classification: false }),
      JSON.stringify({ messages: [{ role: 'user', content: 'What is 2 plus 3?' }, { role: 'assistant', content: '5' }], id: 'train-1' }),
      JSON.stringify({ instruction: 'Translate to French', input: 'cat', output: 'chat' }),
      '{"instruction": 7, "instances": []}',
      '{oops',
      '',
      JSON.stringify({ text: 'just prose' }),
    ].join('\n');
    const { tasks, errors } = parseSeedTasks(lines, 'seeds.jsonl');
    expect(tasks[0]).toEqual({ id: 'seed_task_0', instruction: 'Suggest a breakfast.', output: 'Oatmeal.' });
    expect(tasks[1]).toEqual({ id: 'train-1', instruction: 'What is 2 plus 3?', output: '5' });
    expect(tasks[2].id).toBe('seeds.jsonl:3');
    expect(tasks[2].instruction).toContain('Translate to French');
    expect(tasks[2].output).toBe('chat');
    expect(tasks).toHaveLength(4);   // the text row's "instruction" is its text
    expect(errors.map((e) => e.message)).toEqual([
      'seeds.jsonl:4: field "instruction": expected a non-empty string',
      expect.stringMatching(/^seeds\.jsonl:5: invalid JSON/),
    ]);
  });
});
