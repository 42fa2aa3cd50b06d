// The committed rows: TRL messages format, provenance, split hygiene (held-out phrasings and
// inputs), and answers recomputed from each row's own text, independently of the generator.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  CALCULATOR_TOOL, FACTS, FAMILIES, FAMILY_NAMES, generateRow, getFamily, parseJsonl, REFUSAL, trainTemplates, type InstructRow,
} from '../../src/data/instruct/index.js';
import { score } from '../../src/eval/index.js';

const load = (split: string) => parseJsonl<InstructRow>(readFileSync(`demo/data/${split}.jsonl`, 'utf8'), `demo/data/${split}.jsonl`);
const splits = { train: load('train'), valid: load('valid'), test: load('test') };
const all = [...splits.train, ...splits.valid, ...splits.test];
const loadTools = (split: string) => parseJsonl<InstructRow>(readFileSync(`demo/data/tools-${split}.jsonl`, 'utf8'), `demo/data/tools-${split}.jsonl`);
const toolSplits = { train: loadTools('train'), valid: loadTools('valid'), test: loadTools('test') };
const toolRows = [...toolSplits.train, ...toolSplits.valid, ...toolSplits.test];
const manifest = JSON.parse(readFileSync('demo/data/manifest.json', 'utf8'));
const last = (r: InstructRow) => r.messages[r.messages.length - 1].content;
const users = (r: InstructRow) => r.messages.filter((m) => m.role === 'user').map((m) => m.content);

describe('format and provenance', () => {
  it('has the expected sizes', () => {
    expect(splits.train.length).toBeGreaterThanOrEqual(3000);
    expect(splits.train.length).toBeLessThanOrEqual(5000);
    expect(splits.valid.length).toBeGreaterThanOrEqual(200);
    expect(splits.test.length).toBeGreaterThanOrEqual(200);
    expect(manifest.counts.train.total).toBe(splits.train.length);
    expect(manifest.counts.test.total).toBe(splits.test.length);
  });

  it('tool_use rows (their own files) are TRL tool-calling conversations: the calculator schema, a call, its result, the answer', () => {
    expect(toolRows.length).toBe(360);
    expect(toolRows.every((r) => r.family === 'tool_use')).toBe(true);
    expect(toolSplits.test.filter((r) => r.phrasing === 'unseen').length).toBe(15);
    const heldOut = new Set(getFamily('tool_use').heldOut.map((t) => `tool_use/${t}`));
    for (const r of [...toolSplits.train, ...toolSplits.valid]) expect(heldOut.has(r.template), r.id).toBe(false);
    // No input (the numbers and operation) in two splits.
    const inputs = (rows: InstructRow[]) => new Set(rows.map((r) => JSON.stringify(r.messages[1].tool_calls)));
    const [tr, va, te] = [inputs(toolSplits.train), inputs(toolSplits.valid), inputs(toolSplits.test)];
    for (const k of te) expect(tr.has(k) || va.has(k), k).toBe(false);
    for (const k of va) expect(tr.has(k), k).toBe(false);
    for (const r of toolRows) {
      const where = `${r.id}: ${JSON.stringify(r.messages)}`;
      expect(r.tools, where).toEqual([CALCULATOR_TOOL]);
      expect(r.messages.map((m) => m.role), where).toEqual(r.messages.length === 2 ? ['user', 'assistant'] : ['user', 'assistant', 'tool', 'assistant']);
      expect(Object.keys(r.messages[1]).sort(), where).toEqual(['content', 'role', 'tool_calls']);
      expect(r.messages[1].content, where).toBe('');
      if (r.messages.length === 4) expect(Object.keys(r.messages[2]).sort(), where).toEqual(['content', 'name', 'role']);
    }
    for (const r of all) expect(r.tools, r.id).toBeUndefined();
  });

  it('every row is a valid TRL messages conversation', () => {
    for (const r of all) {
      const where = `${r.id}: ${JSON.stringify(r.messages)}`;
      const roles = r.messages.map((m) => m.role);
      const body = roles[0] === 'system' ? roles.slice(1) : roles;
      expect(body.length, where).toBeGreaterThanOrEqual(2);
      body.forEach((role, i) => expect(role, where).toBe(i % 2 === 0 ? 'user' : 'assistant'));
      expect(roles.lastIndexOf('system'), where).toBeLessThanOrEqual(0);
      for (const m of r.messages) {
        expect(Object.keys(m).sort(), where).toEqual(['content', 'role']);
        expect(typeof m.content === 'string' && m.content.trim().length > 0, where).toBe(true);
      }
    }
  });

  it('every row carries its provenance', () => {
    for (const [split, rows] of Object.entries(splits)) {
      rows.forEach((r, i) => {
        const where = `${split}:${i + 1}`;
        expect(['generator', 'human'], where).toContain(r.source);
        expect(FAMILY_NAMES, where).toContain(r.family);
        expect(r.template.startsWith(`${r.family}/`), where).toBe(true);
        expect(r.split, where).toBe(split);
        expect(r.id, where).toBe(`${split}-${String(i).padStart(5, '0')}`);
        if (r.source === 'generator') {
          expect(Number.isInteger(r.seed), where).toBe(true);
          expect(getFamily(r.family).templates, where).toContain(r.template.slice(r.family.length + 1));
        } else {
          expect(r.seed, where).toBeNull();
          expect(r.template, where).toBe(`${r.family}/human`);
        }
        if (split === 'train') expect(r.eval, where).toBeUndefined();
        else expect(r.eval, where).toBeDefined();
        if (split === 'test') expect(['seen', 'unseen', 'human'], where).toContain(r.phrasing);
      });
    }
  });

  it('each generated row is rebuilt exactly from its family, template, seed and split', () => {
    for (const r of all.filter((x) => x.source === 'generator')) {
      const again = generateRow(r.family, r.template.slice(r.family.length + 1), r.seed!, r.split);
      expect(again.messages, r.id).toEqual(r.messages);
      if (r.eval) expect(again.eval, r.id).toEqual(r.eval);
    }
  });

  it('keeps rows short', () => {
    for (const r of all) expect(r.messages.reduce((s, m) => s + m.content.length, 0), r.id).toBeLessThan(300);
    expect(manifest.lengths.chars.train.p95).toBeLessThan(200);
  });
});

