import { resolveChatWrapper, type ChatWrapper, type GgufFileInfo, type LlamaModel, type Token } from "node-llama-cpp";
import {
  answerText,
  completionText,
  describeClusters,
  renderTextMessages,
  type Cluster,
  type ClusterId,
  type PromptStyle,
  type TextPromptInput,
  type TextPromptParams,
  type TextTemplate,
} from "@freshrec/core";
import { AmbiguousDescriptionsError, UnusableModelError } from "../errors.js";

/**
 * Turns text prompts and answers into the token ids of one model, the same way for training and scoring: the
 * prompt (chat messages through the GGUF's chat template for instruct models, plain text with BOS for base models),
 * then the answer tokenised on its own and appended. Tokenising the answer separately keeps every candidate's ids
 * independent of the prompt, so the prompt is evaluated once and every answer continues it.
 */
export class TextPromptEncoder {
  private constructor(
    private readonly model: LlamaModel,
    readonly template: TextTemplate,
    readonly params: TextPromptParams,
    readonly style: PromptStyle,
    private readonly chat: ChatWrapper | null,
  ) {}

  /** `fileInfo` is the model's GGUF header (readGgufFileInfo); `model` may be loaded vocabulary-only. */
  static create(model: LlamaModel, fileInfo: GgufFileInfo, path: string, style: PromptStyle, template: TextTemplate, params: TextPromptParams): TextPromptEncoder {
    let chat: ChatWrapper | null = null;
    if (style === "chat") {
      chat = resolveChatWrapper({ bosString: model.tokens.bosString, filename: path, fileInfo, tokenizer: model.tokenizer, warningLogs: false }) ?? null;
      if (chat === null) throw new UnusableModelError(path, "it has a chat template, but node-llama-cpp resolved no chat wrapper for it");
    }
    return new TextPromptEncoder(model, template, params, style, chat);
  }

  /** Name of the chat wrapper in use (null for completion prompts). */
  get chatWrapperName(): string | null {
    return this.chat?.wrapperName ?? null;
  }

  /** Prompt token ids for one input; the model's answer follows them. */
  promptTokens(input: TextPromptInput, descriptions: ReadonlyMap<ClusterId, string>): Token[] {
    const messages = renderTextMessages(this.template, descriptions, input, this.params);
    if (this.chat) {
      const history = [
        ...(messages.system ? [{ type: "system" as const, text: messages.system }] : []),
        { type: "user" as const, text: messages.user },
        { type: "model" as const, response: [] },
      ];
      return this.chat.generateContextState({ chatHistory: history }).contextText.tokenize(this.model.tokenizer);
    }
    const text = this.model.tokenize(completionText(messages), false);
    const bos = this.model.tokens.bos;
    return this.model.tokens.shouldPrependBosToken && bos !== null ? [bos, ...text] : text;
  }

  /** Answer token ids of one cluster description (special-token text in keywords stays plain text). */
  answerTokens(description: string): Token[] {
    return this.model.tokenize(answerText(this.template, this.style, description), false, "trimLeadingSpace");
  }

  /**
   * Every cluster's answer token ids. Refuses (AmbiguousDescriptionsError, naming the clusters) descriptions whose
   * answers tokenise identically, or where one answer's ids begin another's: the model could not tell them apart.
   */
  answers(clusters: readonly Pick<Cluster, "id" | "keywords">[]): { descriptions: Map<ClusterId, string>; tokens: Map<ClusterId, Token[]> } {
    const descriptions = describeClusters(clusters, this.template);
    const tokens = new Map<ClusterId, Token[]>([...descriptions].map(([c, d]) => [c, this.answerTokens(d)]));
    checkDistinct(tokens);
    return { descriptions, tokens };
  }
}

/** Groups of clusters whose answers are equal or prefixes of one another (sorted ids make a prefix sit next to its extensions). */
function checkDistinct(tokens: ReadonlyMap<ClusterId, readonly number[]>): void {
  const sorted = [...tokens].sort(([ca, a], [cb, b]) => {
    for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
    return a.length - b.length || ca - cb;
  });
  const isPrefix = (a: readonly number[], b: readonly number[]) => a.length <= b.length && a.every((t, i) => b[i] === t);
  const groups: ClusterId[][] = [];
  for (let i = 0; i < sorted.length; ) {
    const group = [sorted[i]![0]];
    let j = i + 1;
    while (j < sorted.length && isPrefix(sorted[i]![1], sorted[j]![1])) group.push(sorted[j++]![0]);
    if (group.length > 1) groups.push(group.sort((a, b) => a - b));
    i = j;
  }
  if (groups.length > 0) throw new AmbiguousDescriptionsError(groups);
}
