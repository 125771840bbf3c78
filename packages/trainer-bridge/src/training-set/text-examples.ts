import { FreshrecError, type Cluster, type ClusterId } from "@freshrec/core";
import type { TextPromptEncoder } from "@freshrec/scorer";
import type { TrainingExample, TrainingSet } from "./build.js";

/** One text-model training example: the prompt's token ids and the answer's (the loss is on the answer only). */
export interface TextTokenExample {
  prompt: number[];
  answer: number[];
}

/**
 * Renders a training set for a text model through the same encoder the scorer uses (scorer/src/text/prompt-encoder.ts),
 * so the model is trained on exactly the prompts and answers it is scored on: history and RAG lines as keyword
 * descriptions, RAG counts as retrieved at each example's time, the next cluster's description as the answer.
 * Refuses cluster descriptions that tokenise identically (AmbiguousDescriptionsError, naming them).
 */
export function textTokenExamples(
  set: Pick<TrainingSet, "train" | "val">,
  encoder: TextPromptEncoder,
  clusters: readonly Pick<Cluster, "id" | "keywords">[],
): { examples: TextTokenExample[]; valExamples: TextTokenExample[] } {
  const { descriptions, tokens } = encoder.answers(clusters);
  const render = (e: TrainingExample): TextTokenExample => {
    const answer = tokens.get(e.next);
    if (!answer) throw new FreshrecError("training-set", `example at ${e.ts}: next cluster ${e.next} has no description`);
    if (e.rag !== null && e.rag.length > 0 && e.ragCounts?.length !== e.rag.length)
      throw new FreshrecError("training-set", `example at ${e.ts}: RAG successors without their counts (built before text models?)`);
    const rag = e.rag === null ? null : e.rag.map((clusterId: ClusterId, i) => ({ clusterId, count: e.ragCounts![i]! }));
    return { prompt: encoder.promptTokens({ history: e.history, rag }, descriptions), answer };
  };
  return { examples: set.train.map(render), valExamples: set.val.map(render) };
}
