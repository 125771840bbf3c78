import { open, stat } from "node:fs/promises";
import { basename } from "node:path";
import { readGgufFileInfo, type GgmlType, type GgufFileInfo } from "node-llama-cpp";
import { z } from "zod";
import { FIRST_CLUSTER_TOKEN, LAYOUT_VERSION, vocabulary, type LayoutParams } from "@freshrec/core";
import { AdapterMismatchError, ModelFileError, NotAFreshrecModelError } from "./errors.js";

/** What a freshrec base model's GGUF header says about it. */
export interface ModelFileInfo {
  path: string;
  modelId: string;
  layout: LayoutParams;
  trainedWindow?: { start: number; end: number };
  /** Tensor name -> ggml dimensions (ne order: innermost first). */
  tensors: Map<string, number[]>;
  /** Tensor name -> ggml element type (node-llama-cpp's GgmlType). */
  tensorTypes: Map<string, GgmlType>;
}

/** What a llama.cpp LoRA adapter's GGUF header says about it. */
export interface AdapterFileInfo {
  path: string;
  /** freshrec.adapter_id when the trainer wrote one, else the file name. */
  adapterId: string;
  alpha: number;
  /** Base tensor name -> [lora_a dims, lora_b dims]. */
  pairs: Map<string, { a: number[]; b: number[] }>;
}

const count = z.union([z.number(), z.bigint()]).transform(Number).pipe(z.number().int().nonnegative());

/** The GGUF_META keys (core) as readGgufFileInfo nests them: "freshrec.k" -> metadata.freshrec.k. */
const freshrecKeys = z.object({
  layout_version: count,
  k: count.pipe(z.number().positive()),
  rag_slots: count,
  n_clusters: count.pipe(z.number().positive()),
  first_cluster_token: count,
  model_id: z.string().min(1),
  window_start_ms: count.optional(),
  window_end_ms: count.optional(),
});

/**
 * The fixed 24-byte GGUF preamble: magic, version 2 or 3, tensor and key counts. node-llama-cpp's reader never
 * returns on some files that start with "GGUF" but are not GGUF, so those are refused here first.
 */
async function checkGgufPreamble(path: string, kind: "model" | "adapter"): Promise<void> {
  const file = await open(path, "r");
  try {
    const head = Buffer.alloc(24);
    const { bytesRead } = await file.read(head, 0, 24, 0);
    if (bytesRead < 24 || head.toString("latin1", 0, 4) !== "GGUF") throw new ModelFileError(path, kind, "not a GGUF file (no GGUF preamble)");
    const version = head.readUInt32LE(4);
    if (version !== 2 && version !== 3) throw new ModelFileError(path, kind, `not a readable GGUF file (unsupported version ${version})`);
  } finally {
    await file.close();
  }
}

export async function readHeader(path: string, kind: "model" | "adapter"): Promise<GgufFileInfo> {
  try {
    const s = await stat(path);
    if (!s.isFile()) throw new ModelFileError(path, kind, "not a regular file");
  } catch (err) {
    if (err instanceof ModelFileError) throw err;
    throw new ModelFileError(path, kind, "file not found or unreadable", { cause: err });
  }
  await checkGgufPreamble(path, kind);
  try {
    return await readGgufFileInfo(path, { logWarnings: false });
  } catch (err) {
    throw new ModelFileError(path, kind, `not a readable GGUF file (${(err as Error).message})`, { cause: err });
  }
}

const dims = (d: readonly (number | bigint)[]) => d.map(Number);
/** The value at a dotted key of GGUF metadata as readGgufFileInfo nests it ("a.b.c" -> metadata.a.b.c); checked where read. */
export const metaAt = (info: GgufFileInfo, key: string): unknown =>
  key.split(".").reduce<unknown>((o, k) => (o !== null && typeof o === "object" ? (o as Record<string, unknown>)[k] : undefined), info.metadata);
export const tensorInfo = (info: GgufFileInfo) => info.fullTensorInfo ?? info.tensorInfo ?? [];
const tensorMap = (info: GgufFileInfo) => new Map(tensorInfo(info).map((t) => [t.name, dims(t.dimensions)]));

