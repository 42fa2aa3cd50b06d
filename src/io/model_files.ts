/**
 * A trained model as one directory that transformers, PEFT and WebTune load back: the weights,
 * the LoRA adapter (beside the base weights, merged into them, or alone), and the tokenizer with
 * the chat template it was trained with and a generation config whose stop tokens end a turn.
 * The CLI (webtune train) and the demo save and load through these two calls.
 *
 *   config.json, model.safetensors                    the weights (saveModel)
 *   adapter_config.json, adapter_model.safetensors    the LoRA adapter (PEFT), unless merged
 *   tokenizer.json, tokenizer_config.json             with chat_template = the template trained with
 *   generation_config.json                            bos, eos (+ the template's end-of-turn token), pad
 *
 * @example
 *   await saveModelFiles(model, 'out/tuned', { adapter: 'merged', tokenizer, template });
 *   const again = await loadModelFiles('out/tuned');     // its adapter applied when the folder holds one
 */
import { loraState, mergeLora, unmergeLora, withAdaptersDisabled } from '../nn/lora.js';
import { openSink, openSource, type FileSink, type FileSource } from './files.js';
import { loadModel, saveModel } from './checkpoint.js';
import { saveAdapter, loadAdapter, saveMergedWeights, ADAPTER_CONFIG_FILE } from './peft.js';
import { endOfTurnMarker } from '../train/generate.js';
import type { Tokenizer } from '../data/tokenizer.js';
import type { ChatTemplate } from '../data/template.js';
import type { CausalLM, BindOptions } from '../../models/causal_lm.js';
import type { ModelConfig } from '../../models/config.js';

/**
 * Where a LoRA adapter goes: 'beside' the base weights (PEFT files next to config.json; the
 * default), 'merged' into the weights (W + scaling·B·A, the adapter stays attached to the model),
 * or the adapter 'only' (a PEFT directory for the base model it was trained on).
 */
export type AdapterLayout = 'beside' | 'merged' | 'only';

export interface SaveModelOptions {
  adapter?: AdapterLayout;
  /** Writes tokenizer.json, tokenizer_config.json and generation_config.json too. */
  tokenizer?: Tokenizer;
  /** The chat template trained with: tokenizer_config.json's chat_template, and the generation stop token. */
  template?: ChatTemplate;
}

/** Writes `model` (and its adapter, tokenizer, template) as a directory; see the module comment. */
export async function saveModelFiles(model: CausalLM, sink: FileSink | string, opts: SaveModelOptions = {}): Promise<void> {
  const out = openSink(sink);
  const layout = opts.adapter ?? 'beside';
  if (!loraState(model)) await saveModel(model, out);
  else if (layout === 'merged') {
    mergeLora(model);
    try {
      await saveMergedWeights(model, out);
    } finally {
      unmergeLora(model);
    }
  } else {
    // Modules to save train in place (the embedding): the base weights are their values with the
    // adapter switched off; the trained values go into the adapter.
    if (layout === 'beside') await withAdaptersDisabled(model, () => saveModel(model, out));
    await saveAdapter(model, out);
  }
  if (opts.tokenizer) await saveTokenizerFiles(out, opts.tokenizer, opts.template, model.config);
}

/** A model directory with its adapter applied when the directory holds one (adapter_config.json beside config.json). */
export async function loadModelFiles(source: FileSource | string, opts: BindOptions = {}): Promise<CausalLM> {
  const src = openSource(source);
  const m = await loadModel(src, opts);
  if (await src.exists(ADAPTER_CONFIG_FILE)) {
    try {
      await loadAdapter(m, src);
    } catch (e) {
      m.dispose();
      throw e;
    }
  }
  return m;
}

/**
 * tokenizer.json, tokenizer_config.json (chat_template = `template`'s source) and
 * generation_config.json (bos, eos and the template's end-of-turn token as stop tokens, pad).
 */
export async function saveTokenizerFiles(sink: FileSink | string, tok: Tokenizer, template: ChatTemplate | undefined, config: ModelConfig): Promise<void> {
  const out = openSink(sink);
  await out.write('tokenizer.json', JSON.stringify(tok.files.tokenizerJson, null, 2) + '\n');
  const cfg = template ? { ...tok.files.tokenizerConfig, chat_template: template.source } : tok.files.tokenizerConfig;
  await out.write('tokenizer_config.json', JSON.stringify(cfg, null, 2) + '\n');
  const stops = new Set<number>([tok.eosTokenId]);
  const marker = template ? endOfTurnMarker(template) : '';
  const markerId = marker ? tok.tokenToId(marker) : undefined;
  if (markerId !== undefined) stops.add(markerId);
  const gen = {
    bos_token_id: tok.bosTokenId ?? config.bos_token_id,
    eos_token_id: stops.size === 1 ? [...stops][0] : [...stops],
    pad_token_id: tok.padTokenId,
  };
  await out.write('generation_config.json', JSON.stringify(gen, null, 2) + '\n');
}
