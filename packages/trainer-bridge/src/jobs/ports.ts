/** The trainer backend the jobs drive: the native ggml trainer, or an external command (see external/README.md). */
import type { LayoutParams } from "@freshrec/core";
import type { ProgressFn } from "../native/trainer.js";
import type { TextTokenExample } from "../training-set/text-examples.js";

/** One training example as the trainer sees it: prompt token ids and the target token id. */
export interface TokenExample {
  tokens: number[];
  target: number;
}

export interface PretrainInput {
  examples: TokenExample[];
  /** Early-stopping examples (the training set's val split); trainers without early stopping may ignore them. */
  valExamples: TokenExample[];
  layout: LayoutParams;
  /** Folder to write into; the trainer names the files. */
  outDir: string;
  modelId: string;
  window: { start: number; end: number };
  hyper: Record<string, unknown>;
  seed: number;
  onProgress?: ProgressFn;
}

/** What every LoRA fine-tune gets, whatever its examples are. */
interface LoraInput<E> {
  examples: E[];
  /** Early-stopping examples (the training set's val split). */
  valExamples: E[];
  /** The base to train against: the F32 training file of a cluster-token base, the user's unchanged file of a text base. */
  basePath: string;
  outPath: string;
  /** Registry id of the adapter, to be written into it as freshrec.model_id. */
  adapterId: string;
  warmStartPath?: string;
  hyper: Record<string, unknown>;
  seed: number;
  onProgress?: ProgressFn;
}

export interface AdapterInput extends LoraInput<TokenExample> {
  /** JSONL of the training set (see external/README.md), for backends that read files. */
  examplesJsonl: string;
  layout: LayoutParams;
}

/** A text model's LoRA input: prompts and answers as token ids of the base's own tokenizer (loss on the answer). */
export type TextAdapterInput = LoraInput<TextTokenExample>;

/** Full-weight training of a text model freshrec wrote itself (never a model a user brings): from one file to another. */
export interface TextBaseInput {
  examples: TextTokenExample[];
  valExamples: TextTokenExample[];
  fromPath: string;
  outPath: string;
  hyper: Record<string, unknown>;
  seed: number;
  onProgress?: ProgressFn;
}

export interface Trainer {
  readonly name: string;
  /** Returns the F32 file (for training) and the file serving loads (may be the same). */
  pretrainBase(input: PretrainInput): Promise<{ trainPath: string; servePath: string }>;
  trainAdapter(input: AdapterInput): Promise<void>;
  /** LoRA on a text base; absent where the backend trains cluster-token models only. */
  trainTextAdapter?(input: TextAdapterInput): Promise<void>;
  /** Every weight of a text model; absent where the backend cannot (the demo and the replay need it for their own text base). */
  trainTextBase?(input: TextBaseInput): Promise<void>;
}
