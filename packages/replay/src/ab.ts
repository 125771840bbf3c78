import { bootstrapCI, bootstrapDiffCI, mean, mulberry32, type SyntheticWorld, type Transition } from "@freshrec/core";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { openStore } from "@freshrec/retriever";
import { loadScoringModel } from "@freshrec/scorer";
import { createApp, NextInterestsAnswerSchema, ServerConfigSchema, type FreshrecApp } from "@freshrec/server";
import { openRegistry } from "@freshrec/registry";
import { ReplayError } from "./errors.js";
import type { AbResult } from "./results.js";

/** An arm: a model strategy whose registry a real server follows, and the table the replay says it serves now. */
export interface AbArm {
  name: string;
  modelsDir: string;
  servedTableId(): string;
}

export interface AbOptions {
  storeUri: string;
  world: SyntheticWorld;
  arms: AbArm[];
  /** Requests per arm, about: test transitions are sampled so that the total is near arms x this. */
  requestsPerArm: number;
  /** Test transitions the walk will visit (to set the sampling rate). */
  testTransitions: number;
  seed: number;
  /** How long to wait for a server to hot-swap to the table its strategy just promoted. */
  swapTimeoutMs?: number;
}

/** FNV-1a of a user id: the stable part of the seeded arm assignment. */
function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface ArmServer {
  url: string;
  app: FreshrecApp;
  http: Server;
}

/** The real express app (createApp) on 127.0.0.1 with the real store, registry and model loader. */
async function startArmServer(storeUri: string, modelsDir: string): Promise<ArmServer> {
  const config = ServerConfigSchema.parse({ port: 0, host: "127.0.0.1", storeUri, modelsDir, auth: { enabled: false, keys: [] }, logLevel: "silent" });
  const app = createApp({ config, store: await openStore(storeUri), registry: openRegistry(modelsDir), loadModel: loadScoringModel });
  const http = app.listen(0, "127.0.0.1");
  await new Promise<void>((resolve, reject) => {
    http.once("listening", resolve);
    http.once("error", reject);
  });
  await app.start();
  return { url: `http://127.0.0.1:${(http.address() as AddressInfo).port}`, app, http };
}

async function stopArmServer(s: ArmServer): Promise<void> {
  await new Promise<void>((resolve) => {
    s.http.close(() => resolve());
    s.http.closeAllConnections();
  });
  await s.app.close();
}

/**
 * A simulated A/B test served by the real freshrec HTTP server: one server per arm on 127.0.0.1, each following
 * its strategy's registry (hot swaps included). Users of the synthetic world arrive at the replay's test
 * transitions; each user is assigned to one arm for good (seeded hash), asks POST /v1/next-interests with the
 * history they hold at that time, and accepts the top recommendation with the world's ground-truth probability.
 */
export class ServerAb {
  private readonly sample: () => number;
  private readonly accept: () => number;
  private readonly outcomes: number[][];
  private readonly users = new Set<string>();
  private readonly rate: number;
  private swapWaits = 0;

  private constructor(
    private readonly o: AbOptions,
    private readonly servers: ArmServer[],
  ) {
    this.outcomes = o.arms.map(() => []);
    this.sample = mulberry32(o.seed ^ 0x5a5a);
    this.accept = mulberry32(o.seed ^ 0xacce);
    this.rate = Math.min(1, (o.requestsPerArm * o.arms.length) / Math.max(1, o.testTransitions));
  }

  static async start(o: AbOptions): Promise<ServerAb> {
    if (o.arms.length < 2) throw new ReplayError(`--ab needs at least two arms (treatment first), got ${o.arms.map((a) => a.name).join(",") || "none"}`);
    const servers: ArmServer[] = [];
    try {
      for (const arm of o.arms) servers.push(await startArmServer(o.storeUri, arm.modelsDir));
    } catch (err) {
      for (const s of servers) await stopArmServer(s);
      throw new ReplayError(`simulated A/B: starting the servers failed: ${(err as Error).message}`, { cause: err });
    }
    return new ServerAb(o, servers);
  }

