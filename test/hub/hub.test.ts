/**
 * Loading base models from a hub: a fake Hub on 127.0.0.1 (test/hub/fake_hub.ts) serves tiny
 * checkpoints saved by transformers (test/hub/fixtures, made by make_hub_fixtures.py: F16 GPT-2,
 * BF16 Llama with SmolLM2's config fields, sharded untied Llama) with the bundled tokenizer, and
 * the broken cases users meet (unknown repo, gated repo, truncated file, missing tokenizer,
 * weights that do not match the config, unsupported configs). Nothing reaches the network.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useBackend, assertAllClose } from '../helpers/backends.js';
import { FakeHub } from './fake_hub.js';
import {
  hubSource, loadFromHub, loadPretrained, fetchHubModelInfo, checkRepoId, httpFileSource,
} from '../../src/io/hub.js';
import { MemoryHubCache, clearHubCache, defaultHubCache } from '../../src/io/cache.js';
import { loadModel } from '../../src/io/checkpoint.js';
import { parseSafetensors } from '../../src/io/safetensors.js';
import { nodeDirSource, nodeDirSink } from '../../src/io/files.js';
import type { CausalLM } from '../../models/causal_lm.js';
import { renderChat } from '../../src/data/template.js';

const FIXTURES = join(__dirname, 'fixtures');
const TOKENIZER_DIR = join(__dirname, '..', '..', 'models', 'tokenizer');
const enc = (s: string | object) => new TextEncoder().encode(typeof s === 'string' ? s : JSON.stringify(s, null, 2));

function dirFiles(dir: string): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  for (const f of readdirSync(dir)) if (f !== 'expected.safetensors') out.set(f, new Uint8Array(readFileSync(join(dir, f))));
  return out;
}

const tokenizerJson = readFileSync(join(TOKENIZER_DIR, 'tokenizer.json'));
const tokenizerConfig = JSON.parse(readFileSync(join(TOKENIZER_DIR, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;

/** Checkpoint files + tokenizer files laid out the three ways repos ship them. */
function repoFiles(fixture: string, tokenizer: 'gpt2-style' | 'config-template' | 'jinja-template'): Map<string, Uint8Array> {
  const files = dirFiles(join(FIXTURES, fixture));
  files.set('tokenizer.json', new Uint8Array(tokenizerJson));
  if (tokenizer === 'gpt2-style') {
    // openai-community/gpt2 ships tokenizer_config.json without special tokens or a template.
    files.set('tokenizer_config.json', enc({ model_max_length: 1024 }));
  } else if (tokenizer === 'config-template') {
    files.set('tokenizer_config.json', enc({ ...tokenizerConfig, eos_token: '<|im_end|>' }));
  } else {
    const { chat_template, ...rest } = tokenizerConfig;
    files.set('tokenizer_config.json', enc(rest));
    files.set('chat_template.jinja', enc(chat_template as string));
  }
  return files;
}

function expected(fixture: string): { ids: Int32Array; logits: Float32Array; shape: number[] } {
  const { tensors } = parseSafetensors(new Uint8Array(readFileSync(join(FIXTURES, fixture, 'expected.safetensors'))), fixture);
  return { ids: tensors.get('input_ids')!.data as Int32Array, logits: tensors.get('logits')!.data as Float32Array, shape: tensors.get('logits')!.shape };
}

