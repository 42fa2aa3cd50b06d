/** Panel 9: a five-question self-check on the ideas the page demonstrates, with feedback. */
import { h, panel } from './dom.js';

interface Question { q: string; choices: string[]; answer: number; why: string }

const QUESTIONS: Question[] = [
  {
    q: 'You fine-tune with the ChatML template and then chat with the model through the Llama 3 template. What happens?',
    choices: [
      'Nothing: the template is only formatting, the model reads the words.',
      'The model sees markers it never trained on, so it no longer recognises where its turn starts or when to stop.',
      'The tokenizer refuses the unknown markers with an error.',
    ],
    answer: 1,
    why: 'The template is part of what the model learned: its markers tell it whose turn it is and when an answer ends. Change them and you are speaking a different format to it.',
  },
  {
    q: 'Why are the user\'s tokens masked out of the loss (labels -100)?',
    choices: [
      'To save memory: masked tokens are not read by the model.',
      'Because the tokenizer cannot encode user text.',
      'So the model spends its capacity learning to answer, not to predict the questions people ask.',
    ],
    answer: 2,
    why: 'Masked tokens are still read as context; they just add nothing to the loss, so the gradient comes only from the answers (and their end-of-turn token).',
  },
  {
    q: 'What does the "unroll" mask mode do with a conversation that has three assistant turns?',
    choices: [
      'Makes three examples, each the conversation up to one assistant turn, with only that turn trained.',
      'Trains all three turns in one example.',
      'Trains only the last turn and drops the rest.',
    ],
    answer: 0,
    why: 'Unrolling gives each answer its own example with exactly the context that preceded it, as it will be at inference time.',
  },
  {
    q: 'What does LoRA change in the model?',
    choices: [
      'It fine-tunes every weight, but in lower precision.',
      'It removes layers to make the model smaller.',
      'It freezes the weights and learns a low-rank update B·A (scaled by alpha/r) added to chosen layers.',
    ],
    answer: 2,
    why: 'Only the small A (r×in) and B (out×r) matrices train; the base stays frozen, so the adapter is tiny and can be merged or swapped.',
  },
  {
    q: 'What does NEFTune do?',
    choices: [
      'Adds noise to the model\'s answers at generation time.',
      'Adds uniform noise to the input embeddings while training, scaled by alpha/√(L·d).',
      'Randomly drops training examples.',
    ],
    answer: 1,
    why: 'The noise is applied in training only; at inference the embeddings are clean. It acts as a regulariser that often makes instruction-tuned answers less brittle.',
  },
];

export function quizPanel() {
  const form = h('form', { id: 'quiz', onsubmit: (e: Event) => { e.preventDefault(); check(); } });
  const score = h('p', { id: 'quiz-score', 'aria-live': 'polite' });
  const feedback: HTMLElement[] = [];
  QUESTIONS.forEach((q, i) => {
    const fb = h('p', { class: 'feedback', hidden: true });
    feedback.push(fb);
    form.append(h('fieldset', { class: 'question' }, h('legend', {}, `${i + 1}. ${q.q}`),
      ...q.choices.map((c, j) => h('label', { class: 'choice' }, h('input', { type: 'radio', name: `q${i}`, value: j }), ` ${c}`)), fb));
  });
  form.append(h('button', { type: 'submit', class: 'primary' }, 'Check my answers'), score);

  function check() {
    let right = 0;
    QUESTIONS.forEach((q, i) => {
      const picked = form.querySelector<HTMLInputElement>(`input[name="q${i}"]:checked`);
      const fb = feedback[i];
      fb.hidden = false;
      if (!picked) { fb.className = 'feedback warn'; fb.textContent = 'Not answered. ' + q.why; return; }
      const ok = Number(picked.value) === q.answer;
      if (ok) right++;
      fb.className = `feedback ${ok ? 'ok' : 'error'}`;
      fb.textContent = `${ok ? 'Right.' : `Not quite: the answer is "${q.choices[q.answer]}"`} ${q.why}`;
    });
    score.textContent = `${right} of ${QUESTIONS.length} right.`;
  }

  const { section } = panel('panel-quiz', '9 · Check yourself', [
    h('p', {}, 'Five questions on the ideas behind this page. Answer, then check: each answer comes with why.'),
  ], form);
  return { section };
}