describe('splits measure generalisation', () => {
  it('held-out phrasings never occur in train or validation, and every family tests them', () => {
    for (const f of FAMILIES) {
      expect(f.heldOut.length, f.name).toBeGreaterThanOrEqual(1);
      expect(f.templates.length - f.heldOut.length, f.name).toBeGreaterThanOrEqual(5);
      for (const h of f.heldOut) {
        const id = `${f.name}/${h}`;
        expect(splits.train.some((r) => r.template === id), id).toBe(false);
        expect(splits.valid.some((r) => r.template === id), id).toBe(false);
        expect(splits.test.some((r) => r.template === id && r.phrasing === 'unseen'), id).toBe(true);
      }
      for (const t of trainTemplates(f)) expect(splits.train.some((r) => r.template === `${f.name}/${t}`), `${f.name}/${t}`).toBe(true);
      expect(splits.test.filter((r) => r.family === f.name && r.phrasing === 'seen').length, f.name).toBeGreaterThan(0);
      expect(manifest.families[f.name].templates.heldOut).toEqual([...f.heldOut]);
    }
    // Exactly the rows built from a held-out template are marked unseen.
    for (const r of splits.test.filter((x) => x.source === 'generator')) {
      const held = getFamily(r.family).heldOut.includes(r.template.slice(r.family.length + 1));
      expect(r.phrasing, r.id).toBe(held ? 'unseen' : 'seen');
    }
  });

  it('no conversation occurs in two splits', () => {
    const where = new Map<string, string>();
    for (const r of all) {
      const k = JSON.stringify(r.messages);
      const prev = where.get(k);
      if (prev !== undefined) expect(prev.split('-')[0], `${r.id} repeats ${prev}`).toBe(r.split);
      where.set(k, r.id);
    }
  });

  it('validation and test inputs are fresh: their user turns never occur in training', () => {
    const trainUsers = new Set(splits.train.flatMap(users));
    for (const r of [...splits.valid, ...splits.test].filter((x) => x.source === 'generator')) {
      // A multi-turn row's follow-up ("Now double it.") is a phrasing, not an input: check its first turn.
      const inputs = r.family === 'multiturn' ? users(r).slice(0, 1) : users(r);
      for (const u of inputs) expect(trainUsers.has(u), `${r.id}: ${u}`).toBe(false);
    }
    // Input keys (regenerated from provenance) are disjoint between splits.
    const keys = { train: new Set<string>(), valid: new Set<string>(), test: new Set<string>() };
    for (const r of all.filter((x) => x.source === 'generator')) keys[r.split].add(generateRow(r.family, r.template.slice(r.family.length + 1), r.seed!, r.split).key);
    for (const k of keys.test) expect(keys.train.has(k) || keys.valid.has(k), k).toBe(false);
    for (const k of keys.valid) expect(keys.train.has(k), k).toBe(false);
  });

  it('every fact of the table is stated in the pretraining corpus', () => {
    const corpus = parseJsonl<{ text: string }>(readFileSync('demo/data/pretrain.jsonl', 'utf8')).map((d) => d.text).join('\n');
    for (const f of FACTS) expect(corpus.includes(f.subject) && corpus.includes(f.answer), f.subject).toBe(true);
    expect(corpus).not.toMatch(/<\|im_start\|>|"role"|assistant:/);
  });

  it('the pretraining corpus never states the answer of a test sum, difference or reversal', () => {
    const corpus = parseJsonl<{ text: string }>(readFileSync('demo/data/pretrain.jsonl', 'utf8')).map((d) => d.text).join('\n');
    const testKeys = splits.test.filter((r) => r.source === 'generator' && (r.family === 'arithmetic' || r.family === 'string'))
      .map((r) => generateRow(r.family, r.template.slice(r.family.length + 1), r.seed!, 'test').key);
    let checked = 0;
    for (const key of new Set(testKeys)) {
      const [op, x, y] = key.split(':');
      const statements = op === 'add' ? [`${x} plus ${y} is ${+x + +y}.`, `The sum of ${x} and ${y} is`, `${x} + ${y} = `, `${x} and ${y} make`, `Adding ${y} to ${x} gives`]
        : op === 'sub' ? [`${x} minus ${y} is`, `take ${y} from ${x},`, `${x} take away ${y} leaves`, `${x} - ${y} = `, `Subtracting ${y} from ${x} gives`]
        : op === 'reverse' ? [`the word ${x} is ${rev(x)}.`, `backwards, ${x} is`, `The word ${x} is spelled ${[...x].join(' ')}; backwards`]
        : [];
      // A statement that starts with a number must not be read inside a longer one ("15 and 10 make" holds "5 and 10 make").
      const says = (st: string) => new RegExp(`(?<![0-9])${st.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`).test(corpus);
      for (const st of statements) expect(says(st), `${key}: "${st}"`).toBe(false);
      checked += statements.length;
    }
    expect(checked).toBeGreaterThan(100);
    // The same statements of training inputs do occur: the check above can fail.
    expect(corpus).toMatch(/\d+ plus \d+ is \d+\./);
    expect(corpus).toMatch(/Reversed, the word \w+ is \w+\./);
  });
});

