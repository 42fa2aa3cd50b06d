/**
 * Panel 3: the conversation as tokens of the bundled tokenizer, each coloured by whether it
 * carries loss (label != -100) under each mask mode, with the count of trained positions.
 */
import type { RenderReply } from '../protocol.js';
import { h, panel, replace } from './dom.js';

const MODE_TEXT: Record<string, string> = {
  assistant: 'every assistant turn and its end-of-turn token (TRL assistant_only_loss)',
  last: 'only the final assistant turn; earlier answers are context',
  unroll: 'one example per assistant turn: the conversation up to that turn, only that turn trained',
  completion: 'the completion of a prompt/completion row; on a chat, the final assistant turn',
  all: 'every token, prompts included (plain language modelling)',
};

/** Whitespace made visible inside a token chip. */
const show = (s: string) => s.replace(/\n/g, '↵').replace(/\t/g, '→');

export function maskingPanel() {
  const views = h('div', { id: 'mask-views' });
  const { section } = panel('panel-masking', '3 · Loss masking', [
    h('p', {}, 'Fine-tuning should teach the model to answer, not to write the user\'s questions: the loss is computed only on the tokens shown in green. The others are still read (they are the context) but their labels are -100.'),
    h('p', {}, 'The end-of-turn token after each answer is trained too: that is how the model learns to stop talking. Without it, generation runs on into an invented next turn.'),
    h('p', {}, 'The count is what the loss divides by (the loss predicts token t+1 from t, so the very first token can never count).'),
  ], h('p', { class: 'legend' }, h('span', { class: 'tok trained' }, 'trained'), ' ', h('span', { class: 'tok' }, 'context (label -100)'), ' ', h('span', { class: 'tok special' }, 'special token')), views);

  return {
    section,
    show(r: RenderReply) {
      if (r.error) {
        replace(views, h('p', { class: 'error' }, 'The template failed, so there is nothing to tokenize (see the template builder).'));
        return;
      }
      replace(views, ...r.masks.map((m) => {
        const trained = m.examples.reduce((n, e) => n + e.trained, 0);
        const total = m.examples.reduce((n, e) => n + e.total, 0);
        return h('div', { class: 'mask-mode', 'data-mode': m.mode, 'data-trained-count': trained, 'data-total': total },
          h('h3', {}, m.mode, h('small', {}, ` — ${MODE_TEXT[m.mode] ?? ''}`)),
          h('p', { class: 'count' }, m.examples.length > 1 ? `${m.examples.length} examples, ` : '', `${trained} of ${total} tokens trained`),
          m.error ? h('p', { class: 'warn' }, m.error) : null,
          ...m.examples.map((e, k) => h('div', { class: 'tokens' },
            m.examples.length > 1 ? h('span', { class: 'example-label' }, `example ${k + 1}: ${e.trained} trained`) : null,
            ...e.tokens.map((t) => h('span', {
              class: `tok${t.trained ? ' trained' : ''}${t.special ? ' special' : ''}`,
              title: `id ${t.id}${t.trained ? ' · trained' : ' · label -100'}`,
              'data-trained': t.trained ? '1' : '0',
            }, show(t.text))))));
      }));
    },
  };
}
