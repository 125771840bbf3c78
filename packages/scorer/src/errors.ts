import { FreshrecError } from "@freshrec/core";

/** A model or adapter file that is missing, unreadable or not GGUF. */
export class ModelFileError extends FreshrecError {
  constructor(
    readonly path: string,
    readonly kind: "model" | "adapter",
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(kind === "model" ? "model-file" : "adapter-file", `${kind} ${path}: ${reason}`, options);
  }
}

/** A readable GGUF file that is not a freshrec cluster model (wrong architecture, missing or inconsistent freshrec.* keys). */
export class NotAFreshrecModelError extends FreshrecError {
  constructor(
    readonly path: string,
    reason: string,
  ) {
    super("not-freshrec-model", `${path} is not a freshrec cluster model: ${reason}`);
  }
}

/** An adapter whose tensors do not fit the base model it is applied to. */
export class AdapterMismatchError extends FreshrecError {
  constructor(
    readonly adapterPath: string,
    readonly basePath: string,
    reason: string,
  ) {
    super("adapter-mismatch", `adapter ${adapterPath} does not fit base model ${basePath}: ${reason}`);
  }
}

/**
 * node-llama-cpp caches adapters by file path until the model is disposed, so a file rewritten in place
 * would silently keep serving the old weights. We refuse instead.
 */
export class StaleAdapterError extends FreshrecError {
  constructor(readonly adapterPath: string) {
    super(
      "adapter-stale",
      `adapter ${adapterPath} changed on disk after this model loaded it; llama.cpp keeps serving the cached copy. ` +
        "Write each adapter version to a new path, or reload the base model (loadClusterModel) to pick up the change",
    );
  }
}

export class ScorerDisposedError extends FreshrecError {
  constructor(what: string) {
    super("scorer-disposed", `${what} was disposed`);
  }
}

/** llama.cpp (through node-llama-cpp) did not give a usable answer: no or non-finite probabilities, or an internal API this scorer cannot drive. */
export class ScoringError extends FreshrecError {
  constructor(reason: string) {
    super("scoring-failed", `scoring failed: ${reason}`);
  }
}

/** A GGUF file freshrec cannot use as a text model (no text tokenizer, an encoder, no weights, ...); the reason says why. */
export class UnusableModelError extends FreshrecError {
  constructor(
    readonly path: string,
    reason: string,
  ) {
    super("unusable-model", `${path} cannot be used as a freshrec model: ${reason}`);
  }
}

/** Cluster descriptions whose answers tokenise to the same ids: a text model could not tell them apart. */
export class AmbiguousDescriptionsError extends FreshrecError {
  constructor(readonly groups: number[][]) {
    super(
      "ambiguous-descriptions",
      `clusters whose descriptions tokenise identically (give them distinct keywords): ${groups.map((g) => g.join(" = ")).join("; ")}`,
    );
  }
}