// ---- answers recomputed from the row's text --------------------------------------------------
const nums = (s: string) => (s.match(/\d+/g) ?? []).map(Number);
const rev = (s: string) => s.split('').reverse().join('');
const POS = /\b(great|lovely|excellent|wonderful|amazing|perfect|friendly|delicious|fun|good)\b/i;
const NEG = /\b(terrible|awful|boring|rude|broken|dirty|bad|cold|slow|horrible)\b/i;

function arithmeticAnswer(q: string): number {
  const [x, y] = nums(q);
  if (/Subtract (\d+) from/.test(q)) return y - x;
  if (/minus|-|difference|eat/.test(q)) return x - y;
  if (/plus|\+|Add|sum|more/.test(q)) return x + y;
  throw new Error(`no operation in ${q}`);
}

/** The word a string task is about: the last lower-case word of the question that is not part of the instruction. */
const INSTRUCTION_WORDS = new Set('reverse the word write in capital letters how many are spell backwards upper case count what is reversed capitals length of please this upper-case uppercase long task it make its give me written all caps number can you put tell has'.split(' '));
function stringWord(q: string): string {
  // The target word is lower case; instruction words may be capitalised ("Please", "Word:").
  const words = (q.match(/[A-Za-z]+/g) ?? []).filter((w) => w === w.toLowerCase() && !INSTRUCTION_WORDS.has(w));
  if (words.length !== 1) throw new Error(`ambiguous word in ${q}: ${words}`);
  return words[0];
}

function factAnswer(q: string): string {
  const hits = FACTS.filter((f) => new RegExp(`\\b${f.subject}\\b`).test(q) && (
    (f.relation === 'capital' && /capital/i.test(q)) || (f.relation === 'colour' && /colou?r/i.test(q)) ||
    (f.relation === 'sound' && /sound|say/i.test(q)) || (f.relation === 'opposite' && /opposite/i.test(q))));
  if (hits.length !== 1) throw new Error(`no single fact in ${q}`);
  return hits[0].answer;
}

function sentimentAnswer(review: string): string {
  const p = POS.test(review);
  const n = NEG.test(review);
  if (p === n) throw new Error(`review of mixed or no polarity: ${review}`);
  return p ? 'positive' : 'negative';
}

