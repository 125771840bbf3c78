import type { LlamaContextSequence, Token } from "node-llama-cpp";
import type { ClusterId } from "@freshrec/core";
import { ScoringError } from "../errors.js";
import { PRIORITY, sequenceInternals, type LogitsReadQueue, type NativeSampler, type SequenceInternals } from "../next-token-reader.js";
import type { TrieNode } from "./answer-trie.js";

/**
 * How a candidate's tokens are scored.
 * - relative: log p(token | prefix) among the tokens the trie allows at that point (the closed set's own
 *   continuations), i.e. the probability that decoding constrained to the cluster descriptions produces the answer.
 *   A point with one allowed token contributes log 1 = 0 and needs no logits.
 * - absolute: log p(token | prefix) over the whole vocabulary, at every token of the answer.
 */
export type ReadMode = "relative" | "absolute";

/** Per candidate: the summed log-probability of its answer tokens and how many tokens it has. */
export interface AnswerScore {
  logp: number;
  tokens: number;
}

/**
 * Logit bias that lifts the allowed tokens above every other token, so a top-k sampler with k = their number keeps
 * exactly them and returns their softmax. It cancels in the softmax; its cost is float32 rounding of logit + bias,
 * at most ulp(2 * bias) / 2 = 7.6e-6 per logit here. A token it fails to lift (a logit gap over the bias) is retried
 * with the larger one, then read from the full distribution.
 */
const BIASES = [64, 1024] as const;

/**
 * Scores every candidate answer of one prompt on one context sequence. The prompt is evaluated once (keeping what the
 * sequence already holds of it); the candidates then continue it as a token trie walked depth first, so a prefix
 * shared by several answers is evaluated once, and each branch is erased back to its fork before the next. Logits are
 * read only where the trie forks (relative mode) or at every answer token (absolute mode). Reading the full
 * distribution costs a sort of the whole vocabulary in node-llama-cpp (20 ms at 128k tokens); a relative read is a
 * top-k of the allowed tokens under a logit bias (about 1 ms), which is why relative scoring is the cheap one.
 * Not reentrant: the pool gives a reader one prompt at a time.
 */
export class BranchReader {
  private readonly internals: SequenceInternals;
  /** Greedy chain: its probabilities are the softmax over the whole vocabulary. */
  private readonly full: NativeSampler;
  /** Logit bias + top-k chain for relative reads (reconfigured per read). */
  private readonly allowed: NativeSampler;
  private readonly topKBase: object;

  constructor(
    private readonly seq: LlamaContextSequence,
    private readonly reads: LogitsReadQueue,
  ) {
    this.internals = sequenceInternals(seq);
    const { AddonSampler } = this.internals._context._llama._bindings;
    this.full = new AddonSampler(this.internals.model._model);
    this.full.applyConfig(this.internals._resolveSamplerConfig({ temperature: 0 }));
    this.allowed = new AddonSampler(this.internals.model._model);
    // temperature 1 divides by one (exact), top-p 1 and min-p 0 keep everything top-k kept; the seed only picks the unused sample.
    this.topKBase = this.internals._resolveSamplerConfig({ temperature: 1, topP: 1, minP: 0, seed: 1 });
  }

  /** Every candidate's score, the prompt's KV state reused across them. */
  async score(prompt: readonly Token[], root: TrieNode, mode: ReadMode): Promise<Map<ClusterId, AnswerScore>> {
    const out = new Map<ClusterId, AnswerScore>();
    const seq = this.seq;
    const resident = seq.contextTokens;
    let keep = 0;
    while (keep < Math.min(resident.length, prompt.length - 1) && resident[keep] === prompt[keep]) keep++;
    if (keep < seq.nextTokenIndex) await seq.eraseContextTokenRanges([{ start: keep, end: seq.nextTokenIndex }]);
    const rootLogps = await this.decode(prompt.slice(keep), needsRead(root, mode) ? [[prompt.length - keep - 1, root]] : [], mode);
    await this.walk(root, 0, rootLogps.get(root) ?? null, prompt.length, mode, out);
    return out;
  }

  /** The same scores without reuse: each candidate evaluated with its whole prompt (the benchmark's baseline). */
  async scoreNaive(prompt: readonly Token[], root: TrieNode, mode: ReadMode): Promise<Map<ClusterId, AnswerScore>> {
    const out = new Map<ClusterId, AnswerScore>();
    const path: TrieNode[] = [];
    const leaves = async (node: TrieNode): Promise<void> => {
      if (node.children.length === 0) {
        await this.seq.clearHistory();
        // the prompt, then the answer up to its last token; logits wherever a node on the way is read
        const tokens = [...prompt, ...path.slice(0, -1).map((n) => n.token)] as Token[];
        const at: Array<[number, TrieNode]> = [root, ...path.slice(0, -1)].flatMap((n, i) => (needsRead(n, mode) ? [[prompt.length - 1 + i, n] as [number, TrieNode]] : []));
        const logps = await this.decode(tokens, at, mode);
        let logp = 0;
        [root, ...path.slice(0, -1)].forEach((n, i) => {
          const lp = logps.get(n);
          if (lp) logp += lp[n.children.indexOf(path[i]!)]!;
        });
        out.set(node.cluster!, { logp, tokens: node.depth });
        return;
      }
      for (const child of node.children) {
        path.push(child);
        await leaves(child);
        path.pop();
      }
    };
    await leaves(root);
    return out;
  }

