import { describe, expect, it } from "vitest";
import { compilePath } from "../src/fast-lane.js";
import { errorForLog, logSafe } from "../src/log-safety.js";
import { rawQuery } from "../src/pipeline.js";
import { NextInterestsAnswerSchema } from "../src/api-schemas.js";
import { ServingTable } from "../src/model-manager.js";
import { RenderedTable } from "../src/rendered-table.js";

describe("compilePath (fast lane routing)", () => {
  const match = compilePath("/v1/users/:userId/next-interests");

  it("matches the template exactly and decodes parameters as express does", () => {
    expect(match("/v1/users/u1/next-interests")).toEqual({ userId: "u1" });
    expect(match("/v1/users/a%20b%2Fc/next-interests")).toEqual({ userId: "a b/c" });
    expect(compilePath("/healthz")("/healthz")).toEqual({});
  });

  it("leaves anything express treats more leniently or rejects to express", () => {
    for (const path of ["/v1/users/u1/next-interests/", "/V1/users/u1/next-interests", "/v1/users//next-interests", "/v1/users/%E0%A4%A/next-interests", "/v1/users/u1/u2/next-interests", "/v1/users/u1/next"]) {
      expect(match(path), path).toBeUndefined();
    }
  });

  it("reads the query string as express's parser sees it", () => {
    expect(rawQuery("/x?k=3&mode=live")).toBe("k=3&mode=live");
    expect(rawQuery("/x?k=3#frag")).toBe("k=3");
    expect(rawQuery("/x")).toBe("");
  });
});

describe("RenderedTable", () => {
  const keywords = new Map<number, string[]>([
    [1, ['quote " and \\ backslash', "line\nbreak"]],
    [2, ["ünïcödé", "\u2028separator"]],
    [5, ["plain"]],
  ]);
  const rows = new Map([["1,2", { clusters: [5, 7, 2], probs: [0.5, 1e-7, 0.25] }]]);
  const table = new ServingTable("table-1", rows, keywords, "base-1", null, "snap-9", { weights: { rag: 0.3, popularity: 0.1 }, liveWeights: { rag: 0.3, popularity: 0.1 }, popularity: [0.5, 0.5] });
  const rendered = new RenderedTable(table);
  const row = rows.get("1,2")!;
  const expected = (userId: string | undefined, k: number) => ({
    ...(userId === undefined ? {} : { userId }),
    history: [1, 2],
    interests: row.clusters.slice(0, k).map((clusterId, i) => ({ clusterId, p: row.probs[i], keywords: keywords.get(clusterId) ?? [] })),
    lineage: { baseId: "base-1", adapterId: null, tableId: "table-1", snapshotId: "snap-9", ragBlend: 0.3, popularityBlend: 0.1, mode: "table" },
  });

  it("writes exactly the JSON of the answer object, with and without a user, for every k", () => {
    for (const userId of ['user "x"\u2028', undefined]) {
      for (const k of [1, 2, 3, 10]) {
        const text = rendered.answer(userId, [1, 2], row, k).text;
        expect(text).toBe(JSON.stringify(expected(userId, k)));
        expect(NextInterestsAnswerSchema.parse(JSON.parse(text))).toEqual(expected(userId, k));
      }
    }
  });
});

describe("log safety", () => {
  it("neutralises control characters and bounds length", () => {
    expect(logSafe("a\nb\r\u001b[31mc\u2028")).toBe("a?b??[31mc?");
    const long = logSafe("x".repeat(2000));
    expect(long.length).toBeLessThan(600);
    expect(long).toMatch(/1500 more characters/);
  });

  it("logs an error's frames without the message copy the stack starts with", () => {
    const err = Object.assign(new Error("user 'evil\n{\"level\":60}' broke"), { code: "E_X" });
    const logged = errorForLog(err);
    expect(logged.message).toBe("user 'evil?{\"level\":60}' broke");
    expect(logged.code).toBe("E_X");
    expect(logged.stack!.length).toBeGreaterThan(0);
    expect(logged.stack!.join("\n")).not.toContain("evil");
    expect(errorForLog("plain\nstring")).toEqual({ type: "string", message: "plain?string" });
  });
});
