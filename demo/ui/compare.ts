/**
 * Panel 7: before and after. The same held-out prompts (demo/data/test.jsonl) answered by the
 * model as it was before training and as it is now, greedy decoding, scored per family with
 * the library's evaluate(); and a chat with the tuned model, tokens streaming in.
 */
import type { CompareRow, FamilyScore } from '../protocol.js';
import { h, panel, replace, field } from './dom.js';

const pct = (s?: FamilyScore) => (s && s.n ? `${Math.round((100 * s.correct) / s.n)}% (${s.correct}/${s.n})` : '—');

export function comparePanel(actions: { compare(limit: number, maxNewTokens: number): void; chat(text: string, maxNewTokens: number, temperature: number): void; clearChat(): void }) {
  const limit = h('input', { id: 'cmp-limit', type: 'number', min: 1, max: 409, value: 27 }) as HTMLInputElement;
  const maxNew = h('input', { id: 'cmp-max-new', type: 'number', min: 1, max: 128, value: 24 }) as HTMLInputElement;
  const run = h('button', { id: 'cmp-run', type: 'button', class: 'primary', disabled: true, onclick: () => actions.compare(Number(limit.value) || 27, Number(maxNew.value) || 24) }, 'Compare before / after');
  const status = h('p', { id: 'cmp-status', 'data-state': 'idle', class: 'muted' }, 'Train a model (or load one), then compare.');
  const accuracy = h('table', { id: 'cmp-accuracy', class: 'grid' });
  const rowsBody = h('tbody', {});
  const rows = h('table', { id: 'cmp-rows', class: 'grid answers' }, h('thead', {}, h('tr', {}, h('th', {}, 'Family'), h('th', {}, 'Prompt'), h('th', {}, 'Expected'), h('th', {}, 'Before'), h('th', {}, 'After'))), rowsBody);
  const rowEls = new Map<number, { tr: HTMLElement; base: HTMLElement; tuned: HTMLElement }>();

  const log = h('div', { id: 'chat-log', class: 'chat-log', 'aria-live': 'polite' });
  const input = h('input', { id: 'chat-input', type: 'text', placeholder: 'Ask the tuned model, e.g. What is 9 plus 4?', size: 40 }) as HTMLInputElement;
  const temp = h('input', { id: 'chat-temp', type: 'number', min: 0, max: 2, step: 0.1, value: 0 }) as HTMLInputElement;
  const chatMax = h('input', { id: 'chat-max-new', type: 'number', min: 1, max: 256, value: 48 }) as HTMLInputElement;
  const send = h('button', { id: 'chat-send', type: 'submit', disabled: true }, 'Send');
  const form = h('form', { class: 'chat-form', onsubmit: (e: Event) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = '';
    actions.chat(text, Number(chatMax.value) || 48, Number(temp.value) || 0);
  } }, input, send, h('button', { type: 'button', onclick: () => { replace(log); actions.clearChat(); } }, 'Clear'));
  let streaming: HTMLElement | undefined;

  const { section } = panel('panel-compare', '7 · Before and after', [
    h('p', {}, 'The prompts come from the held-out test split: inputs the model never trained on, a third of them in phrasings it never saw. "Before" is the model as it was just before training started: after full fine-tuning, a snapshot of the weights taken then; after LoRA, the same model with its adapter switched off (the base weights never changed, so no copy is kept). "After" is the model now. Both answer greedily (always the most likely next token).'),
    h('p', {}, 'Each answer is scored by its task\'s rule: the number for arithmetic, the exact string for edits, the JSON fields for extraction, a refusal for harmful requests.'),
    h('p', {}, 'The chat uses the same template the model was trained with; temperature 0 is greedy, higher values sample.'),
  ],
  h('div', { class: 'row' }, field('Held-out prompts', limit), field('Max new tokens', maxNew), run), status,
  h('h3', {}, 'Accuracy per task family'), accuracy,
  h('h3', {}, 'Answers'), rows,
  h('h3', {}, 'Chat with the tuned model'), h('div', { class: 'row' }, field('Temperature', temp), field('Max new tokens', chatMax)), log, form);

  return {
    section,
    enable(on: boolean) { run.disabled = !on; send.disabled = !on; },
    started(total: number) {
      status.dataset.state = 'running';
      status.textContent = `Answering ${total} prompts…`;
      replace(rowsBody); replace(accuracy); rowEls.clear();
    },
    row(which: 'base' | 'tuned', r: CompareRow, done: number, total: number) {
      let el = rowEls.get(r.index);
      if (!el) {
        const base = h('td', { class: 'answer' }, '…'), tuned = h('td', { class: 'answer' }, '…');
        el = { tr: h('tr', {}, h('td', {}, r.family), h('td', { class: 'prompt' }, r.prompt), h('td', {}, r.expected), base, tuned), base, tuned };
        // Answers arrive in batches of equal prompt length, not in row order: keep the table in row order.
        const after = [...rowEls].filter(([i]) => i > r.index).sort((a, b) => a[0] - b[0])[0];
        rowsBody.insertBefore(el.tr, after ? after[1].tr : null);
        rowEls.set(r.index, el);
      }
      const cell = el[which];
      // Newlines shown as ↵ keep an untrained model's runs of blank lines from stretching the table.
      cell.textContent = r.output.trim() ? r.output.replace(/\n/g, '↵') : r.output ? `(only whitespace: ${JSON.stringify(r.output).slice(0, 40)})` : '(empty: stopped at once)';
      cell.className = `answer ${r.correct ? 'correct' : 'wrong'}`;
      cell.dataset.correct = r.correct ? '1' : '0';
      status.textContent = `Answered ${done} of ${total}…`;
    },
    done(base: Record<string, FamilyScore>, tuned: Record<string, FamilyScore>, baseOverall: number, tunedOverall: number) {
      status.dataset.state = 'done';
      status.dataset.baseOverall = String(baseOverall);
      status.dataset.tunedOverall = String(tunedOverall);
      status.textContent = Number.isNaN(baseOverall)
        ? `Done. Nothing tells what this model was before (it was loaded from a file, and carries no LoRA adapter to switch off), so only "after" is scored: ${Math.round(tunedOverall * 100)}%.`
        : `Done. Accuracy before ${Math.round(baseOverall * 100)}%, after ${Math.round(tunedOverall * 100)}%.`;
      const fams = [...new Set([...Object.keys(base), ...Object.keys(tuned)])].sort();
      replace(accuracy, h('thead', {}, h('tr', {}, h('th', {}, 'Family'), h('th', {}, 'Before'), h('th', {}, 'After'), h('th', {}, ''))),
        h('tbody', {}, ...fams.map((f) => {
          const a = tuned[f], b = base[f];
          const w = a && a.n ? (100 * a.correct) / a.n : 0;
          return h('tr', { 'data-family': f }, h('td', {}, f), h('td', { class: 'num' }, pct(b)), h('td', { class: 'num' }, pct(a)),
            h('td', { class: 'barcell' }, h('span', { class: 'bar', style: `width:${w}%` })));
        })));
    },
    failed(message: string) { status.dataset.state = 'failed'; status.textContent = message; },
    chatUser(text: string) {
      log.append(h('div', { class: 'msg role-user' }, h('b', {}, 'you: '), text));
      streaming = h('span', { class: 'streaming' });
      log.append(h('div', { class: 'msg role-assistant' }, h('b', {}, 'model: '), streaming));
      log.scrollTop = log.scrollHeight;
    },
    chatToken(text: string) { if (streaming) { streaming.textContent += text; log.scrollTop = log.scrollHeight; } },
    chatDone(text: string, tokens: number, ms: number) {
      if (streaming) {
        streaming.textContent = text || '(empty answer)';
        streaming.classList.remove('streaming');
        streaming.parentElement?.append(h('small', { class: 'muted' }, ` ${tokens} tokens, ${Math.round((tokens / ms) * 1000)} tokens/s`));
      }
      streaming = undefined;
    },
    chatError(message: string) {
      if (streaming) { streaming.textContent = message; streaming.classList.add('error'); }
      streaming = undefined;
    },
  };
}