  /** Forgets what the sequence holds (after a failed read its state is unknown). */
  async clear(): Promise<void> {
    await this.seq.clearHistory().catch(() => undefined);
  }

  dispose(): void {
    this.full.dispose();
    this.allowed.dispose();
  }

  /**
   * Scores the subtrees of `node`, whose children's log-probs are `childLogps` (null: one child, nothing to read);
   * the sequence holds the prompt and `node`'s path, `position` tokens in all.
   */
  private async walk(node: TrieNode, logp: number, childLogps: Float64Array | null, position: number, mode: ReadMode, out: Map<ClusterId, AnswerScore>): Promise<void> {
    for (let i = 0; i < node.children.length; i++) {
      const child = node.children[i]!;
      const lp = logp + (childLogps ? childLogps[i]! : 0);
      // follow single-child links that need no read; their tokens are decoded together with the next read
      const chain = [child];
      let last = child;
      while (last.children.length > 0 && !needsRead(last, mode)) chain.push((last = last.children[0]!));
      if (last.children.length === 0) {
        out.set(last.cluster!, { logp: lp, tokens: last.depth });
        continue;
      }
      const logps = await this.decode(
        chain.map((n) => n.token as Token),
        [[chain.length - 1, last]],
        mode,
      );
      await this.walk(last, lp, logps.get(last)!, position + chain.length, mode, out);
      await this.seq.eraseContextTokenRanges([{ start: position, end: this.seq.nextTokenIndex }]);
    }
  }

  /** Decodes `tokens` after what the sequence holds and reads, at each listed index, the log-probs of that node's children. */
  private async decode(tokens: readonly Token[], at: ReadonlyArray<readonly [number, TrieNode]>, mode: ReadMode): Promise<Map<TrieNode, Float64Array>> {
    const out = new Map<TrieNode, Float64Array>();
    if (tokens.length === 0) throw new ScoringError("nothing to evaluate (an empty prompt?)");
    const byIndex = new Map(at.map(([i, n]) => [i, n]));
    const logits = tokens.map((_, i) => byIndex.has(i));
    const { internals } = this;
    await internals._decodeTokens([...tokens], logits, PRIORITY, internals._tokenMeter, internals._contextShift, async (batchLogitIndex, tokenIndex) => {
      const node = byIndex.get(tokenIndex)!;
      const children = node.children.map((c) => c.token);
      out.set(node, await this.reads.run(() => (mode === "relative" ? this.readAllowed(batchLogitIndex, children) : this.readFull(batchLogitIndex, children))));
    });
    if (out.size !== at.length) throw new ScoringError(`llama.cpp returned logits for ${out.size} of ${at.length} positions`);
    return out;
  }

  /** log p of `tokens` over the whole vocabulary. */
  private async readFull(batchLogitIndex: number, tokens: readonly number[]): Promise<Float64Array> {
    const flat = (await this.internals._context._ctx.sampleToken(batchLogitIndex, this.full, true, false))[1];
    if (!flat) throw new ScoringError("llama.cpp returned no next-token probabilities");
    const p = new Map<number, number>();
    for (let i = 0; i < flat.length; i += 2) p.set(flat[i]!, flat[i + 1]!);
    return logOf(tokens, p);
  }

  /** log p of `tokens` among themselves (their softmax), via logit bias + top-k; falls back to a full read. */
  private async readAllowed(batchLogitIndex: number, tokens: readonly number[]): Promise<Float64Array> {
    for (const bias of BIASES) {
      this.allowed.applyConfig({ ...this.topKBase, topK: tokens.length, tokenBiasKeys: Uint32Array.from(tokens), tokenBiasValues: new Float32Array(tokens.length).fill(bias) });
      const flat = (await this.internals._context._ctx.sampleToken(batchLogitIndex, this.allowed, true, false))[1];
      if (!flat) throw new ScoringError("llama.cpp returned no next-token probabilities");
      const p = new Map<number, number>();
      for (let i = 0; i < flat.length; i += 2) p.set(flat[i]!, flat[i + 1]!);
      if (tokens.every((t) => p.has(t))) return logOf(tokens, p);
    }
    const lp = await this.readFull(batchLogitIndex, tokens);
    const lse = Math.log(lp.reduce((s, l) => s + Math.exp(l), 0));
    return lp.map((l) => l - lse);
  }
}

const needsRead = (node: TrieNode, mode: ReadMode): boolean => (mode === "relative" ? node.children.length >= 2 : node.children.length >= 1);

function logOf(tokens: readonly number[], p: ReadonlyMap<number, number>): Float64Array {
  return Float64Array.from(tokens, (t) => {
    const v = p.get(t);
    if (v === undefined || !Number.isFinite(v)) throw new ScoringError(`llama.cpp returned no finite probability for token ${t}`);
    return Math.log(v);
  });
}
