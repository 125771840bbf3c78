import { FreshrecError } from "@freshrec/core";

/** A replay that cannot run as asked: bad option, empty test period, missing dependency, failed update. */
export class ReplayError extends FreshrecError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("replay", message, options);
  }
}