async function logitsOf(model: CausalLM, ids: Int32Array): Promise<Float32Array> {
  const x = tf.tensor2d(ids, [2, ids.length / 2], 'int32');
  const y = model.forward(x);
  const out = (await y.data()) as Float32Array;
  x.dispose();
  y.dispose();
  return out;
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

const hub = new FakeHub();
let endpoint = '';
const opts = (extra: Record<string, unknown> = {}) => ({ endpoint, cache: false as const, ...extra });

beforeAll(async () => {
  await useBackend('cpu');
  endpoint = await hub.start();
  hub.repos.set('tiny/gpt2-f16', { files: repoFiles('gpt2-f16', 'gpt2-style'), revisions: ['main', 'refs/pr/1'] });
  hub.repos.set('tiny/llama-bf16', { files: repoFiles('llama-bf16', 'config-template') });
  hub.repos.set('tiny/llama-sharded', { files: repoFiles('llama-sharded', 'jinja-template') });
  hub.repos.set('tiny/gated', { files: repoFiles('llama-bf16', 'config-template'), gatedToken: 'hf_secret' });
  const trunc = repoFiles('gpt2-f16', 'gpt2-style');
  hub.repos.set('tiny/truncated', { files: trunc, truncate: new Map([['model.safetensors', 5000]]) });
  hub.repos.set('tiny/slow', { files: repoFiles('gpt2-f16', 'gpt2-style'), slow: new Set(['model.safetensors']) });
  const noTok = repoFiles('gpt2-f16', 'gpt2-style');
  noTok.delete('tokenizer.json');
  noTok.set('vocab.json', enc({}));
  noTok.set('merges.txt', enc('#version: 0.2\n'));
  hub.repos.set('tiny/no-tokenizer', { files: noTok });
  const mismatch = repoFiles('gpt2-f16', 'gpt2-style');
  const cfg = JSON.parse(new TextDecoder().decode(mismatch.get('config.json')));
  mismatch.set('config.json', enc({ ...cfg, n_inner: 96 })); // the checkpoint's MLP is 4 * 32 = 128 wide
  hub.repos.set('tiny/mismatch', { files: mismatch });
  const llamaCfg = JSON.parse(new TextDecoder().decode(repoFiles('llama-bf16', 'config-template').get('config.json')));
  const yarn = repoFiles('llama-bf16', 'config-template');
  yarn.set('config.json', enc({ ...llamaCfg, rope_scaling: { rope_type: 'yarn', factor: 4.0, original_max_position_embeddings: 32 } }));
  hub.repos.set('tiny/llama-yarn', { files: yarn });
  const qwen = repoFiles('llama-bf16', 'config-template');
  qwen.set('config.json', enc({ ...llamaCfg, model_type: 'qwen2', architectures: ['Qwen2ForCausalLM'], use_sliding_window: true, sliding_window: 4096 }));
  hub.repos.set('tiny/qwen2-sliding', { files: qwen });
});

afterAll(async () => {
  await hub.stop();
});

describe('loadFromHub reproduces transformers', () => {
  for (const [repo, fixture, family, stored] of [
    ['tiny/gpt2-f16', 'gpt2-f16', 'gpt2', 'F16'],
    ['tiny/llama-bf16', 'llama-bf16', 'llama', 'BF16'],
    ['tiny/llama-sharded', 'llama-sharded', 'llama', 'F32 in 3 shards'],
  ] as const) {
    it(`${repo} (${family}, ${stored}): logits equal transformers' and the same checkpoint loaded from its directory`, async () => {
      const exp = expected(fixture);
      const loaded = await loadFromHub(repo, opts());
      const fromDir = await loadModel(nodeDirSource(join(FIXTURES, fixture)));
      try {
        expect(loaded.config.model_type).toBe(family);
        const got = await logitsOf(loaded.model, exp.ids);
        assertAllClose(got, exp.logits, { rtol: 1e-4, atol: 1e-4, label: `${repo} vs transformers` });
        const ref = await logitsOf(fromDir, exp.ids);
        expect(Buffer.from(got.buffer).equals(Buffer.from(ref.buffer)), 'hub == directory, bit for bit').toBe(true);
        expect(loaded.model.numParams()).toBe(fromDir.numParams());
        expect(loaded.tokenizer.vocabSize).toBe(1024);
        expect(loaded.generationConfig).toBeDefined();
      } finally {
        loaded.model.dispose();
        fromDir.dispose();
      }
    });
  }

  it('tied embeddings: the BF16 Llama has no lm_head tensor and uses the embedding; the sharded one keeps its own', async () => {
    const tied = await loadFromHub('tiny/llama-bf16', opts());
    const untied = await loadFromHub('tiny/llama-sharded', opts());
    try {
      expect(tied.config.tie_word_embeddings).toBe(true);
      expect(tied.model.params.has('lm_head.weight')).toBe(false);
      expect(untied.config.tie_word_embeddings).toBe(false);
      expect(untied.model.params.has('lm_head.weight')).toBe(true);
    } finally {
      tied.model.dispose();
      untied.model.dispose();
    }
  });

  it('tokenizer and template: GPT-2 style (eos from config.json, no template), tokenizer_config.json template, chat_template.jinja', async () => {
    const g = await loadFromHub('tiny/gpt2-f16', opts());
    const l = await loadFromHub('tiny/llama-bf16', opts());
    const s = await loadFromHub('tiny/llama-sharded', opts());
    try {
      expect(g.tokenizer.eosToken).toBe('<|endoftext|>'); // id 0 = config.json eos_token_id
      expect(g.template).toBeUndefined();
      expect(l.tokenizer.eosToken).toBe('<|im_end|>');
      const msgs = [{ role: 'user' as const, content: 'hi' }];
      expect(renderChat(l.template!, msgs)).toBe('<|im_start|>user\nhi<|im_end|>\n');
      expect(renderChat(s.template!, msgs)).toBe('<|im_start|>user\nhi<|im_end|>\n');
      expect(s.template!.name).toContain('chat_template.jinja');
      expect(l.generationConfig).toMatchObject({ max_new_tokens: 32, eos_token_id: 2 });
    } finally {
      for (const m of [g, l, s]) m.model.dispose();
    }
  });

  it('a revision with a slash is URL-encoded (refs/pr/1)', async () => {
    const src = hubSource('tiny/gpt2-f16', opts({ revision: 'refs/pr/1' }));
    expect(src.urlOf('config.json')).toBe(`${endpoint}/tiny/gpt2-f16/resolve/refs%2Fpr%2F1/config.json`);
    expect(JSON.parse(await src.readText('config.json')).model_type).toBe('gpt2');
    const err = await rejection(hubSource('tiny/gpt2-f16', opts({ revision: 'v9' })).read('config.json'));
    expect(err.message).toContain('/resolve/v9/config.json');
    expect(err.message).toContain('revision "v9" not found');
  });

  it('loadPretrained reads the same from a directory, a URL and a repo id', async () => {
    const exp = expected('gpt2-f16');
    // A fixture directory has no tokenizer: the error says so, naming the file.
    const bare = await rejection(loadPretrained(join(FIXTURES, 'llama-sharded'), opts()));
    expect(bare.message).toContain(`${join(FIXTURES, 'llama-sharded')}/tokenizer.json: missing tokenizer file`);
    const dir = await mkdtemp(join(tmpdir(), 'webtune-hub-'));
    const sink = nodeDirSink(dir);
    for (const [f, bytes] of hub.repos.get('tiny/gpt2-f16')!.files) await sink.write(f, bytes);
    const a = await loadPretrained(dir, opts());
    const b = await loadPretrained(`${endpoint}/tiny/gpt2-f16/resolve/main`, opts());
    const c = await loadPretrained('tiny/gpt2-f16', opts());
    try {
      const ref = await logitsOf(a.model, exp.ids);
      expect(await logitsOf(b.model, exp.ids)).toEqual(ref);
      expect(await logitsOf(c.model, exp.ids)).toEqual(ref);
      expect(a.source.name).toBe(dir);
    } finally {
      await rm(dir, { recursive: true, force: true });
      a.model.dispose();
      b.model.dispose();
      c.model.dispose();
    }
  });
});

describe('downloads: progress, cache, cancellation', () => {
  it('progress is monotone per file and reaches each file\'s size', async () => {
    const events: Array<[string, number, number | undefined]> = [];
    const m = await loadFromHub('tiny/llama-sharded', opts({ onProgress: (f: string, n: number, t: number | undefined) => events.push([f, n, t]) }));
    m.model.dispose();
    const files = hub.repos.get('tiny/llama-sharded')!.files;
    const seen = new Set(events.map((e) => e[0]));
    for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'chat_template.jinja', 'generation_config.json',
      'model.safetensors.index.json', 'model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors', 'model-00003-of-00003.safetensors']) {
      expect(seen.has(f), f).toBe(true);
      const mine = events.filter((e) => e[0] === f);
      const size = files.get(f)!.byteLength;
      for (let i = 1; i < mine.length; i++) expect(mine[i][1], `${f} monotone`).toBeGreaterThanOrEqual(mine[i - 1][1]);
      expect(mine.every((e) => e[2] === size), `${f} total`).toBe(true);
      expect(mine[mine.length - 1][1], `${f} reaches total`).toBe(size);
    }
    // Each file downloaded once per load (config.json is needed twice: read once).
    expect(events.filter((e) => e[0] === 'config.json' && e[1] === 0)).toHaveLength(1);
  });

  it('a second load from the cache needs no network; truncated and refused downloads are not cached', async () => {
    const cache = new MemoryHubCache();
    const first = await loadFromHub('tiny/gpt2-f16', opts({ cache }));
    first.model.dispose();
    const offline = (async () => { throw new TypeError('fetch failed (offline)'); }) as unknown as typeof fetch;
    const again = await loadFromHub('tiny/gpt2-f16', opts({ cache, fetch: offline }));
    const exp = expected('gpt2-f16');
    assertAllClose(await logitsOf(again.model, exp.ids), exp.logits, { rtol: 1e-4, atol: 1e-4, label: 'offline' });
    again.model.dispose();
    expect([...cache.files.keys()].every((k) => k.includes('/tiny/gpt2-f16/resolve/main/'))).toBe(true);
    // Without the cache, offline fails naming the URL.
    const err = await rejection(loadFromHub('tiny/gpt2-f16', opts({ fetch: offline })));
    expect(err.message).toContain(`${endpoint}/tiny/gpt2-f16/resolve/main/config.json: request failed`);

    const c2 = new MemoryHubCache();
    await rejection(loadFromHub('tiny/truncated', opts({ cache: c2 })));
    expect([...c2.files.keys()].some((k) => k.endsWith('model.safetensors'))).toBe(false);
    expect(c2.files.size).toBeGreaterThan(0); // config.json and the tokenizer files were complete
    await rejection(loadFromHub('tiny/gated', opts({ cache: c2 })));
    expect([...c2.files.keys()].some((k) => k.includes('tiny/gated'))).toBe(false);
    await clearHubCache(c2);
    expect(c2.files.size).toBe(0);
    expect(defaultHubCache()).toBeUndefined(); // Node: no Cache Storage
  });

  it('cancellation rejects with an AbortError naming the file, before or during a download', async () => {
    const ctrl = new AbortController();
    let started = false;
    const p = loadFromHub('tiny/slow', opts({
      signal: ctrl.signal,
      onProgress: (f: string, n: number) => { if (f === 'model.safetensors' && n > 0 && !started) { started = true; ctrl.abort(); } },
    }));
    const err = await rejection(p);
    expect(started).toBe(true);
    expect(err.name).toBe('AbortError');
    expect(err.message).toBe(`${endpoint}/tiny/slow/resolve/main/model.safetensors: download cancelled`);
    const before = await rejection(loadFromHub('tiny/gpt2-f16', opts({ signal: AbortSignal.abort() })));
    expect(before.name).toBe('AbortError');
    expect(before.message).toContain('config.json: download cancelled');
  });
});

