import { GgmlType, type GgufFileInfo } from "node-llama-cpp";
import type { ModelKind, PromptStyle } from "@freshrec/core";
import { UnusableModelError } from "../errors.js";
import { metaAt, readGgufMetadata, readHeader, tensorInfo } from "../metadata.js";

/** What freshrec will do with a GGUF file a user points it at, read from the file's header alone. */
export interface ModelFileAssessment {
  path: string;
  kind: ModelKind;
  /** general.architecture. */
  architecture: string;
  /** tokenizer.ggml.model (llama: SentencePiece, gpt2: BPE, ...), its pre-tokenizer and vocabulary size. */
  tokenizer: { model: string; pre: string | null; tokens: number };
  /** Whether the file carries tokenizer.chat_template (an instruct model). */
  chatTemplate: boolean;
  /** chat: prompts go through the model's chat template; completion: a plain text prompt (base models). */
  promptStyle: PromptStyle;
  /** native: the C++ trainer fine-tunes it; external: only through the external trainer contract (trainer-bridge/src/external). */
  training: "native" | "external";
  /** Element types of the weight matrices, e.g. ["F16", "Q8_0"]. */
  weightTypes: string[];
  /** Why training goes where it goes, and anything else worth knowing, in plain words. */
  notes: string[];
}

/** Architectures llama.cpp runs as encoders (embeddings): they cannot score an answer after a prompt. */
const ENCODER_ARCHITECTURES = new Set(["bert", "nomic-bert", "nomic-bert-moe", "jina-bert-v2", "jina-bert-v3", "neo-bert", "modern-bert", "t5encoder", "eurobert"]);
/** Tokenizer models that are not text tokenizers (llama.cpp's LLAMA_VOCAB_TYPE_NONE). */
const NO_TEXT_TOKENIZER = new Set(["none", "no_vocab"]);
/** Base weight types the native trainer dequantises for LoRA training (trainer-bridge/MODEL.md). */
const NATIVE_WEIGHT_TYPES = new Set<number>([GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0]);

const typeName = (t: number): string => GgmlType[t] ?? `type ${t}`;

/**
 * Reads a GGUF header and says what freshrec will do with the file: run it as a cluster-token model (freshrec's own),
 * as a text model with native LoRA fine-tuning (llama architecture, weights the trainer reads), or as a text model
 * served as is and fine-tuned only through an external trainer. Throws UnusableModelError, with the reason, for
 * files it cannot use at all. Reads only the header: nothing is loaded into llama.cpp.
 */
export async function inspectModelFile(path: string): Promise<ModelFileAssessment> {
  const info = await readHeader(path, "model");
  const refuse = (reason: string): never => {
    throw new UnusableModelError(path, reason);
  };
  if (metaAt(info, "general.type") === "adapter") refuse("it is a LoRA adapter, not a model (pass the base model it was trained on)");
  const architecture = metaAt(info, "general.architecture");
  if (typeof architecture !== "string") refuse("no general.architecture key");
  const arch = architecture as string;
  const tokenizer = readTokenizer(info, refuse);
  const tensors = tensorInfo(info);
  if (tensors.length === 0) refuse("it holds no weights (a vocabulary-only GGUF)");
  const weightTypes = [...new Set(tensors.filter((t) => t.dimensions.length >= 2).map((t) => t.ggmlType))].sort((a, b) => a - b);
  const names = weightTypes.map(typeName);
  const chatTemplate = typeof metaAt(info, "tokenizer.chat_template") === "string";

  if (metaAt(info, "freshrec.layout_version") !== undefined) {
    await readGgufMetadata(path); // validates the cluster-token contract, or says what breaks it
    return {
      path,
      kind: "cluster-token",
      architecture: arch,
      tokenizer,
      chatTemplate,
      promptStyle: "completion",
      training: "native",
      weightTypes: names,
      notes: ["a freshrec cluster-token model: one token per cluster, its cluster set is fixed (a new cluster needs a new base)"],
    };
  }
  if (ENCODER_ARCHITECTURES.has(arch)) refuse(`architecture "${arch}" is an encoder (embedding) model; freshrec needs a causal language model to score answers`);
  const notes: string[] = [];
  const unsupported = weightTypes.filter((t) => !NATIVE_WEIGHT_TYPES.has(t));
  let training: "native" | "external" = "native";
  if (arch !== "llama") {
    training = "external";
    notes.push(`architecture "${arch}": served by llama.cpp as is; the native trainer does llama-architecture models only, so fine-tuning needs an external trainer (--trainer-command)`);
  } else if (unsupported.length > 0) {
    training = "external";
    notes.push(`weights in ${unsupported.map(typeName).join(", ")}: the native trainer reads F32, F16, BF16 and Q8_0 bases; fine-tune the F16 original natively, or use an external trainer`);
  } else notes.push("llama architecture with weights the native trainer reads: LoRA adapters are trained natively on this file, which stays unchanged");
  notes.push(
    chatTemplate
      ? "an instruct model (the file has a chat template): prompts are rendered through its own chat template"
      : "a base model (no chat template in the file): prompts are plain completion text",
  );
  return { path, kind: "text", architecture: arch, tokenizer, chatTemplate, promptStyle: chatTemplate ? "chat" : "completion", training, weightTypes: names, notes };
}

function readTokenizer(info: GgufFileInfo, refuse: (reason: string) => never): ModelFileAssessment["tokenizer"] {
  const model = metaAt(info, "tokenizer.ggml.model");
  if (typeof model !== "string") refuse("no tokenizer (tokenizer.ggml.model is missing)");
  if (NO_TEXT_TOKENIZER.has(model as string)) refuse(`no text tokenizer (tokenizer.ggml.model is "${model}")`);
  const tokens = metaAt(info, "tokenizer.ggml.tokens");
  if (!Array.isArray(tokens) || tokens.length === 0) refuse("no tokenizer vocabulary (tokenizer.ggml.tokens is missing or empty)");
  const pre = metaAt(info, "tokenizer.ggml.pre");
  return { model: model as string, pre: typeof pre === "string" ? pre : null, tokens: (tokens as unknown[]).length };
}

/** The assessment as lines for a terminal or a log. */
export function describeAssessment(a: ModelFileAssessment): string[] {
  return [
    `${a.path}: a ${a.kind} model`,
    `  architecture ${a.architecture}; tokenizer ${a.tokenizer.model}${a.tokenizer.pre ? ` (${a.tokenizer.pre})` : ""}, ${a.tokenizer.tokens} tokens; weights ${a.weightTypes.join(", ") || "none"}`,
    `  prompts: ${a.promptStyle}; fine-tuning: ${a.training === "native" ? "native trainer" : "external trainer only"}`,
    ...a.notes.map((n) => `  - ${n}`),
  ];
}
