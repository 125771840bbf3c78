import { FreshrecError } from "@freshrec/core";

/** The native trainer could not be built, failed, or printed something the bridge does not understand. */
export class TrainerError extends FreshrecError {
  constructor(
    message: string,
    /** Exit code of the trainer process, when it ran. */
    readonly exitCode?: number,
    options?: { cause?: unknown },
  ) {
    super("trainer", message, options);
  }
}

/** The native trainer cannot be built on this machine (no compiler, no git, missing prebuilt libraries). */
export class TrainerBuildError extends FreshrecError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("trainer-build", message, options);
  }
}