describe('errors name the file and what to do', () => {
  const cases: Array<[string, () => Promise<unknown>, RegExp[]]> = [
    ['unknown repo (401 RepoNotFound)', () => loadFromHub('nobody/nothing', opts()),
      [/\/nobody\/nothing\/resolve\/main\/config\.json: HTTP 401/, /repository "nobody\/nothing" not found, or private: check the repo id/]],
    ['file not in the repo (404)', () => hubSource('tiny/gpt2-f16', opts()).read('adapter_config.json'),
      [/\/tiny\/gpt2-f16\/resolve\/main\/adapter_config\.json: HTTP 404/, /adapter_config\.json not found: check the repo id "tiny\/gpt2-f16" and revision "main", or this file is not in this repo/]],
    ['gated repo without a token (401)', () => loadFromHub('tiny/gated', opts()),
      [/\/tiny\/gated\/resolve\/main\/config\.json: HTTP 401/, /tiny\/gated is gated: accept its license at .*\/tiny\/gated while logged in, then pass an access token/]],
    ['gated repo with a wrong token', () => loadFromHub('tiny/gated', opts({ token: 'hf_wrong' })),
      [/config\.json: HTTP 401/, /the token given was refused/]],
    ['truncated download', () => loadFromHub('tiny/truncated', opts()),
      [/\/tiny\/truncated\/resolve\/main\/model\.safetensors: truncated download: got 5000 of \d+ bytes; retry/]],
    ['missing tokenizer', () => loadFromHub('tiny/no-tokenizer', opts()),
      [/\/tiny\/no-tokenizer\/resolve\/main\/tokenizer\.json: missing tokenizer file/, /it has vocab\.json, merges\.txt only: save a fast tokenizer/]],
    ['weights that do not match config.json', () => loadFromHub('tiny/mismatch', opts()),
      [/\/tiny\/mismatch\/resolve\/main\/model\.safetensors: tensor 'transformer\.h\.0\.mlp\.c_fc\.(weight|bias)': expected shape \[(32, )?96\] \(from config\.json\), got \[(32, )?128\]/]],
    ['RoPE scaling WebTune does not implement', () => loadFromHub('tiny/llama-yarn', opts()),
      [/\/tiny\/llama-yarn\/resolve\/main\/config\.json: field 'rope_scaling\.rope_type': "yarn" is not supported/]],
    ['an unsupported architecture (Qwen2 with sliding window)', () => loadFromHub('tiny/qwen2-sliding', opts()),
      [/\/tiny\/qwen2-sliding\/resolve\/main\/config\.json: field 'model_type': "qwen2" is not supported/]],
  ];
  for (const [what, run, patterns] of cases) {
    it(what, async () => {
      const err = await rejection(run());
      for (const p of patterns) expect(err.message).toMatch(p);
    });
  }

  it('a refused config downloads no weights; a gated repo loads with its token', async () => {
    expect(hub.count('model.safetensors', 'GET') > 0).toBe(true);
    const before = hub.log.filter((r) => r.path.startsWith('/tiny/llama-yarn/') || r.path.startsWith('/tiny/qwen2-sliding/'));
    expect(before.some((r) => r.path.endsWith('.safetensors'))).toBe(false);
    const m = await loadFromHub('tiny/gated', opts({ token: 'hf_secret' }));
    expect(m.config.model_type).toBe('llama');
    m.model.dispose();
  });

  it('repo ids are checked before any request', () => {
    for (const ok of ['openai-community/gpt2', 'HuggingFaceTB/SmolLM2-135M-Instruct', 'gpt2', 'a/b.c_d-e']) expect(() => checkRepoId(ok), ok).not.toThrow();
    for (const [bad, why] of [['', /non-empty/], ['https://huggingface.co/gpt2', /is a URL/], ['a/b/c', /more than one "\/"/],
      ['a/-b', /must start and end/], ['a/b.', /must start and end/], ['a/b--c', /"--"/], ['a b/c', /may only contain/], [`a/${'x'.repeat(97)}`, /96/]] as const) {
      expect(() => hubSource(bad, opts()), bad).toThrow(why);
    }
  });
});

describe('fetchHubModelInfo reads config.json and sizes only', () => {
  it('single file: size from HEAD; sharded: total_size from the index; no weight is downloaded', async () => {
    const gets = () => hub.log.filter((r) => r.method === 'GET' && r.path.endsWith('.safetensors')).length;
    const n0 = gets();
    const a = await fetchHubModelInfo('tiny/gpt2-f16', opts());
    expect(a.downloadBytes).toBe(hub.repos.get('tiny/gpt2-f16')!.files.get('model.safetensors')!.byteLength);
    expect(a.weightFiles).toEqual(['model.safetensors']);
    const b = await fetchHubModelInfo('tiny/llama-sharded', opts());
    expect(b.downloadBytes).toBe(155968); // metadata.total_size written by transformers
    expect(b.weightFiles).toEqual(['model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors', 'model-00003-of-00003.safetensors']);
    expect(b.config.model_type).toBe('llama');
    expect(gets()).toBe(n0);
    const plain = httpFileSource(`${endpoint}/tiny/gpt2-f16/resolve/main/`, { cache: false });
    expect(await plain.size('model.safetensors')).toBe(a.downloadBytes);
  });
});