/** Reads and validates a freshrec base model's header: architecture, freshrec.* keys and the vocabulary contract. */
export async function readGgufMetadata(path: string): Promise<ModelFileInfo> {
  const info = await readHeader(path, "model");
  const fail = (reason: string): never => {
    throw new NotAFreshrecModelError(path, reason);
  };
  if (metaAt(info, "general.type") === "adapter") fail("it is a LoRA adapter, not a base model");
  const architecture = metaAt(info, "general.architecture");
  if (architecture !== "llama") fail(`architecture is ${JSON.stringify(architecture)}, expected "llama"`);
  const parsed = freshrecKeys.safeParse(metaAt(info, "freshrec") ?? {});
  if (!parsed.success) fail(`freshrec.* metadata: ${parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"} ${i.message}`).join("; ")}`);
  const f = parsed.data!;
  if (f.layout_version !== LAYOUT_VERSION) fail(`prompt layout version ${f.layout_version}, this scorer speaks ${LAYOUT_VERSION}`);
  if (f.first_cluster_token !== FIRST_CLUSTER_TOKEN) fail(`first cluster token ${f.first_cluster_token}, expected ${FIRST_CLUSTER_TOKEN}`);
  const layout: LayoutParams = { k: f.k, ragSlots: f.rag_slots, nClusters: f.n_clusters };
  const tokens = metaAt(info, "tokenizer.ggml.tokens");
  const expected = vocabulary(layout);
  if (!Array.isArray(tokens) || tokens.length !== expected.length)
    fail(`vocabulary has ${Array.isArray(tokens) ? tokens.length : "no"} tokens, layout needs ${expected.length}`);
  const wrong = expected.findIndex((t, i) => (tokens as string[])[i] !== t.text);
  if (wrong >= 0) fail(`token ${wrong} is ${JSON.stringify((tokens as string[])[wrong])}, expected ${JSON.stringify(expected[wrong]!.text)}`);
  const start = f.window_start_ms;
  const end = f.window_end_ms;
  return {
    path,
    modelId: f.model_id,
    layout,
    ...(start !== undefined && end !== undefined ? { trainedWindow: { start, end } } : {}),
    tensors: tensorMap(info),
    tensorTypes: new Map(tensorInfo(info).map((t) => [t.name, t.ggmlType])),
  };
}

/** Reads a llama.cpp LoRA adapter header and checks every factor pair against the base model's tensor shapes. */
export async function readAdapterMetadata(path: string, base: ModelFileInfo): Promise<AdapterFileInfo> {
  const info = await readHeader(path, "adapter");
  const mismatch = (reason: string): never => {
    throw new AdapterMismatchError(path, base.path, reason);
  };
  if (metaAt(info, "general.type") !== "adapter" || metaAt(info, "adapter.type") !== "lora") throw new ModelFileError(path, "adapter", "not a LoRA adapter (general.type/adapter.type)");
  const architecture = metaAt(info, "general.architecture");
  if (architecture !== "llama") mismatch(`architecture ${JSON.stringify(architecture)}, base is "llama"`);
  const alpha = Number(metaAt(info, "adapter.lora.alpha") ?? 0);
  const tensors = tensorMap(info);
  const pairs = new Map<string, { a: number[]; b: number[] }>();
  for (const [name, a] of tensors) {
    if (!name.endsWith(".lora_a")) continue;
    const target = name.slice(0, -".lora_a".length);
    const b = tensors.get(`${target}.lora_b`) ?? mismatch(`${name} has no matching lora_b`);
    const w = base.tensors.get(target) ?? mismatch(`targets ${target}, which the base model does not have`);
    // ggml order: W ne=[n_in, n_out], A ne=[n_in, r], B ne=[r, n_out].
    if (a[0] !== w[0] || b[1] !== w[1] || a[1] !== b[0])
      mismatch(`${target}: A ${JSON.stringify(a)} x B ${JSON.stringify(b)} cannot adapt a weight of shape ${JSON.stringify(w)}`);
    pairs.set(target, { a, b });
  }
  if (pairs.size === 0) throw new ModelFileError(path, "adapter", "holds no lora_a/lora_b tensor pairs");
  const baseId = metaAt(info, "freshrec.base_model_id");
  if (typeof baseId === "string" && baseId !== base.modelId) mismatch(`it was trained on base model ${JSON.stringify(baseId)}, this base is ${JSON.stringify(base.modelId)}`);
  const storedId = metaAt(info, "freshrec.adapter_id");
  const adapterId = typeof storedId === "string" ? storedId : basename(path, ".gguf");
  return { path, adapterId, alpha, pairs };
}
