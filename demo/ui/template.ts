/**
 * Panel 2: the template builder. The conversation (system prompt + turns) and the chat template
 * are edited here; every change is rendered by the worker (the library's renderWithSpans) and
 * shown with special tokens highlighted and the assistant turns outlined. The masking panel
 * draws the same render, tokenized.
 */
import { CALCULATOR_TOOL, type Message, type ToolCall } from '../../src/index.js';
import type { RenderReply, TemplateSpec } from '../protocol.js';
import { h, panel, replace, field } from './dom.js';

const BUILTINS = ['chatml_tools', 'chatml', 'zephyr', 'tulu', 'llama3', 'mistral', 'gemma', 'phi3'];
const ROLES: Message['role'][] = ['user', 'assistant', 'system', 'tool'];

/** The conversation, the template and the tool schemas (the template's `tools`; absent when none). */
export interface TemplateState {
  template: TemplateSpec; messages: Message[]; tools?: Record<string, unknown>[];
  /** Render as for inference: the template's add_generation_prompt appends the opening of the assistant's turn. */
  addGenerationPrompt?: boolean;
}

/** A calculator exchange: the question, the assistant's call, the tool's result, the answer. */
const TOOL_EXCHANGE: Message[] = [
  { role: 'user', content: 'What is 12 times 7?' },
  { role: 'assistant', content: '', tool_calls: [{ type: 'function', function: { name: 'calculator', arguments: { a: 12, op: '*', b: 7 } } }] },
  { role: 'tool', name: 'calculator', content: '84' },
  { role: 'assistant', content: '84' },
];

