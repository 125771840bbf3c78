import { type FileHandle, open } from "node:fs/promises";
import { createInterface } from "node:readline";
import { FreshrecError } from "../errors.js";

/** Lines of a UTF-8 text file, streamed (bounded memory). A missing or unreadable file is a FreshrecError naming the path. */
export async function* readLines(path: string): AsyncGenerator<string> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(path, "r");
    if (!(await handle.stat()).isFile()) throw new Error("not a regular file");
  } catch (err) {
    await handle?.close();
    throw new FreshrecError("io", `cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  const stream = handle.createReadStream({ encoding: "utf8" });
  const rl = createInterface({ input: stream, crlfDelay: Infinity });
  try {
    for await (const line of rl) yield line;
  } catch (err) {
    throw new FreshrecError("io", `error while reading ${path}: ${(err as Error).message}`, { cause: err });
  } finally {
    rl.close();
    stream.destroy();
    await handle.close().catch(() => undefined);
  }
}
