import { describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawn } from "node:child_process";
import { acquireWriterLock, StoreLockedError, WriterLockHolderSchema } from "../src/index.js";

const LOCK_MODULE = join(import.meta.dirname, "../src/writer-lock.ts");

/** A separate process that takes the lock, prints its holder, and waits (or is told to die). */
function holderProcess(store: string, after: "wait" | "sigkill", env: Record<string, string> = {}) {
  const script = `
    import { acquireWriterLock } from ${JSON.stringify(LOCK_MODULE)};
    try {
      const lock = acquireWriterLock(${JSON.stringify(store)}, { command: "test holder" });
      console.log(JSON.stringify({ ok: true, owned: lock.owned, token: lock.holder.token }));
      ${after === "sigkill" ? 'process.kill(process.pid, "SIGKILL");' : "setInterval(() => {}, 1000);"}
    } catch (err) {
      console.log(JSON.stringify({ ok: false, code: err.code, message: err.message }));
    }`;
  return spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, ...env } });
}

const firstLine = (child: ReturnType<typeof holderProcess>) =>
  new Promise<{ ok: boolean; owned?: boolean; token?: string; code?: string; message?: string }>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf("\n");
      if (nl >= 0) resolve(JSON.parse(out.slice(0, nl)));
    });
    child.once("exit", (code) => (out.includes("\n") ? undefined : reject(new Error(`holder exited ${code} without a line`))));
  });

describe("the store's writer lock", () => {
  it("names its holder to anyone refused, and is released for the next writer", () => {
    const store = join(mkdtempSync(join(tmpdir(), "lock-")), "store");
    const lock = acquireWriterLock(store, { command: "freshrec serve --role writer" });
    expect(lock.owned).toBe(true);
    expect(WriterLockHolderSchema.parse(JSON.parse(readFileSync(join(store, "writer.lock"), "utf8")))).toMatchObject({ pid: process.pid, command: "freshrec serve --role writer" });
    let refused: unknown;
    try {
      acquireWriterLock(store, { command: "freshrec import events" });
    } catch (err) {
      refused = err;
    }
    // The same process asking again is refused too: a holder is a lock, not a process.
    expect(refused).toBeInstanceOf(StoreLockedError);
    expect((refused as StoreLockedError).message).toMatch(new RegExp(`being written by 'freshrec serve --role writer' \\(pid ${process.pid} on `));
    lock.release();
    expect(existsSync(join(store, "writer.lock"))).toBe(false);
    acquireWriterLock(store, { command: "next" }).release();
  });

  it("takes over a lock whose holder was killed, and one whose heartbeat stopped on another host", async () => {
    const store = join(mkdtempSync(join(tmpdir(), "lock-")), "store");
    const killed = holderProcess(store, "sigkill");
    expect((await firstLine(killed)).ok).toBe(true);
    await new Promise((r) => killed.once("exit", r));
    const after = acquireWriterLock(store, { command: "after a crash" });
    expect(after.owned).toBe(true);
    after.release();

    const now = Date.now();
    writeFileSync(join(store, "writer.lock"), JSON.stringify({ pid: 1, host: "elsewhere", command: "far away", startedAt: now - 600_000, heartbeatAt: now - 120_000, token: "0123456789abcdef0123" }));
    const took = acquireWriterLock(store, { command: "here", staleMs: 60_000 });
    expect(took.owned).toBe(true);
    took.release();
    writeFileSync(join(store, "writer.lock"), JSON.stringify({ pid: 1, host: "elsewhere", command: "far away", startedAt: now, heartbeatAt: Date.now(), token: "0123456789abcdef0123" }));
    expect(() => acquireWriterLock(store, { command: "here" })).toThrow(/being written by 'far away' \(pid 1 on elsewhere/);
  });

  it("lets the holder's own job processes write under it, and nobody else", async () => {
    const store = join(mkdtempSync(join(tmpdir(), "lock-")), "store");
    const lock = acquireWriterLock(store, { command: "writer" });
    const child = holderProcess(store, "wait", { FRESHREC_WRITER_TOKEN: lock.holder.token });
    const line = await firstLine(child);
    child.kill("SIGKILL");
    expect(line).toMatchObject({ ok: true, owned: false, token: lock.holder.token });
    const stranger = holderProcess(store, "wait", { FRESHREC_WRITER_TOKEN: "not-the-token-at-all" });
    const refused = await firstLine(stranger);
    stranger.kill("SIGKILL");
    expect(refused).toMatchObject({ ok: false, code: "store-locked" });
    lock.release();
  });

  it("two processes racing for a dead holder's lock: exactly one wins", async () => {
    for (let round = 0; round < 3; round++) {
      const store = join(mkdtempSync(join(tmpdir(), "lock-")), "store");
      const dead = holderProcess(store, "sigkill");
      await firstLine(dead);
      await new Promise((r) => dead.once("exit", r));
      const racers = [holderProcess(store, "wait"), holderProcess(store, "wait")];
      const lines = await Promise.all(racers.map(firstLine));
      for (const r of racers) r.kill("SIGKILL");
      expect(lines.filter((l) => l.ok).length, JSON.stringify(lines)).toBe(1);
      expect(lines.filter((l) => !l.ok)[0]).toMatchObject({ code: "store-locked" });
    }
  }, 60_000);
});

