import { z } from "zod";
import { ArtefactIdSchema } from "./api-schemas.js";
import type { ServingTable } from "./model-manager.js";

/**
 * A traffic split between the active artefacts and a candidate table: a deterministic hash of the user id puts
 * a fixed share of users in the candidate arm, so a user always sees the same arm. Answers name their arm in
 * their lineage and in the served-answer log, and /v1/quality compares the arms. Ending it is a deliberate act:
 * promote the candidate (POST /v1/admin/promote) or stop the experiment.
 */
export const ExperimentSettingsSchema = z.strictObject({
  /** Registry id of the table the candidate arm is served from (loaded beside the active one). */
  candidateTable: ArtefactIdSchema,
  /** Share of users in the candidate arm. */
  share: z.number().gt(0).lt(1).default(0.5),
  /** Salt of the user hash: another salt splits users anew. */
  salt: z.string().min(1).max(64).default("freshrec"),
});
export type ExperimentSettings = z.infer<typeof ExperimentSettingsSchema>;
export type Arm = "active" | "candidate";

/**
 * FNV-1a (32 bit) of `salt:userId`, finished with murmur3's avalanche step, as a fraction in [0, 1): stable across
 * processes and restarts. Without the final mix, ids that differ in their last characters (u1, u2, ...) fell into
 * correlated buckets under different salts.
 */
export function userBucket(userId: string, salt: string): number {
  let h = 0x811c9dc5;
  const text = `${salt}:${userId}`;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) / 2 ** 32;
}

export class Experiment {
  constructor(
    readonly settings: ExperimentSettings,
    /** The candidate arm's table, loaded when the experiment started. */
    readonly candidate: ServingTable,
    readonly since: number,
  ) {}

  armOf(userId: string): Arm {
    return userBucket(userId, this.settings.salt) < this.settings.share ? "candidate" : "active";
  }
}

/** The experiment this process runs, if any: started from the config file at startup or by an admin call. */
export class ExperimentControl {
  current: Experiment | null = null;

  constructor(
    private readonly loadTable: (id: string) => Promise<ServingTable>,
    private readonly clock: () => number,
  ) {}

  /** Loads the candidate table, then splits traffic (a running experiment is replaced). */
  async start(settings: ExperimentSettings): Promise<Experiment> {
    const candidate = await this.loadTable(settings.candidateTable);
    this.current = new Experiment(settings, candidate, this.clock());
    return this.current;
  }

  stop(): Experiment | null {
    const ended = this.current;
    this.current = null;
    return ended;
  }
}
