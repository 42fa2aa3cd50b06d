/**
 * The message protocol between the page (demo/main.ts) and the worker (demo/worker.ts).
 *
 *   page -> worker   `{ type: ... }`   (Request)
 *   worker -> page   `{ status: ... }` (Reply)
 *
 * Requests that expect one answer carry an `id`; the reply with the same `id` answers it
 * (`{status: 'error', id}` when it failed). Training, evaluation and chat also stream
 * progress replies while they run. Only plain data crosses: the page never sees a tensor.
 */
import type { BackendInfo, KernelChoice, KernelPath, Message, MaskMode, RowError, StoredEntry, TrainerStatus, GrowCandidate, GrowMethod, GrowStats, GrownRow, EvolOperation, DataToolOptions, CurriculumKey, ModelFamily } from '../src/index.js';

/** The dataset panel's data tools: the library's filters, and a curriculum order instead of shuffling. */
export type DataToolSettings = DataToolOptions & { curriculum?: CurriculumKey };

/** Where the chat template of the template builder comes from. */
export type TemplateSpec =
  | { kind: 'builtin'; name: string }
  | { kind: 'jinja'; source: string; bosToken: string; eosToken: string }
  | { kind: 'tokenizer_config'; json: string; fileName: string }
  /** The chat template of the loaded base model (its tokenizer_config.json or chat_template.jinja). */
  | { kind: 'model' };

export interface LoraSettings {
  enabled: boolean; r: number; alpha: number; targets: string[];
  /**
   * PEFT's modules_to_save: modules trained in full beside the adapter and stored in it (e.g.
   * ['wte', 'lm_head'] for GPT-2, whose frozen embedding rows of never-seen chat markers give a
   * low-rank update nothing to work with). Empty: none.
   */
  modulesToSave: string[];
}
export interface NeftuneSettings { enabled: boolean; alpha: number }

export interface TrainSettings {
  /** 'base' (models/base/ when it exists), 'pretrained' (the model loaded from the Hub or files), 'current', or a preset name. */
  model: string;
  family: ModelFamily;
  /** Optimizer steps; when 0, `epochs` decides. */
  steps: number;
  epochs: number;
  lr: number;
  batchSize: number;
  warmupSteps: number;
  schedule: 'constant' | 'linear' | 'cosine';
  mask: MaskMode;
  maxLength: number;
  evalEvery: number;
  lora: LoraSettings;
  neftune: NeftuneSettings;
  /** Recompute each block in the backward pass (less memory); the worker also turns it on when the estimate says the run would not fit. */
  gradientCheckpointing: boolean;
  template: TemplateSpec;
  /** Family -> mixture weight (0 leaves the family out). */
  weights: Record<string, number>;
  /** Include the rows of the uploaded file, with this weight (0 or absent: not used). */
  uploadWeight?: number;
  /** Include the rows kept in "Grow data", with this weight (0 or absent: not used). */
  growWeight?: number;
  /** Filters applied to the training rows (all sources together) and the curriculum; absent: none. */
  dataTools?: DataToolSettings;
  /** Percent of the uploaded rows held out of training for eval loss (0 or absent: none). */
  validationPercent?: number;
  seed: number;
  /** Save a resumable checkpoint to browser storage every this many steps (0: never); the newest two are kept. */
  saveEvery: number;
  /** The engine's ops the run uses: 'auto' (fused kernels on WebGPU), or 'fused' / 'stock' to compare. */
  kernels: KernelChoice;
}

/** BackendInfo as plain data (the engine's functions do not cross to the page): `kernels` names its path. */
export type BackendView = Omit<BackendInfo, 'engine'> & { kernels: KernelPath };

