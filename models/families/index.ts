/**
 * The model families WebTune runs, looked up by config.json `model_type`. A new family is a
 * folder beside these (see models/family.ts) and one entry here.
 */
import type { FamilyDescriptor } from '../family.js';
import { gpt2Family, type GPT2Config } from './gpt2/index.js';
import { llamaFamily, type LlamaConfig } from './llama/index.js';

export * from './gpt2/index.js';
export * from './llama/index.js';

/** A config of any family, discriminated by model_type. */
export type ModelConfig = GPT2Config | LlamaConfig;
/** The model_type of a family WebTune runs: 'gpt2' | 'llama'. */
export type ModelFamily = ModelConfig['model_type'];

/** Every family, by model_type. */
export const MODEL_FAMILIES: { readonly [T in ModelFamily]: FamilyDescriptor<Extract<ModelConfig, { model_type: T }>> } = {
  gpt2: gpt2Family,
  llama: llamaFamily,
};

/** The model_types WebTune runs, in order. */
export const MODEL_TYPES = Object.keys(MODEL_FAMILIES) as ModelFamily[];

/** Whether `type` names a family WebTune runs. */
export function isModelFamily(type: unknown): type is ModelFamily {
  return typeof type === 'string' && Object.hasOwn(MODEL_FAMILIES, type);
}

/** The descriptor of a config's family (typed loosely: its functions take the config they came with). */
export function familyOf(config: { model_type: string }): FamilyDescriptor<ModelConfig> {
  if (!isModelFamily(config.model_type)) throw new Error(`Unknown model family '${config.model_type}'; WebTune runs ${MODEL_TYPES.map((t) => `'${t}'`).join(' and ')}.`);
  return MODEL_FAMILIES[config.model_type] as unknown as FamilyDescriptor<ModelConfig>;
}

/** PEFT's TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING for the families WebTune has: model_type -> defaultLoraTargets. */
export const DEFAULT_TARGET_MODULES: Record<string, string[]> = Object.fromEntries(MODEL_TYPES.map((t) => [t, [...MODEL_FAMILIES[t].defaultLoraTargets]]));
