/**
 * Seed tasks: the human-written instructions the pipelines start from. A seed file is JSONL in
 * Self-Instruct's own format (its data/seed_tasks.jsonl) or any row format WebTune reads:
 *
 *   {"id": "seed_task_0", "instruction": "Sort the numbers.", "instances": [{"input": "3, 1, 2", "output": "1, 2, 3"}]}
 *   {"messages": [{"role": "user", "content": "What is 2 plus 3?"}, {"role": "assistant", "content": "5"}]}
 *   {"instruction": "Translate to French", "input": "cat", "output": "chat"}            (Alpaca)
 *
 * A row's id is its "id" field, else its file:line. Bad rows are reported with file, line and field.
 */
import { parseRow, type Example, type RowError } from '../data/dataset.js';
import { instructionText } from '../data/filters.js';

export interface SeedTask {
  id: string;
  instruction: string;
  /** The task's input, when the instruction takes one (Alpaca, Self-Instruct instances). */
  input?: string;
  /** An answer, when the row has one (used by the plain-text answer prompt's examples). */
  output?: string;
}

/** The seed task of a dataset row: its first user message (or prompt) and first answer. */
export function seedTaskFromExample(ex: Example): SeedTask {
  const m = ex.meta;
  const id = m.id !== undefined ? String(m.id) : `${String(m.file ?? 'row')}:${String(m.line ?? '?')}`;
  const firstAnswer = (v: unknown) => (typeof v === 'string' ? v : (v as Array<{ role: string; content: string }> | undefined)?.find((x) => x.role === 'assistant')?.content);
  const output = ex.messages ? firstAnswer(ex.messages) : ex.completion !== undefined ? firstAnswer(ex.completion) : undefined;
  return { id, instruction: instructionText(ex).trim(), ...(output !== undefined ? { output } : {}) };
}

/** Seed tasks from the text of a JSONL file; bad rows become errors naming file, line and field. */
export function parseSeedTasks(text: string, file: string): { tasks: SeedTask[]; errors: RowError[] } {
  const tasks: SeedTask[] = [];
  const errors: RowError[] = [];
  const bad = (line: number, field: string, detail: string) =>
    errors.push({ file, line, field, message: `${file}:${line}: ${field ? `field "${field}": ` : ''}${detail}` });
  text.split('\n').forEach((raw, i) => {
    const line = i + 1;
    if (!raw.trim()) return;
    let obj: unknown;
    try {
      obj = JSON.parse(raw);
    } catch (e) {
      return bad(line, '', `invalid JSON: ${(e as Error).message}`);
    }
    const o = obj as Record<string, unknown>;
    if (o && typeof o === 'object' && !Array.isArray(o) && 'instances' in o) {
      // Self-Instruct's seed format.
      if (typeof o.instruction !== 'string' || !o.instruction.trim()) return bad(line, 'instruction', 'expected a non-empty string');
      if (!Array.isArray(o.instances)) return bad(line, 'instances', 'expected a list of {"input", "output"}');
      const first = o.instances[0] as Record<string, unknown> | undefined;
      if (first !== undefined && (typeof first !== 'object' || typeof first.output !== 'string')) return bad(line, 'instances[0].output', 'expected a string');
      const input = typeof first?.input === 'string' && first.input.trim() ? first.input : undefined;
      tasks.push({ id: o.id !== undefined ? String(o.id) : `${file}:${line}`, instruction: o.instruction.trim(), ...(input ? { input } : {}), ...(first ? { output: first.output as string } : {}) });
      return;
    }
    const r = parseRow(obj, { file, line });
    if (r.error) return void errors.push(r.error);
    const task = seedTaskFromExample(r.example);
    if (!task.instruction) return bad(line, r.example.format === 'text' ? 'text' : 'messages', 'no instruction (a user message or prompt) in this row');
    tasks.push(task);
  });
  if (tasks.length === 0 && errors.length === 0) bad(1, '', 'no seed tasks in the file');
  return { tasks, errors };
}
