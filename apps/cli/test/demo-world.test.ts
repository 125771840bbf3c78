import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DAY_MS, createSyntheticWorld } from "@freshrec/core";
import { openStore } from "@freshrec/retriever";
import { claimDemoStore, WorldSource } from "../src/service/demo-world.js";

describe("the demo's store claim", () => {
  it("resumes a store of the same world and refuses one seeded by another world (changed world code)", async () => {
    const uri = join(mkdtempSync(join(tmpdir(), "demo-world-")), "store");
    const world = createSyntheticWorld("tiny");
    const store = await openStore(uri);
    try {
      expect(await claimDemoStore(store, uri, world, "tiny")).toBe("seeded");
      await new WorldSource(world, store, -Infinity, () => {}).syncTo(world.startMs + 2 * DAY_MS);
      expect(await claimDemoStore(store, uri, createSyntheticWorld("tiny"), "tiny")).toBe("resumed");
      // Another seed stands for another version of the world's code: same clusters and items, other events.
      await expect(claimDemoStore(store, uri, createSyntheticWorld("tiny", { seed: 8 }), "tiny")).rejects.toMatchObject({
        code: "usage",
        message: expect.stringMatching(/does not generate/),
      });
    } finally {
      await store.close();
    }
  }, 60_000);
});