export function templatePanel(onChange: (s: TemplateState) => void) {
  const system = h('textarea', { id: 'tpl-system', rows: 2 }, 'You are a helpful assistant. Keep answers short.') as HTMLTextAreaElement;
  let turns: Message[] = [
    { role: 'user', content: 'What is 7 plus 5?' },
    { role: 'assistant', content: '12' },
    { role: 'user', content: 'And doubled?' },
    { role: 'assistant', content: '24' },
  ];
  const turnList = h('ol', { id: 'tpl-turns', class: 'turns' });
  let tools: Record<string, unknown>[] = [];
  const toolsBox = h('textarea', { id: 'tpl-tools', rows: 3, spellcheck: false, placeholder: '[] (JSON schemas of the tools the assistant may call)' }) as HTMLTextAreaElement;
  const toolsError = h('p', { id: 'tpl-tools-error', class: 'error', hidden: true });
  const pick = h('select', { id: 'tpl-builtin' }, ...BUILTINS.map((n) => h('option', { value: n }, n)),
    h('option', { value: 'jinja' }, 'custom Jinja…'), h('option', { value: 'tokenizer_config' }, 'from tokenizer_config.json…')) as HTMLSelectElement;
  const jinja = h('textarea', { id: 'tpl-jinja', rows: 6, spellcheck: false, placeholder: "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}" }) as HTMLTextAreaElement;
  const bos = h('input', { id: 'tpl-bos', value: '<|endoftext|>', size: 14 }) as HTMLInputElement;
  const eos = h('input', { id: 'tpl-eos', value: '<|endoftext|>', size: 14 }) as HTMLInputElement;
  const customBox = h('div', { class: 'custom-template', hidden: true }, field('Jinja template', jinja), h('div', { class: 'row' }, field('bos_token', bos), field('eos_token', eos)));
  const cfgFile = h('input', { id: 'tpl-config-file', type: 'file', accept: '.json,application/json' }) as HTMLInputElement;
  const cfgBox = h('div', { hidden: true }, field('tokenizer_config.json (its chat_template, bos_token and eos_token are used)', cfgFile));
  let cfgText = '', cfgName = 'tokenizer_config.json';

  const output = h('pre', { id: 'tpl-output', class: 'rendered' });
  const error = h('p', { id: 'tpl-error', class: 'error', hidden: true });
  const legend = h('p', { class: 'legend' }, h('span', { class: 'special' }, 'special token'), ' ', h('span', { class: 'turn-assistant' }, 'assistant turn (content or tool call + end-of-turn)'), ' ', h('span', { class: 'turn-tool' }, 'tool result (context, never trained)'));

  const modelOption = h('option', { value: 'model', hidden: true, disabled: true }, 'the loaded model\'s own') as HTMLOptionElement;
  pick.prepend(modelOption);
  const modelSource = h('pre', { id: 'tpl-model-source', class: 'template-source' });
  const modelBox = h('details', { class: 'model-template', hidden: true }, h('summary', { id: 'tpl-model-name' }, 'The model\'s chat template'), modelSource);
  const nameLine = h('p', { id: 'tpl-name', class: 'muted' });

  const spec = (): TemplateSpec => pick.value === 'model' ? { kind: 'model' } : pick.value === 'jinja' ? { kind: 'jinja', source: jinja.value, bosToken: bos.value, eosToken: eos.value }
    : pick.value === 'tokenizer_config' ? { kind: 'tokenizer_config', json: cfgText || '{}', fileName: cfgName }
    : { kind: 'builtin', name: pick.value };
  const messages = (): Message[] => [...(system.value.trim() ? [{ role: 'system' as const, content: system.value }] : []), ...turns];
  const genPrompt = h('input', { id: 'tpl-gen-prompt', type: 'checkbox' }) as HTMLInputElement;
  const state = (): TemplateState => ({ template: spec(), messages: messages(), ...(tools.length ? { tools } : {}), ...(genPrompt.checked ? { addGenerationPrompt: true } : {}) });
  const changed = () => onChange(state());

  /** Editors for the tool calls of assistant turn i: the function name and its JSON arguments. */
  function callEditors(i: number): HTMLElement {
    const calls = turns[i].tool_calls ?? [];
    const setCalls = (next: ToolCall[]) => {
      const { tool_calls: _, ...rest } = turns[i];
      turns[i] = next.length ? { ...rest, tool_calls: next } : rest;
    };
    return h('div', { class: 'tool-calls' }, ...calls.map((c, k) => {
      const args = h('input', { class: 'call-arguments', value: JSON.stringify(c.function.arguments), 'aria-label': `arguments of call ${k + 1} of turn ${i + 1}`, size: 28 }) as HTMLInputElement;
      args.addEventListener('input', () => {
        try {
          const parsed = JSON.parse(args.value) as unknown;
          if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
          args.classList.remove('invalid');
          setCalls(calls.map((x, j) => (j === k ? { ...x, function: { ...x.function, arguments: parsed as Record<string, unknown> } } : x)));
          changed();
        } catch {
          args.classList.add('invalid'); // the last valid arguments stay until this parses as a JSON object
        }
      });
      const name = h('input', { class: 'call-name', value: c.function.name, 'aria-label': `function of call ${k + 1} of turn ${i + 1}`, size: 12,
        oninput: (e: Event) => { setCalls(calls.map((x, j) => (j === k ? { ...x, function: { ...x.function, name: (e.target as HTMLInputElement).value } } : x))); changed(); } });
      return h('div', { class: 'tool-call' }, 'calls ', name, ' with ', args,
        h('button', { type: 'button', title: 'remove this call', 'aria-label': 'remove call', onclick: () => { setCalls(calls.filter((_, j) => j !== k)); drawTurns(); changed(); } }, '✕'));
    }), h('button', { type: 'button', class: 'add-call', onclick: () => {
      setCalls([...calls, { type: 'function', function: { name: 'calculator', arguments: { a: 1, op: '+', b: 2 } } }]);
      if (!tools.length) setTools([CALCULATOR_TOOL as unknown as Record<string, unknown>]);
      drawTurns(); changed();
    } }, '+ tool call'));
  }
  function setTools(next: Record<string, unknown>[]) {
    tools = next;
    toolsBox.value = next.length ? JSON.stringify(next) : '';
    toolsError.hidden = true;
  }
  toolsBox.addEventListener('input', () => {
    try {
      const parsed = toolsBox.value.trim() ? JSON.parse(toolsBox.value) as unknown : [];
      if (!Array.isArray(parsed) || parsed.some((t) => t === null || typeof t !== 'object' || Array.isArray(t))) throw new Error('expected a list of tool schema objects');
      tools = parsed as Record<string, unknown>[];
      toolsError.hidden = true;
      changed();
    } catch (e) {
      toolsError.hidden = false;
      toolsError.textContent = `Tools: ${(e as Error).message}`;
    }
  });

  function drawTurns() {
    replace(turnList, ...turns.map((t, i) => {
      const role = h('select', { class: 'turn-role', 'aria-label': `role of turn ${i + 1}`, onchange: (e: Event) => { turns[i] = { ...turns[i], role: (e.target as HTMLSelectElement).value as Message['role'] }; changed(); } },
        ...ROLES.map((r) => h('option', { value: r, selected: r === t.role }, r)));
      const text = h('textarea', { class: 'turn-content', rows: 1, 'aria-label': `content of turn ${i + 1}`, oninput: (e: Event) => { turns[i] = { ...turns[i], content: (e.target as HTMLTextAreaElement).value }; changed(); } }, t.content);
      const move = (d: number) => () => {
        const j = i + d;
        if (j < 0 || j >= turns.length) return;
        [turns[i], turns[j]] = [turns[j], turns[i]];
        drawTurns(); changed();
      };
      return h('li', { class: `turn role-${t.role}` }, role, h('div', {}, text, t.role === 'assistant' ? callEditors(i) : null),
        h('span', { class: 'turn-buttons' },
          h('button', { type: 'button', title: 'move up', 'aria-label': 'move up', onclick: move(-1), disabled: i === 0 }, '↑'),
          h('button', { type: 'button', title: 'move down', 'aria-label': 'move down', onclick: move(1), disabled: i === turns.length - 1 }, '↓'),
          h('button', { type: 'button', title: 'remove', 'aria-label': 'remove', class: 'turn-remove', onclick: () => { turns.splice(i, 1); drawTurns(); changed(); } }, '✕')));
    }));
  }
  const addTurn = h('button', { id: 'tpl-add-turn', type: 'button', onclick: () => {
    const last = turns[turns.length - 1]?.role;
    turns.push({ role: last === 'user' ? 'assistant' : 'user', content: '' });
    drawTurns(); changed();
  } }, '+ add turn');
  const addExchange = h('button', { id: 'tpl-add-tool-exchange', type: 'button', onclick: () => {
    turns.push(...TOOL_EXCHANGE.map((m) => structuredClone(m)));
    if (!tools.length) setTools([CALCULATOR_TOOL as unknown as Record<string, unknown>]);
    drawTurns(); changed();
  } }, '+ tool exchange (call, result, answer)');

  pick.addEventListener('change', () => {
    customBox.hidden = pick.value !== 'jinja';
    cfgBox.hidden = pick.value !== 'tokenizer_config';
    modelBox.hidden = pick.value !== 'model';
    if (pick.value === 'jinja' && !jinja.value) jinja.value = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
    changed();
  });
  for (const el of [system, jinja, bos, eos]) el.addEventListener('input', changed);
  cfgFile.addEventListener('change', async () => {
    const f = cfgFile.files?.[0];
    if (!f) return;
    cfgText = await f.text();
    cfgName = f.name;
    changed();
  });
  drawTurns();
  genPrompt.addEventListener('change', () => changed());

  const { section } = panel('panel-template', '2 · Template builder', [
    h('p', {}, 'A chat model sees one long string. The chat template (Jinja, the same language transformers uses) turns the conversation into that string, with special tokens marking where each turn starts and ends.'),
    h('p', {}, 'Train and chat with the same template: a model tuned on ChatML markers has never seen Llama 3 headers, so at inference time a different template is a different language to it.'),
    h('p', {}, 'At inference the conversation ends with the user\'s turn, and the template is rendered with add_generation_prompt=True: it appends the opening of the assistant\'s turn (for ChatML "<|im_start|>assistant\\n"), so the model\'s next tokens are its answer. Training renders without it: the assistant\'s turns are already in the text.'),
    h('p', {}, 'Some templates refuse conversations they were not made for (Gemma and Mistral demand alternating user/assistant turns): try putting two user turns in a row.'),
  ],
  h('div', { class: 'row' }, field('Template', pick), legend, h('label', { class: 'field' }, genPrompt, ' add_generation_prompt (render as for inference)')),
  customBox, cfgBox, modelBox,
  field('System prompt (empty: none)', system),
  h('div', { class: 'field-label' }, 'Turns'), turnList, h('div', { class: 'row' }, addTurn, addExchange),
  field('Tools (JSON schemas, passed to the template as `tools`; empty: none)', toolsBox), toolsError,
  h('h3', {}, 'Rendered conversation'), nameLine, error, output);

  return {
    section,
    state,
    /** A base model was loaded: offer (and pick) its own chat template, or say it has none. */
    useModel(name: string, t: { name: string; source: string } | undefined) {
      modelOption.hidden = !t;
      modelOption.disabled = !t;
      modelOption.textContent = t ? `the loaded model's own (${name})` : 'the loaded model\'s own';
      if (t) {
        pick.value = 'model';
        modelSource.textContent = t.source;
        (modelBox.querySelector('summary') as HTMLElement).textContent = `The chat template of ${name} (${t.name})`;
      } else if (pick.value === 'model') pick.value = 'chatml';
      pick.dispatchEvent(new Event('change'));
    },
    show(r: RenderReply) {
      nameLine.textContent = r.templateName ? `Template: ${r.templateName}` : '';
      nameLine.dataset.template = r.templateName;
      error.hidden = !r.error;
      error.textContent = r.error ? `Template error: ${r.error}` : '';
      output.dataset.hasError = r.error ? '1' : '0';
      output.hidden = !!r.error;
      if (r.error) { replace(output); return; }
      // Split the text at every special-token and assistant-span boundary; each piece is a text node.
      const cuts = new Set<number>([0, r.text.length]);
      for (const [a, b] of r.specials) { cuts.add(a); cuts.add(b); }
      const assistant = r.turns.filter((t) => t.role === 'assistant');
      const toolResults = r.turns.filter((t) => t.role === 'tool');
      for (const t of [...assistant, ...toolResults]) { cuts.add(t.start); cuts.add(t.trainEnd); }
      if (r.generationPrompt) { cuts.add(r.generationPrompt[0]); cuts.add(r.generationPrompt[1]); }
      const points = [...cuts].sort((a, b) => a - b);
      const pieces: Node[] = [];
      for (let i = 0; i + 1 < points.length; i++) {
        const [a, b] = [points[i], points[i + 1]];
        const special = r.specials.some(([s, e]) => a >= s && b <= e);
        const inAssistant = assistant.some((t) => a >= t.start && b <= t.trainEnd);
        const inTool = toolResults.some((t) => a >= t.start && b <= t.end);
        const gen = !!r.generationPrompt && a >= r.generationPrompt[0] && b <= r.generationPrompt[1];
        pieces.push(h('span', { class: [special ? 'special' : '', inAssistant ? 'turn-assistant' : '', inTool ? 'turn-tool' : '', gen ? 'generation-prompt' : ''].join(' ').trim() || undefined }, r.text.slice(a, b)));
      }
      replace(output, ...pieces);
    },
  };
}
