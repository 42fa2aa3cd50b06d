/**
 * `webtune forward`: logits, loss and gradients of a checkpoint on given inputs, written in the
 * formats the Python side reads, so any number WebTune computes can be checked against
 * transformers.
 *
 *   webtune forward --model ckpt/ --inputs batch.json --out out/ [--grads] [--adapter dir/] [--backend cpu]
 *
 * batch.json: {"input_ids": [[...], ...], "labels": [[...]]?, "attention_mask": [[...]]?, "position_ids": [[...]]?}
 * (rows of equal length; labels are unshifted with -100 for untrained positions; attention_mask is
 * 0/1 or segment ids 1, 2, ... for packed rows). Writes:
 *   out/logits.safetensors   one F32 tensor "logits" [B, T, V]
 *   out/loss.json            {"loss": mean over trained positions, "rows": [{"sum", "count"}, ...]}  (with labels)
 *   out/grads.safetensors    d loss / d parameter for every trainable parameter, under its HF name  (with --grads);
 *                            with --adapter only the adapter's parameters, under PEFT's saved names
 *                            (base_model.model.<module path>.lora_A.weight, ...)
 */
import * as tf from '@tensorflow/tfjs';
import { parseFlags, CliError } from './args.js';
import { initBackend, describeBackend, type BackendName } from '../backend/index.js';
import { loadModel, loadAdapter, writeSafetensors, openSink, type WritableTensor } from '../io/index.js';
import { maskedCrossEntropy, countTrained, IGNORE_INDEX } from '../train/loss.js';
import type { CausalLM } from '../../models/causal_lm.js';

const SPEC = {
  model: { type: 'string', required: true, help: 'checkpoint directory (config.json + model.safetensors)' },
  inputs: { type: 'string', required: true, help: 'JSON file: {"input_ids": [[...]], "labels"?, "attention_mask"?, "position_ids"?}' },
  out: { type: 'string', required: true, help: 'directory for logits.safetensors, loss.json, grads.safetensors' },
  backend: { type: 'string', help: 'cpu or webgpu (default: webgpu, announced fallback to cpu)' },
  grads: { type: 'boolean', help: 'also write the gradient of the mean loss for every trainable parameter (needs labels)' },
  adapter: { type: 'string', help: 'PEFT LoRA adapter directory applied to the model (then --grads covers the adapter only, under PEFT names)' },
} as const;

/** The batch read from --inputs, validated against the model. */
export interface ForwardInputs {
  B: number;
  T: number;
  inputIds: Int32Array;
  labels?: Int32Array;
  attentionMask?: Int32Array;
  positionIds?: Int32Array;
}

const FIELDS = ['input_ids', 'labels', 'attention_mask', 'position_ids'] as const;
type Field = (typeof FIELDS)[number];

/**
 * Checks the inputs JSON: equal-length integer rows, ids in the vocabulary, labels -100 or in
 * the vocabulary, masks >= 0, positions in range. Errors name the file, field, row and column.
 */
export function parseForwardInputs(json: unknown, file: string, vocabSize: number, maxPositions: number): ForwardInputs {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new CliError(`${file}: must be a JSON object with "input_ids".`);
  const obj = json as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    if (!(FIELDS as readonly string[]).includes(key)) throw new CliError(`${file}: unknown field "${key}"; expected ${FIELDS.join(', ')}.`);
  }
  if (obj.input_ids === undefined) throw new CliError(`${file}: field "input_ids" is required (a list of rows of token ids).`);
  let B = 0, T = 0;
  const read = (field: Field, check: (v: number) => string | null): Int32Array | undefined => {
    const rows = obj[field];
    if (rows === undefined || rows === null) return undefined;
    if (!Array.isArray(rows) || rows.length === 0) throw new CliError(`${file}: field "${field}" must be a non-empty list of rows.`);
    if (field === 'input_ids') {
      B = rows.length;
      T = Array.isArray(rows[0]) ? rows[0].length : 0;
      if (T === 0) throw new CliError(`${file}: input_ids[0] must be a non-empty list of token ids.`);
    }
    if (rows.length !== B) throw new CliError(`${file}: field "${field}" has ${rows.length} rows, input_ids has ${B}.`);
    const out = new Int32Array(B * T);
    rows.forEach((row: unknown, b: number) => {
      if (!Array.isArray(row)) throw new CliError(`${file}: ${field}[${b}] must be a list, got ${JSON.stringify(row)}.`);
      if (row.length !== T) throw new CliError(`${file}: ${field}[${b}] has ${row.length} entries, expected ${T} (rows must have equal length; pad them and mark padding in attention_mask).`);
      row.forEach((v: unknown, t: number) => {
        if (typeof v !== 'number' || !Number.isInteger(v)) throw new CliError(`${file}: ${field}[${b}][${t}] must be an integer, got ${JSON.stringify(v)}.`);
        const why = check(v);
        if (why) throw new CliError(`${file}: ${field}[${b}][${t}] = ${v}: ${why}.`);
        out[b * T + t] = v;
      });
    });
    return out;
  };
  const inVocab = (v: number) => (v >= 0 && v < vocabSize ? null : `outside the vocabulary [0, ${vocabSize}) of the model`);
  const inputIds = read('input_ids', inVocab)!;
  if (maxPositions < T && obj.position_ids === undefined) throw new CliError(`${file}: rows have ${T} tokens, more than the model's ${maxPositions} positions.`);
  return {
    B, T, inputIds,
    labels: read('labels', (v) => (v === IGNORE_INDEX ? null : inVocab(v) && `${inVocab(v)} (use ${IGNORE_INDEX} for untrained positions)`)),
    attentionMask: read('attention_mask', (v) => (v >= 0 ? null : 'must be 0 (padding) or a segment id >= 1')),
    positionIds: read('position_ids', (v) => (v >= 0 && v < maxPositions ? null : `outside the model's positions [0, ${maxPositions})`)),
  };
}

