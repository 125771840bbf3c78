import { z } from "zod";

/**
 * The two kinds of model freshrec runs. "cluster-token": freshrec's own network, one token per cluster, trained
 * from scratch (layout.ts); its vocabulary is fixed when the base is trained. "text": any GGUF llama.cpp loads with
 * a text tokenizer, reading clusters as keyword descriptions (text-prompt.ts), so clusters born later need no retraining.
 */
export const ModelKindSchema = z.enum(["cluster-token", "text"]);
export type ModelKind = z.infer<typeof ModelKindSchema>;