function expectedAnswer(r: InstructRow): string {
  const q = users(r)[0];
  switch (r.family) {
    case 'arithmetic': return String(arithmeticAnswer(q));
    case 'string': {
      const w = stringWord(q);
      if (/revers|backwards/i.test(q)) return rev(w);
      if (/capital|upper|caps/i.test(q)) return w.toUpperCase();
      if (/letters|length|long/i.test(q)) return String(w.length);
      throw new Error(`no string task in ${q}`);
    }
    case 'sorting': {
      const list = q.includes(':') ? q.slice(q.indexOf(':') + 1) : q;
      const n = nums(list);
      if (n.length) {
        const up = /smallest to largest|ascending|lowest to highest|increasing|smallest first|small to big/.test(q);
        return n.sort((a, b) => (up ? a - b : b - a)).join(', ');
      }
      const instruction = new Set(['sort', 'these', 'words', 'alphabetically', 'put', 'in', 'alphabetical', 'order', 'arrange', 'from', 'a', 'to', 'z', 'list', 'it', 'can', 'you', 'rewrite', 'dictionary', 'what', 'is', 'sorted', 'order']);
      return (list.toLowerCase().match(/[a-z]+/g) ?? []).filter((w) => !instruction.has(w)).sort().join(', ');
    }
    case 'sentiment': return sentimentAnswer(q);
    case 'extraction': {
      const m = /Name: (\w+)/.exec(q) && /Age: (\d+)/.exec(q) && /City: (\w+)/.exec(q)
        ? { name: /Name: (\w+)/.exec(q)![1], age: Number(/Age: (\d+)/.exec(q)![1]), city: /City: (\w+)/.exec(q)![1] }
        : (() => {
          const s = /(\w+) is (\d+) and lives in (\w+)\./.exec(q) ?? /(\w+), (\d+), from (\w+)\./.exec(q);
          if (!s) throw new Error(`no record in ${q}`);
          return { name: s[1], age: Number(s[2]), city: s[3] };
        })();
      return JSON.stringify(m);
    }
    case 'qa': return factAnswer(q);
    case 'system': {
      const sys = r.messages[0];
      expect(sys.role).toBe('system');
      expect(sys.content).toMatch(/capital|upper|caps/i);
      const base = /^Reverse the word (\w+)\.$/.exec(q)?.[1];
      if (base) return rev(base).toUpperCase();
      if (/review/.test(q)) return sentimentAnswer(q).toUpperCase();
      return factAnswer(q).toUpperCase();
    }
    case 'multiturn': {
      const [first, follow] = users(r);
      const prev = r.messages[r.messages.length - 3].content;
      const word = /^Reverse the word (\w+)\.$/.exec(first)?.[1];
      if (word) {
        expect(prev).toBe(rev(word));
        return rev(word).toUpperCase();
      }
      const v = arithmeticAnswer(first.replace(/^What is (\d+) minus (\d+)\?$/, 'What is $1 minus $2?'));
      expect(Number(prev)).toBe(v);
      const k = nums(follow)[0];
      if (/double|twice|by 2/i.test(follow)) return String(v * 2);
      if (/add|plus/i.test(follow)) return String(v + k);
      if (/subtract|take|minus/i.test(follow)) return String(v - k);
      throw new Error(`no follow-up operation in ${follow}`);
    }
    case 'refusal': return REFUSAL;
    case 'tool_use': {
      // The call must carry the question's numbers and operation; the answer is the tool's result, which is right.
      const n = nums(q);
      const [a, b] = /subtract \d+ from|\d+ less than/.test(q) ? [n[1], n[0]] : n; // "subtract b from a", "b less than a"
      const op = /plus|\+|sum|add/.test(q) ? '+' : /minus|-|less|take away|subtract/.test(q) ? '-' : '*';
      expect(r.messages[1].tool_calls, r.id).toEqual([{ type: 'function', function: { name: 'calculator', arguments: { a, op, b } } }]);
      const value = op === '+' ? a + b : op === '-' ? a - b : a * b;
      if (r.messages.length === 2) return '';
      expect(r.messages[2].content, r.id).toBe(String(value));
      return String(value);
    }
  }
}

describe('answers are correct', () => {
  it('every generated answer equals the answer recomputed from the question', () => {
    for (const r of [...all, ...toolRows].filter((x) => x.source === 'generator')) expect(last(r), `${r.id}: ${JSON.stringify(r.messages)}`).toBe(expectedAnswer(r));
  });

  it('every reference answer (generated and hand-written) passes its own scorer', () => {
    // A reference call is written as chatml_tools writes it.
    const reference = (r: InstructRow) => {
      const m = r.messages[r.messages.length - 1];
      return m.tool_calls ? m.tool_calls.map((c) => `<tool_call>\n${JSON.stringify(c.function)}\n</tool_call>`).join('\n') : m.content;
    };
    for (const r of [...splits.valid, ...splits.test, ...toolSplits.valid, ...toolSplits.test]) expect(score(r.eval!, reference(r)), r.id).toEqual({ correct: true });
  });

  it('arithmetic stays in range and subtractions never go below zero', () => {
    for (const r of all.filter((x) => x.family === 'arithmetic' && x.source === 'generator')) {
      const v = Number(last(r));
      expect(v >= 0 && v <= 40, r.id).toBe(true);
    }
  });
});
