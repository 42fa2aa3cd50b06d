/**
 * The template builder and masking visualiser: a conversation rendered with a chat template,
 * its turns and special tokens located in the text, and the tokens each mask mode trains.
 */
import { labelExample, countTrainedLabels, renderWithSpans, renderChat, MASK_MODES, IGNORE_INDEX, type ChatTemplate, type Example, type Message } from '../../../src/index.js';
import type { MaskView, Reply, TemplateSpec } from '../../protocol.js';
import { post, type Handlers, type WorkerState } from '../state.js';

/** [start, end) ranges of the text that are special tokens of the tokenizer or the template's bos/eos. */
function specialRanges(s: WorkerState, text: string, t: ChatTemplate): Array<[number, number]> {
  const marks = new Set([...s.tokenizer.specialTokens, t.bosToken, t.eosToken].filter((m) => m));
  const out: Array<[number, number]> = [];
  for (const m of marks) for (let i = text.indexOf(m); i >= 0; i = text.indexOf(m, i + m.length)) out.push([i, i + m.length]);
  return out.sort((a, b) => a[0] - b[0]);
}

function render(s: WorkerState, id: number, spec: TemplateSpec, messages: Message[], tools?: Record<string, unknown>[], addGenerationPrompt = false): Reply {
  let t: ChatTemplate;
  try {
    t = s.templateOf(spec);
  } catch (e) {
    return { status: 'rendered', id, text: '', specials: [], turns: [], error: (e as Error).message, masks: [], templateName: '' };
  }
  let rendered;
  try {
    rendered = renderWithSpans(t, messages, { tools: tools ?? null });
  } catch (e) {
    return { status: 'rendered', id, text: '', specials: [], turns: [], error: (e as Error).message, masks: [], templateName: t.name };
  }
  const tokenizer = s.tokenizer;
  const specials = new Set(tokenizer.specialTokens);
  const ex: Example = { format: 'messages', messages, ...(tools ? { tools } : {}), meta: {} };
  const masks: MaskView[] = MASK_MODES.map((mode) => {
    try {
      const r = labelExample(ex, t, tokenizer, { mask: mode });
      const view: MaskView = {
        mode,
        examples: r.examples.map((e) => ({
          tokens: e.inputIds.map((tid, i) => {
            const piece = tokenizer.idToToken(tid);
            return { id: tid, text: specials.has(piece) ? piece : tokenizer.decode([tid]), special: specials.has(piece), trained: e.labels[i] !== IGNORE_INDEX };
          }),
          trained: countTrainedLabels(e.labels), total: e.inputIds.length,
        })),
      };
      if (r.dropped.length) view.error = r.dropped.map((d) => `${d.reason}: ${d.detail}`).join('; ');
      return view;
    } catch (e) {
      return { mode, examples: [], error: (e as Error).message };
    }
  });
  // add_generation_prompt only appends to the training rendering: its spans stay where they are.
  let text = rendered.text;
  let generationPrompt: [number, number] | undefined;
  if (addGenerationPrompt) {
    try {
      const full = renderChat(t, messages, { tools: tools ?? null, addGenerationPrompt: true });
      if (full.startsWith(text)) { generationPrompt = [text.length, full.length]; text = full; }
    } catch { /* the template rendered without it; keep that */ }
  }
  return { status: 'rendered', id, text, specials: specialRanges(s, text, t), turns: rendered.turns, masks, templateName: t.name, generationPrompt };
}

export const templateHandlers: Handlers<'render'> = {
  render(msg, s) {
    post(render(s, msg.id, msg.template, msg.messages, msg.tools, msg.addGenerationPrompt));
  },
};
