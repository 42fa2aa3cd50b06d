/**
 * The page's one-click experiments, one per lesson: arms that differ in one setting of
 * TrainSettings (dotted paths), run over seeds by the experiments panel (src/lab plans them and
 * judges the result). Which metric each is judged on: eval loss, unless the arms change which
 * tokens the loss counts (then eval losses are not comparable and held-out accuracy is used).
 */
import type { Experiment, ExperimentMetric } from '../../src/index.js';

export type PageExperiment = Experiment & { metric: ExperimentMetric };

/** The experiments for a dataset whose families have these mixture weights. */
export function pageExperiments(weights: Record<string, number>): PageExperiment[] {
  const families = Object.keys(weights);
  const first = families[0] ?? 'arithmetic';
  const only = Object.fromEntries(families.map((f) => [f, f === first ? 1 : 0]));
  const moved = { ...weights, [first]: (weights[first] || 1) * 4 };
  return [
    { id: 'mask', title: 'Loss on assistant tokens vs on every token', setting: 'mask', metric: 'accuracy_after',
      lesson: 'Training on the prompts too spends capacity on predicting questions; the model should answer better with the assistant mask.',
      arms: [{ label: 'assistant', set: { mask: 'assistant' } }, { label: 'all', set: { mask: 'all' } }] },
    { id: 'turns', title: 'All assistant turns vs the last vs unrolled', setting: 'mask', metric: 'accuracy_after',
      lesson: 'Multi-turn rows: train every answer, only the last, or one example per answer.',
      arms: [{ label: 'assistant', set: { mask: 'assistant' } }, { label: 'last', set: { mask: 'last' } }, { label: 'unroll', set: { mask: 'unroll' } }] },
    { id: 'neftune', title: 'NEFTune off vs on', setting: 'neftune.enabled', metric: 'eval_loss',
      lesson: 'Noise on the input embeddings during training only: does it change the held-out loss beyond seed noise?',
      arms: [{ label: 'off', set: { 'neftune.enabled': false } }, { label: 'on (alpha 5)', set: { 'neftune.enabled': true, 'neftune.alpha': 5 } }] },
    { id: 'lora', title: 'Full fine-tuning vs LoRA', setting: 'lora.enabled', metric: 'eval_loss',
      lesson: 'LoRA trains a small fraction of the numbers: how much eval loss does that cost on this model?',
      arms: [{ label: 'full', set: { 'lora.enabled': false } }, { label: 'LoRA', set: { 'lora.enabled': true } }] },
    { id: 'family', title: `One task family (${first}) vs the whole mixture`, setting: 'weights', metric: 'accuracy_after',
      lesson: 'A model tuned on one family is judged on all of them: what does the mixture buy?',
      arms: [{ label: 'mixture', set: { weights } }, { label: first, set: { weights: only } }] },
    { id: 'weight', title: `Mixture weight of ${first} x4`, setting: `weights.${first}`, metric: 'accuracy_after',
      lesson: 'Moving one weight shifts what the batches hold: does that family improve, and at whose cost?',
      arms: [{ label: 'as set', set: { weights } }, { label: `${first} x4`, set: { weights: moved } }] },
  ];
}
