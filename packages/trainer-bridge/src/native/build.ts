import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { TrainerBuildError } from "./errors.js";

/**
 * Builds packages/trainer-bridge/native/ into native/build/freshrec-trainer with g++, against the ggml/llama
 * libraries node-llama-cpp ships prebuilt and the headers of the llama.cpp source bundled with it (a git bundle,
 * cloned locally: nothing is downloaded). The build is skipped when sources, headers and flags are unchanged.
 */

const NATIVE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "../../native");
const BUILD_DIR = join(NATIVE_DIR, "build");
export const TRAINER_PATH = join(BUILD_DIR, "freshrec-trainer");
const LIBS = ["libllama.v0.4.0.so", "libggml.v0.4.0.so", "libggml-base.so"];

/** Walks up from a resolved entry file to the folder whose package.json carries `name`. */
function packageRoot(entry: string, name: string): string {
  for (let dir = dirname(entry); dir !== dirname(dir); dir = dirname(dir)) {
    const pkg = join(dir, "package.json");
    if (existsSync(pkg) && JSON.parse(readFileSync(pkg, "utf8")).name === name) return dir;
  }
  throw new TrainerBuildError(`cannot find the package folder of ${name} above ${entry}`);
}

export interface LlamaPaths {
  /** Folder with libllama / libggml / libggml-cpu-*.so from @node-llama-cpp/linux-x64. */
  libDir: string;
  /** The llama.cpp source bundle (git bundle) inside node-llama-cpp. */
  bundle: string;
}

/** Locates node-llama-cpp's prebuilt libraries and source bundle through node's module resolution. */
export function llamaPaths(): LlamaPaths {
  const req = createRequire(import.meta.url);
  let nlcRoot: string;
  try {
    nlcRoot = packageRoot(req.resolve("node-llama-cpp"), "node-llama-cpp");
  } catch (cause) {
    throw new TrainerBuildError("node-llama-cpp is not installed (run `npx -y pnpm@12.4.2 install`)", { cause });
  }
  const platformPkg = `@node-llama-cpp/${process.platform}-${process.arch}`;
  let libDir: string;
  try {
    libDir = join(packageRoot(createRequire(join(nlcRoot, "package.json")).resolve(platformPkg), platformPkg), "bins", `${process.platform}-${process.arch}`);
  } catch (cause) {
    throw new TrainerBuildError(`${platformPkg} (node-llama-cpp's prebuilt binaries) is not installed`, { cause });
  }
  for (const lib of LIBS)
    if (!existsSync(join(libDir, lib))) throw new TrainerBuildError(`prebuilt library ${lib} is missing from ${libDir}`);
  const bundle = join(nlcRoot, "llama", "gitRelease.bundle");
  if (!existsSync(bundle)) throw new TrainerBuildError(`llama.cpp source bundle not found at ${bundle}`);
  return { libDir, bundle };
}

function run(cmd: string, args: string[], what: string): void {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  if (r.error && (r.error as NodeJS.ErrnoException).code === "ENOENT")
    throw new TrainerBuildError(`${cmd} not found: it is needed to ${what} (on Debian: apt-get install ${cmd === "git" ? "git" : "g++"})`);
  if (r.status !== 0) throw new TrainerBuildError(`${what} failed (${cmd} exit ${r.status}):\n${(r.stderr || r.stdout).slice(-4000)}`);
}