export type Request =
  /** `kernels`: the engine models are bound to by default (the page's ?kernels= parameter; default auto). */
  | { type: 'init'; kernels?: KernelChoice }
  | { type: 'render'; id: number; template: TemplateSpec; messages: Message[]; tools?: Record<string, unknown>[]; addGenerationPrompt?: boolean }
  | { type: 'upload'; id: number; name: string; text: string; validationPercent: number }
  /** What the data tools would remove from the training rows (bundled families with a weight, and the upload's training part). */
  | { type: 'data-check'; id: number; tools: DataToolSettings; weights: Record<string, number>; uploadWeight: number; validationPercent: number }
  | { type: 'train'; settings: TrainSettings }
  | { type: 'pause' }
  | { type: 'resume' }
  | { type: 'stop' }
  /** Continue the run a closed or crashed tab cut short, from its newest checkpoint (see 'interrupted-run'), with its settings. */
  | { type: 'resume-run' }
  /** Forget the interrupted run: its checkpoints are removed. */
  | { type: 'discard-run' }
  | { type: 'compare'; id: number; limit: number; maxNewTokens: number }
  | { type: 'chat'; id: number; messages: Message[]; maxNewTokens: number; temperature: number }
  | { type: 'store-list'; id: number }
  | { type: 'store-save'; id: number; name: string }
  | { type: 'store-load'; id: number; name: string }
  | { type: 'store-delete'; id: number; name: string }
  | { type: 'export'; id: number; what: 'model' | 'adapter' }
  | { type: 'load-files'; id: number; files: File[] }
  | { type: 'hub-check'; id: number; hub: HubRef; batchSize: number; seqLen: number; lora: { r: number; targets: string[] } }
  | { type: 'hub-load'; id: number; hub: HubRef }
  | { type: 'hub-cancel' }
  | { type: 'hub-clear-cache'; id: number }
  | { type: 'pretrained-files'; id: number; files: File[] }
  | GrowRequest;

/** A model on a hub: repo id, revision, endpoint, and a token for gated repos (kept in memory only). */
export interface HubRef { repo: string; revision: string; endpoint: string; token?: string }

/** One column of the memory estimate (bytes), and whether its largest tensor fits the adapter. */
export interface EstimateView {
  trainableParams: number; weights: number; gradients: number; optimizer: number; activations: number; total: number;
  largestBuffer: { name: string; shape: number[]; bytes: number };
  /** Set when a tensor exceeds the adapter's binding limits: what does not fit and what to change. */
  refusal?: string;
}

export interface HubCheckInfo {
  source: string; modelType: string; params: number; weightFiles: string[]; downloadBytes?: number;
  batchSize: number; seqLen: number; loraTargets: string[]; loraR: number;
  lora: EstimateView; full: EstimateView;
  limits?: { maxBufferSize: number; maxStorageBufferBindingSize: number };
}

/** What the page needs to know about a loaded base model. */
export interface PretrainedInfo {
  name: string; modelType: string; params: number; maxPositions: number;
  /** The model's own chat template, when it has one. */
  template?: { name: string; source: string };
  /** LoRA targets suited to the architecture. */
  loraTargets: string[];
}

/** One token of the masking view. */
export interface MaskToken { text: string; id: number; special: boolean; trained: boolean }
export interface MaskView { mode: MaskMode; examples: Array<{ tokens: MaskToken[]; trained: number; total: number; note?: string }>; error?: string }

export interface RenderReply {
  status: 'rendered'; id: number;
  text: string;
  /** [start, end) UTF-16 ranges of the text that are special tokens of the bundled tokenizer or the template's bos/eos. */
  specials: Array<[number, number]>;
  turns: Array<{ role: string; start: number; end: number; trainStart: number; trainEnd: number }>;
  /** Set when the template failed (e.g. raise_exception for non-alternating roles); text is then ''. */
  error?: string;
  masks: MaskView[];
  templateName: string;
  /** With add_generation_prompt: the [start, end) range of the text it appended. */
  generationPrompt?: [number, number];
}

/** The uploaded rows checked before training: the validation split, and overlap with the bundled test split. */
export interface UploadCheck {
  train: number; valid: number; validationPercent: number;
  /** Rows whose instruction is (nearly) a test prompt: ROUGE-L F1 above 0.7 or equal. */
  overlap: number;
  overlapExamples: string[];
}

/** A row for display: chat rows as messages; prompt/completion and text rows as labelled text. */
export interface DatasetRowView { messages: Message[]; meta: Record<string, unknown>; parts?: Array<[string, string]> }
export interface DatasetInfo {
  families: Array<{ name: string; description: string; weight: number; rows: number }>;
  samples: Record<string, DatasetRowView[]>;
  trainRows: number; validRows: number; testRows: number;
}

export interface ModelInfo {
  name: string; params: number; trainableParams: number; config: Record<string, unknown>; lora: boolean;
  /** Mean loss on a fixed slice of the validation split (set after loading, to check a restore). */
  evalLoss?: number;
  /** PEFT's trainable-parameter line when a LoRA adapter is applied. */
  loraSummary?: string;
}

/** A run a closed tab cut short: its newest checkpoint's step, the run's steps, starting model and settings. */
export interface InterruptedRunInfo { step: number; maxSteps: number; model: string; location: string; settings: TrainSettings }

