import { FreshrecError } from "../errors.js";
import type { ClusterId } from "../schemas.js";

/**
 * The model's vocabulary and prompt layout, shared by the trainer (which writes it into GGUF files)
 * and the scorer (which builds prompts from it). Bump LAYOUT_VERSION whenever either changes.
 *
 * Prompt (fixed length k + n + 4):  <s> <hist> c1 .. ck <rag> r1 .. rn <next>
 * Empty history or RAG slots hold <none>; the model predicts the next cluster token after <next>.
 */
export const LAYOUT_VERSION = 1;

export const SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<pad>", "<hist>", "<rag>", "<next>", "<none>"] as const;
export type SpecialToken = (typeof SPECIAL_TOKENS)[number];
export const TOKEN = Object.fromEntries(SPECIAL_TOKENS.map((t, i) => [t, i])) as Record<SpecialToken, number>;
/** Token id of cluster 0; cluster c has token id FIRST_CLUSTER_TOKEN + c. */
export const FIRST_CLUSTER_TOKEN = SPECIAL_TOKENS.length;

/** GGUF token types (llama.cpp's llama_token_type). */
export const GGUF_TOKEN_TYPE = { unknown: 2, control: 3, userDefined: 4 } as const;

export interface LayoutParams {
  /** History length (the paper's k, default 2). */
  k: number;
  /** RAG slots (default 3). */
  ragSlots: number;
  /** Number of clusters C. */
  nClusters: number;
}

export const DEFAULT_K = 2;
export const DEFAULT_RAG_SLOTS = 3;

export const clusterTokenText = (c: ClusterId): string => `<c${c}>`;
export const clusterToToken = (c: ClusterId): number => FIRST_CLUSTER_TOKEN + c;
export const tokenToCluster = (t: number): ClusterId | undefined => (t >= FIRST_CLUSTER_TOKEN ? t - FIRST_CLUSTER_TOKEN : undefined);
export const promptLength = (p: Pick<LayoutParams, "k" | "ragSlots">): number => p.k + p.ragSlots + 4;
export const vocabSize = (p: Pick<LayoutParams, "nClusters">): number => FIRST_CLUSTER_TOKEN + p.nClusters;

/** Vocabulary as (text, GGUF token type) in token-id order. */
export function vocabulary(p: Pick<LayoutParams, "nClusters">): Array<{ text: string; type: number }> {
  const specials = SPECIAL_TOKENS.map((text) => ({
    text,
    type: text === "<unk>" ? GGUF_TOKEN_TYPE.unknown : GGUF_TOKEN_TYPE.control,
  }));
  const clusters = Array.from({ length: p.nClusters }, (_, c) => ({ text: clusterTokenText(c), type: GGUF_TOKEN_TYPE.userDefined }));
  return [...specials, ...clusters];
}

/**
 * Token ids of one prompt. `history` is oldest-first; only its last k entries are used and a shorter
 * history is left-padded with <none>. `rag` (best first) fills the RAG slots; null or short lists pad with <none>.
 */
export function promptTokens(history: readonly ClusterId[], rag: readonly ClusterId[] | null, p: LayoutParams): number[] {
  const check = (c: ClusterId, what: string) => {
    if (!Number.isInteger(c) || c < 0 || c >= p.nClusters)
      throw new FreshrecError(
        "unknown-cluster",
        `${what}: cluster ${c} is not in the model's vocabulary of ${p.nClusters} clusters ` +
          "(a cluster-token model's clusters are fixed when its base is trained: a new cluster needs a new base, or a text model, which reads clusters by their keywords)",
      );
  };
  const hist = history.slice(-p.k);
  hist.forEach((c) => check(c, "history"));
  const ragList = (rag ?? []).slice(0, p.ragSlots);
  ragList.forEach((c) => check(c, "rag"));
  const tokens = [TOKEN["<s>"], TOKEN["<hist>"]];
  for (let i = 0; i < p.k - hist.length; i++) tokens.push(TOKEN["<none>"]);
  for (const c of hist) tokens.push(clusterToToken(c));
  tokens.push(TOKEN["<rag>"]);
  for (const c of ragList) tokens.push(clusterToToken(c));
  for (let i = ragList.length; i < p.ragSlots; i++) tokens.push(TOKEN["<none>"]);
  tokens.push(TOKEN["<next>"]);
  return tokens;
}

/** GGUF metadata keys freshrec writes into every model it trains (besides llama.* and tokenizer.*). */
export const GGUF_META = {
  layoutVersion: "freshrec.layout_version",
  k: "freshrec.k",
  ragSlots: "freshrec.rag_slots",
  nClusters: "freshrec.n_clusters",
  firstClusterToken: "freshrec.first_cluster_token",
  modelId: "freshrec.model_id",
  windowStart: "freshrec.window_start_ms",
  windowEnd: "freshrec.window_end_ms",
} as const;
