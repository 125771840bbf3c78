import { readFileSync } from "node:fs";
import { z } from "zod";
import { FreshrecError, ValidationError, issuesFromZod } from "../errors.js";
import type { Cluster, ClusterId } from "../schemas.js";

/**
 * The prompt of a text model: the user's last k clusters as their keyword descriptions, then the RAG lines (the
 * top-n recent successors of that history with their counts, or a line saying retrieval found nothing), then the
 * question; the answer is one cluster's description. The wording lives in a versioned template file
 * (templates/text-v1.json is the default; TEXT-TEMPLATE.md documents it) so a user can replace it. Training and
 * scoring both render through this module, so a model is always scored on the prompt it was trained on.
 *
 * A prompt renders to chat messages (system, user). Instruct models (their GGUF has a chat template) get them
 * through their own chat template (scorer/src/text/prompt-tokens.ts); base models get `completionText`.
 */

/** Placeholders each template string may use; anything else in braces is refused when the template is read. */
const PLACEHOLDERS = {
  system: [],
  prompt: ["history", "retrieval"],
  historyLine: ["keywords"],
  retrievalHeader: [],
  retrievalLine: ["keywords", "count"],
  retrievalEmpty: [],
  answer: ["keywords"],
} as const;

const templateText = (allowed: readonly string[], required: readonly string[]) =>
  z.string().superRefine((text, ctx) => {
    for (const m of text.matchAll(/\{(\w*)\}/g))
      if (!allowed.includes(m[1]!)) ctx.addIssue({ code: "custom", message: `unknown placeholder {${m[1]}} (allowed: ${allowed.map((a) => `{${a}}`).join(", ") || "none"})` });
    for (const r of required) if (!text.includes(`{${r}}`)) ctx.addIssue({ code: "custom", message: `must contain {${r}}` });
  });

export const TextTemplateSchema = z
  .object({
    format: z.literal("freshrec.text-template"),
    /** Bumped when the meaning of a field changes; a model's manifest records the template it was trained with. */
    version: z.literal(1),
    system: templateText(PLACEHOLDERS.system, []),
    prompt: templateText(PLACEHOLDERS.prompt, ["history", "retrieval"]),
    historyLine: templateText(PLACEHOLDERS.historyLine, ["keywords"]),
    retrievalHeader: templateText(PLACEHOLDERS.retrievalHeader, []),
    retrievalLine: templateText(PLACEHOLDERS.retrievalLine, ["keywords"]),
    retrievalEmpty: templateText(PLACEHOLDERS.retrievalEmpty, []),
    keywordSeparator: z.string().min(1),
    /** The answer appended after the prompt: completion style (base models) and chat style (instruct models). */
    answer: z.object({ completion: templateText(PLACEHOLDERS.answer, ["keywords"]), chat: templateText(PLACEHOLDERS.answer, ["keywords"]) }).strict(),
  })
  .strict();
export type TextTemplate = z.infer<typeof TextTemplateSchema>;

/** How the rendered messages become model input: the GGUF's chat template (instruct models) or plain text (base models). */
export type PromptStyle = "chat" | "completion";

export interface TextPromptParams {
  /** History length (the paper's k). */
  k: number;
  /** RAG lines: the top-n retrieved successors (the paper injects the top 1). */
  ragLines: number;
}
export const DEFAULT_RAG_LINES = 1;

/** One retrieved successor of the history and how often it followed in the retrieval window. */
export interface RagLine {
  clusterId: ClusterId;
  count: number;
}

export interface TextPromptInput {
  /** The user's clusters, oldest first; the last k are described. */
  history: readonly ClusterId[];
  /** Retrieved successors, best first; null or empty: retrieval found nothing. */
  rag: readonly RagLine[] | null;
}

/** A rendered prompt as chat messages. */
export interface TextMessages {
  system: string;
  user: string;
}

/** Cluster id -> its description (keywords joined by the template's separator). */
export type ClusterDescriptions = ReadonlyMap<ClusterId, string>;

const fill = (text: string, vars: Record<string, string>): string => text.replace(/\{(\w+)\}/g, (_, name: string) => vars[name]!);

/** Parses a template (a file's parsed JSON, or an object) or throws a ValidationError naming `where` and each bad field. */
export function parseTextTemplate(input: unknown, where: string): TextTemplate {
  const result = TextTemplateSchema.safeParse(input);
  if (!result.success) throw new ValidationError(where, issuesFromZod(result.error, input));
  return result.data;
}

/** Reads a template file (JSON); a missing or malformed file fails naming the path. */
export function loadTextTemplate(path: string): TextTemplate {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new ValidationError(path, [{ path: "", message: `not a readable JSON text template (${(err as Error).message})` }]);
  }
  return parseTextTemplate(json, path);
}

let defaultTemplate: TextTemplate | null = null;
/** The shipped template, templates/text-v1.json. */
export function defaultTextTemplate(): TextTemplate {
  defaultTemplate ??= loadTextTemplate(new URL("./templates/text-v1.json", import.meta.url).pathname);
  return defaultTemplate;
}

/** Each cluster's description under `template`; descriptions are keywords only, so a cluster added later is described the same way. */
export function describeClusters(clusters: readonly Pick<Cluster, "id" | "keywords">[], template: TextTemplate): Map<ClusterId, string> {
  return new Map(clusters.map((c) => [c.id, c.keywords.map((k) => k.trim()).join(template.keywordSeparator)]));
}

function describe(descriptions: ClusterDescriptions, c: ClusterId, what: string): string {
  const d = descriptions.get(c);
  if (d === undefined) throw new FreshrecError("unknown-cluster", `${what}: cluster ${c} has no description (known clusters: ${descriptions.size})`);
  return d;
}

/** The prompt for one input as chat messages. */
export function renderTextMessages(template: TextTemplate, descriptions: ClusterDescriptions, input: TextPromptInput, params: TextPromptParams): TextMessages {
  const history = input.history
    .slice(-params.k)
    .map((c) => fill(template.historyLine, { keywords: describe(descriptions, c, "history") }))
    .join("\n");
  const rag = (input.rag ?? []).slice(0, params.ragLines);
  const retrieval =
    rag.length === 0
      ? template.retrievalEmpty
      : [template.retrievalHeader, ...rag.map((r) => fill(template.retrievalLine, { keywords: describe(descriptions, r.clusterId, "rag"), count: String(r.count) }))].join("\n");
  return { system: template.system, user: fill(template.prompt, { history, retrieval }) };
}

/** A base model's prompt: the messages as plain text. */
export const completionText = (m: TextMessages): string => (m.system ? `${m.system}\n\n${m.user}` : m.user);

/** The answer text for a cluster description, appended after the prompt (its token ids follow the prompt's). */
export const answerText = (template: TextTemplate, style: PromptStyle, description: string): string => fill(template.answer[style], { keywords: description });