/** Clones the bundled llama.cpp source once (headers only are used); keyed by the bundle's size and mtime. */
function llamaSource(bundle: string): string {
  const st = statSync(bundle);
  const dir = join(BUILD_DIR, `llama.cpp-${st.size}-${Math.floor(st.mtimeMs)}`);
  if (existsSync(join(dir, "include", "llama.h"))) return dir;
  mkdirSync(BUILD_DIR, { recursive: true });
  // Clone beside the target and rename, so concurrent builds (parallel test workers) never see half a tree.
  const tmp = `${dir}.tmp-${process.pid}`;
  try {
    run("git", ["clone", "--quiet", bundle, tmp], "unpack the llama.cpp headers from node-llama-cpp's source bundle");
    if (!existsSync(dir)) renameSync(tmp, dir);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return dir;
}

/**
 * A vocabulary-only GGUF of a production tokenizer from the bundled llama.cpp source (`models/ggml-vocab-<name>.gguf`,
 * e.g. llama-bpe for Llama 3, qwen2 with its chat template, starcoder with SmolLM2's vocabulary size): real tokenizers
 * for text models built without downloads.
 */
export function bundledVocab(name: string): string {
  const models = join(llamaSource(llamaPaths().bundle), "models");
  const path = join(models, `ggml-vocab-${name}.gguf`);
  if (!existsSync(path)) {
    const known = readdirSync(models).filter((f) => /^ggml-vocab-.*\.gguf$/.test(f)).map((f) => f.slice(11, -5));
    throw new TrainerBuildError(`no bundled vocabulary '${name}' in ${models} (available: ${known.join(", ")})`);
  }
  return path;
}

function sourceFiles(): string[] {
  const dir = join(NATIVE_DIR, "src");
  return readdirSync(dir)
    .filter((f) => /\.(cpp|h)$/.test(f))
    .sort()
    .map((f) => join(dir, f));
}

/** Content hash of the build inputs that every object depends on: compile flags and all headers. */
function commonKey(compileArgs: string[], headers: string[]): string {
  const hash = createHash("sha256").update(JSON.stringify(compileArgs));
  for (const f of headers) hash.update(basename(f)).update(readFileSync(f));
  return hash.digest("hex");
}

/**
 * Compiles one source file into an object named by the hash of its inputs, unless that object exists already:
 * editing one .cpp recompiles only that file (a header edit recompiles all). Returns the object's path.
 */
function compileObject(src: string, compileArgs: string[], common: string, objDir: string): string {
  const key = createHash("sha256").update(common).update(readFileSync(src)).digest("hex").slice(0, 16);
  const stem = basename(src, ".cpp");
  const obj = join(objDir, `${stem}-${key}.o`);
  if (existsSync(obj)) return obj;
  const tmp = `${obj}.tmp-${process.pid}`;
  try {
    run("g++", [...compileArgs, "-c", src, "-o", tmp], `compile ${basename(src)}`);
    renameSync(tmp, obj);
  } finally {
    rmSync(tmp, { force: true });
  }
  // Objects of older versions of this file are dead weight.
  for (const f of readdirSync(objDir)) if (f.startsWith(`${stem}-`) && f.endsWith(".o") && join(objDir, f) !== obj) rmSync(join(objDir, f), { force: true });
  return obj;
}

/** Builds the trainer if needed and returns the binary's path. */
export async function ensureTrainer(): Promise<string> {
  const { libDir, bundle } = llamaPaths();
  const src = llamaSource(bundle);
  const files = sourceFiles();
  const compileArgs = [
    "-O2", "-std=c++17", "-Wall", "-pthread",
    `-DFRESHREC_GGML_LIBS="${libDir}"`,
    `-I${join(src, "include")}`, `-I${join(src, "ggml", "include")}`,
  ];
  const linkArgs = ["-pthread", `-L${libDir}`, ...LIBS.map((l) => `-l:${l}`), `-Wl,-rpath,${libDir}`];
  const objDir = join(BUILD_DIR, "obj");
  mkdirSync(objDir, { recursive: true });
  const common = commonKey(compileArgs, files.filter((f) => f.endsWith(".h")));
  const objects = files.filter((f) => f.endsWith(".cpp")).map((f) => compileObject(f, compileArgs, common, objDir));
  const key = createHash("sha256").update(JSON.stringify(linkArgs)).update(objects.join("\n")).digest("hex");
  const stamp = join(BUILD_DIR, "freshrec-trainer.stamp");
  if (existsSync(TRAINER_PATH) && existsSync(stamp) && readFileSync(stamp, "utf8") === key) return TRAINER_PATH;

  const tmp = `${TRAINER_PATH}.tmp-${process.pid}`;
  try {
    run("g++", [...objects, ...linkArgs, "-o", tmp], "link the native trainer");
    renameSync(tmp, TRAINER_PATH);
  } finally {
    rmSync(tmp, { force: true });
  }
  writeFileSync(stamp, key);
  return TRAINER_PATH;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  ensureTrainer().then(
    (path) => console.log(`freshrec-trainer ready: ${path}`),
    (err: Error) => {
      console.error(err.message);
      process.exit(1);
    },
  );
}