  /** Serves the sampled transitions of one timestamp (called after every strategy advanced to it). */
  async visit(group: readonly Transition[]): Promise<void> {
    for (const t of group) {
      if (this.sample() >= this.rate) continue;
      const user = t.userId ?? "";
      if (!user) throw new ReplayError(`simulated A/B: the transition at ${t.ts} has no user id`);
      const i = Math.floor(mulberry32(this.o.seed ^ hash32(user))() * this.o.arms.length);
      const top = await this.recommend(i, t.history);
      const p = top === undefined ? 0 : this.o.world.acceptProbability(t.history, top, t.ts);
      this.outcomes[i]!.push(this.accept() < p ? 1 : 0);
      this.users.add(user);
    }
  }

  /** Top-1 from arm i's server, once it serves the table its strategy is on now. */
  private async recommend(i: number, history: readonly number[]): Promise<number | undefined> {
    const arm = this.o.arms[i]!;
    const server = this.servers[i]!;
    const expected = arm.servedTableId();
    const deadline = performance.now() + (this.o.swapTimeoutMs ?? 60_000);
    for (let waited = false; ; waited = true) {
      const res = await fetch(`${server.url}/v1/next-interests`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ history, k: 1, mode: "table" }),
      });
      const text = await res.text();
      if (res.status !== 200 && res.status !== 503) throw new ReplayError(`simulated A/B, arm ${arm.name}: POST /v1/next-interests answered ${res.status}: ${text.slice(0, 300)}`);
      if (res.status === 200) {
        const answer = NextInterestsAnswerSchema.parse(JSON.parse(text));
        if (answer.lineage.tableId === expected) {
          if (waited) this.swapWaits++;
          return answer.interests[0]?.clusterId;
        }
      }
      if (performance.now() > deadline) {
        const model = (await (await fetch(`${server.url}/v1/model`)).json()) as { lineage?: unknown; lastSwap?: unknown; registryActive?: unknown };
        throw new ReplayError(
          `simulated A/B, arm ${arm.name}: the server at ${server.url} did not switch to table ${expected} within ${this.o.swapTimeoutMs ?? 60_000} ms ` +
            `(GET /v1/model: lineage ${JSON.stringify(model.lineage)}, last swap ${JSON.stringify(model.lastSwap)}, registry active ${JSON.stringify(model.registryActive)})`,
        );
      }
      await sleep(25);
    }
  }

  result(): AbResult {
    const [t, c] = [this.o.arms[0]!.name, this.o.arms[1]!.name];
    const empty = this.o.arms.filter((_, i) => this.outcomes[i]!.length === 0).map((a) => a.name);
    if (empty.length > 0) throw new ReplayError(`simulated A/B: no simulated user reached arm(s) ${empty.join(", ")}; raise --ab-users or the test period`);
    const arms = this.o.arms.map((a, i) => {
      const v = this.outcomes[i]!;
      const ci = bootstrapCI(v, { seed: this.o.seed * 17 + i });
      return { arm: a.name, served: v.length, accepted: v.reduce((s, x) => s + x, 0), rate: v.length ? mean(v) : 0, ci: [ci.lo, ci.hi] as [number, number] };
    });
    const d = bootstrapDiffCI(this.outcomes[0]!, this.outcomes[1]!, { seed: this.o.seed * 19 });
    return {
      arms,
      difference: { treatment: t, control: c, value: d.mean, ci: [d.lo, d.hi] },
      users: this.users.size,
      requests: this.outcomes.reduce((s, v) => s + v.length, 0),
      via: "freshrec HTTP server (POST /v1/next-interests, table mode, top-1), one per arm on 127.0.0.1",
      hotSwapWaits: this.swapWaits,
    };
  }

  async close(): Promise<void> {
    for (const s of this.servers) await stopArmServer(s);
  }
}
