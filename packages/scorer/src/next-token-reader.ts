import type { LlamaContextSequence, Token } from "node-llama-cpp";
import { ScoringError } from "./errors.js";

/**
 * The node-llama-cpp 3.21.1 internals a reader drives. The public `controlledEvaluate` creates, configures and
 * frees a native sampler, takes two locks and turns the addon's flat [token, p, ...] answer into a Map on every
 * call; per prompt that cost about as much as the decode. Driving `_decodeTokens` with one greedy sampler per
 * sequence and reading the flat array directly removes it. The version is pinned exactly (package.json);
 * `NextTokenReader.open` checks this shape so an upgrade that changes it fails loudly at scorer creation.
 */
export interface SequenceInternals {
  _decodeTokens(
    tokens: Token[],
    logits: boolean[],
    evaluationPriority: number,
    tokenMeter: unknown,
    contextShift: unknown,
    logitDataMapper: (batchLogitIndex: number, tokenIndex: number) => Promise<void>,
  ): Promise<unknown[]>;
  _resolveSamplerConfig(options: object): object;
  _tokenMeter: unknown;
  _contextShift: unknown;
  model: { _model: unknown };
  _context: {
    _ctx: { sampleToken(batchLogitIndex: number, sampler: NativeSampler, probabilities: true, confidence: false): Promise<[number, number[]?]> };
    _llama: { _bindings: { AddonSampler: new (model: unknown) => NativeSampler } };
  };
}
export interface NativeSampler {
  applyConfig(config: object): void;
  dispose(): void;
}

/**
 * Runs a context's logits reads one at a time. After a decode whose batch llama.cpp split into several ubatches,
 * the output rows are out of order, and llama.cpp puts them back in place on the first logits access
 * (llama_context::output_reorder, which swaps rows and then forgets the swaps). node-llama-cpp runs every
 * sampleToken on its own libuv thread, so the sequences of one batch read concurrently: two threads replaying the
 * swaps at once leave rows of other prompts under some indices, and a whole batch gets other prompts' answers.
 * It happens only for batches that mix suffix lengths, so it looked batch- and order-dependent.
 */
export class LogitsReadQueue {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(read: () => Promise<T>): Promise<T> {
    const result = this.tail.then(read);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

/** The sequence's node-llama-cpp internals, or ScoringError when they are not the shape this module drives. */
export function sequenceInternals(seq: LlamaContextSequence): SequenceInternals {
  const s = seq as unknown as Partial<SequenceInternals>;
  const ok =
    typeof s._decodeTokens === "function" &&
    typeof s._resolveSamplerConfig === "function" &&
    typeof s._context?._ctx?.sampleToken === "function" &&
    typeof s._context?._llama?._bindings?.AddonSampler === "function" &&
    s.model?._model !== undefined;
  if (!ok) throw new ScoringError("node-llama-cpp's internal sequence API is not the one this scorer drives (written against node-llama-cpp 3.21.1)");
  return s as SequenceInternals;
}

/** node-llama-cpp's default evaluation priority (all our sequences are equal). */
export const PRIORITY = 5;

/**
 * Reads next-token probabilities off one context sequence, keeping what the sequence already holds: every prompt
 * starts with `<s> <hist>` and prompts that share a history share more, so only the differing suffix is decoded.
 * The last token (`<next>`) is always re-evaluated, since its logits are the answer. Not reentrant: the pool
 * gives a reader one prompt at a time.
 */
export class NextTokenReader {
  private readonly internals: SequenceInternals;
  private readonly sampler: NativeSampler;

  private constructor(
    private readonly seq: LlamaContextSequence,
    private readonly reads: LogitsReadQueue,
  ) {
    this.internals = seq as unknown as SequenceInternals;
    const bindings = this.internals._context._llama._bindings;
    this.sampler = new bindings.AddonSampler(this.internals.model._model);
    // temperature 0: a greedy chain, so the probabilities are the plain softmax of the logits over the whole vocabulary.
    this.sampler.applyConfig(this.internals._resolveSamplerConfig({ temperature: 0 }));
  }

  /** `reads` must be shared by every reader of the sequence's context. */
  static open(seq: LlamaContextSequence, reads: LogitsReadQueue): NextTokenReader {
    sequenceInternals(seq);
    return new NextTokenReader(seq, reads);
  }

  /** Probabilities after `tokens`, flat and sorted by p descending: [token0, p0, token1, p1, ...] over the whole vocabulary. */
  async read(tokens: readonly number[]): Promise<number[]> {
    const seq = this.seq;
    const resident = seq.contextTokens;
    const keep = Math.min(resident.length, tokens.length - 1);
    let p = 0;
    while (p < keep && resident[p] === tokens[p]) p++;
    if (p < seq.nextTokenIndex) await seq.eraseContextTokenRanges([{ start: p, end: seq.nextTokenIndex }]);
    const input = tokens.slice(p) as Token[];
    const logits = new Array<boolean>(input.length).fill(false);
    logits[input.length - 1] = true;
    let probs: number[] | undefined;
    const { internals } = this;
    await internals._decodeTokens(input, logits, PRIORITY, internals._tokenMeter, internals._contextShift, async (batchLogitIndex) => {
      probs = (await this.reads.run(() => internals._context._ctx.sampleToken(batchLogitIndex, this.sampler, true, false)))[1];
    });
    if (!probs) throw new ScoringError("llama.cpp returned no next-token probabilities");
    return probs;
  }

  /** Forgets what the sequence holds (after a failed read its state is unknown). */
  async clear(): Promise<void> {
    await this.seq.clearHistory().catch(() => undefined);
  }

  dispose(): void {
    this.sampler.dispose();
  }
}