async function readInputs(path: string): Promise<unknown> {
  const fs = await import('node:fs/promises');
  let text: string;
  try {
    text = await fs.readFile(path, 'utf8');
  } catch (e) {
    throw new CliError(`${path}: cannot read (${(e as Error).message}).`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new CliError(`${path}: not valid JSON (${(e as Error).message}).`);
  }
}

/** Runs the forward (and backward) pass and writes the outputs. Returns what it wrote. */
export async function forwardToFiles(model: CausalLM, inputs: ForwardInputs, outDir: string, opts: { grads: boolean; inputsFile: string; gradPrefix?: string }): Promise<{ files: string[]; loss?: number }> {
  const { B, T } = inputs;
  const t2 = (data: Int32Array) => tf.tensor2d(data, [B, T], 'int32');
  const ids = t2(inputs.inputIds);
  const mask = inputs.attentionMask && t2(inputs.attentionMask);
  const pos = inputs.positionIds && t2(inputs.positionIds);
  const labels = inputs.labels && t2(inputs.labels);
  const fwd = { attentionMask: mask, positionIds: pos };
  const sink = openSink(outDir);
  const files: string[] = [];
  const held: tf.Tensor[] = [ids, ...[mask, pos, labels].filter((t): t is tf.Tensor2D => !!t)];
  try {
    const logits = model.forward(ids, fwd);
    held.push(logits);
    const logitsData = (await logits.data()) as Float32Array;
    await sink.write('logits.safetensors', writeSafetensors(new Map([['logits', { shape: logits.shape.slice(), data: logitsData }]]), { format: 'pt' }));
    files.push('logits.safetensors');
    if (!labels) return { files };

    const ce = maskedCrossEntropy(logits, labels);
    held.push(ce.loss, ce.rowSums, ce.rowCounts);
    const loss = (await ce.loss.data())[0];
    const sums = await ce.rowSums.data(), counts = await ce.rowCounts.data();
    const rows = Array.from(sums, (sum, b) => ({ sum, count: counts[b] }));
    await sink.write('loss.json', JSON.stringify({ loss, rows }, null, 2) + '\n');
    files.push('loss.json');

    if (opts.grads) {
      const params = model.trainableParams();
      const { value, grads } = tf.variableGrads(() => maskedCrossEntropy(model.forward(ids, fwd), labels).loss, [...params.values()]);
      held.push(value, ...Object.values(grads));
      const out = new Map<string, WritableTensor>();
      for (const [name, v] of params) out.set((opts.gradPrefix ?? '') + name, { shape: v.shape.slice(), data: (await grads[v.name].data()) as Float32Array });
      await sink.write('grads.safetensors', writeSafetensors(out, { format: 'pt' }));
      files.push('grads.safetensors');
    }
    return { files, loss };
  } finally {
    tf.dispose(held);
  }
}

export async function run(argv: string[]): Promise<number> {
  const flags = parseFlags('forward', argv, SPEC, 'Logits, loss and gradients of a checkpoint on given inputs (safetensors + JSON, for comparison with transformers).');
  if (!flags) return 0;
  const backend = flags.backend;
  if (backend !== undefined && backend !== 'cpu' && backend !== 'webgpu') throw new CliError(`forward: --backend must be cpu or webgpu, got '${backend}'.`);
  const info = await initBackend(backend ? { prefer: backend as BackendName, strict: true } : { onFallback: (m) => console.error(m) });
  if (info.backend === 'webgpu') tf.env().set('WEBGPU_CPU_FORWARD', false);

  const json = await readInputs(flags.inputs!);
  const model = await loadModel(flags.model!);
  try {
    const c = model.config;
    // A learned position table (GPT-2) cannot read past its rows; RoPE reads any position.
    const maxPositions = model.family.learnedPositions ? model.family.dims(c).maxPositions : Number.MAX_SAFE_INTEGER;
    const inputs = parseForwardInputs(json, flags.inputs!, c.vocab_size, maxPositions);
    if (flags.grads && !inputs.labels) throw new CliError(`${flags.inputs}: --grads needs "labels" (the loss to differentiate).`);
    if (inputs.labels) {
      const { total, emptyRows } = countTrained(inputs.labels, inputs.B, inputs.T);
      if (total === 0) throw new CliError(`${flags.inputs}: labels train no position (rows ${emptyRows.join(', ')} have no label other than ${IGNORE_INDEX} after position 0).`);
    }
    if (flags.adapter) await loadAdapter(model, flags.adapter);
    const { files, loss } = await forwardToFiles(model, inputs, flags.out!, { grads: flags.grads, inputsFile: flags.inputs!, gradPrefix: flags.adapter ? 'base_model.model.' : undefined });
    console.log(`forward: ${c.model_type} B=${inputs.B} T=${inputs.T} V=${c.vocab_size} on ${describeBackend(info)}${flags.adapter ? ` with adapter ${flags.adapter}` : ''}${loss !== undefined ? `, loss ${loss}` : ''}; wrote ${files.map((f) => `${flags.out}/${f}`).join(', ')}`);
    return 0;
  } finally {
    model.dispose();
  }
}