export interface StepReply {
  status: 'step'; step: number; maxSteps: number; epoch: number; loss: number; lr: number; gradNorm: number;
  tokensPerSecond: number; elapsedMs: number;
  /** The kernel path of the run's engine, and the GPU compute dispatches this step recorded (0 off WebGPU). */
  path: KernelPath; dispatches: number;
}

export interface FamilyScore { n: number; correct: number }
export interface CompareRow { index: number; family: string; prompt: string; expected: string; output: string; correct: boolean }

export type Reply =
  | { status: 'ready'; backend: BackendView; warmupMs: number; dataset: DatasetInfo; presets: Record<string, { params: number }>;
      hasBase: boolean; model: ModelInfo;
      /** A run cut short (the tab was closed or crashed) whose newest checkpoint is at `step`: the page offers to resume it. */
      interrupted?: InterruptedRunInfo }
  | { status: 'init-progress'; message: string }
  | RenderReply
  | { status: 'upload'; id: number; name: string; rows: number; errors: RowError[]; families: Record<string, number>; samples: DatasetRowView[]; check: UploadCheck }
  | { status: 'data-check'; id: number; input: number; kept: number; lines: string[]; byFilter: Record<string, number> }
  | { status: 'preparing'; message: string; gradientCheckpointing?: true }
  | { status: 'train-status'; state: TrainerStatus | 'preparing'; step: number; maxSteps: number; reason?: string; error?: string; model?: ModelInfo }
  | StepReply
  /** The running run saved a resumable checkpoint. */
  | { status: 'run-saved'; step: number; location: string }
  /** A resumed run's steps and evaluations before its checkpoint, for the charts. */
  | { status: 'train-history'; steps: Array<{ step: number; loss: number; lr: number; gradNorm: number }>; evals: Array<{ step: number; evalLoss: number }> }
  | { status: 'eval'; step: number; evalLoss: number; tokenAccuracy: number }
  | { status: 'compare-row'; id: number; which: 'base' | 'tuned'; row: CompareRow; done: number; total: number }
  | { status: 'compare-done'; id: number; base: Record<string, FamilyScore>; tuned: Record<string, FamilyScore>; baseOverall: number; tunedOverall: number }
  | { status: 'chat-token'; id: number; text: string }
  | { status: 'chat-done'; id: number; text: string; tokens: number; ms: number }
  | { status: 'store-list'; id: number; entries: StoredEntry[] }
  | { status: 'store-saved'; id: number; entry: StoredEntry; evalLoss: number }
  | { status: 'store-deleted'; id: number; name: string }
  | { status: 'model-loaded'; id: number; model: ModelInfo; from: string; pretrained?: PretrainedInfo }
  | { status: 'hub-info'; id: number; info: HubCheckInfo }
  | { status: 'hub-progress'; id: number; file: string; loaded: number; total?: number }
  | { status: 'hub-cache-cleared'; id: number; deleted: boolean }
  | { status: 'export'; id: number; files: Array<{ name: string; bytes: Uint8Array }> }
  | GrowReply
  | { status: 'error'; id?: number; message: string };

export type ReplyOf<S extends Reply['status']> = Extract<Reply, { status: S }>;

// ---------------------------------------------------------------------------------------------
// Grow data: Self-Instruct / Evol-Instruct with the current model (demo/ui/grow.ts)

export interface GrowSettings {
  method: GrowMethod;
  /** Rows to keep. */
  n: number;
  promptFormat: 'chat' | 'completion';
  /** Sampling of the instructions (Self-Instruct) or rewrites (Evol-Instruct); answers are greedy. */
  temperature: number; topP: number; maxNewTokens: number;
  answerMaxNewTokens: number;
  /** Self-Instruct: tasks per prompt, and the most prompts before giving up. */
  fewShot: number; maxPrompts: number;
  /** Evol-Instruct: operations drawn from, rounds over the pool. */
  operations: EvolOperation[]; rounds: number;
  /** Seed tasks: a sample of the bundled training set (taken evenly over its families), or the uploaded rows. */
  seeds: 'bundled' | 'upload'; seedCount: number;
  seed: number;
}

export type GrowRequest =
  | { type: 'grow'; id: number; settings: GrowSettings }
  | { type: 'grow-stop' }
  /** The rows the user kept: they become the "grown" source of the training mixture. */
  | { type: 'grow-use'; id: number; rows: GrownRow[] };

export type GrowReply =
  | { status: 'grow-started'; id: number; model: string; params: number; seeds: number }
  | { status: 'grow-candidate'; id: number; candidate: GrowCandidate; stats: GrowStats }
  | { status: 'grow-done'; id: number; stats: GrowStats; stopped: boolean }
  | { status: 'grow-used'; id: number; rows: number };
