import { readFileSync } from "node:fs";
import { join } from "node:path";
import { getLlama, LlamaLogLevel, readGgufFileInfo, resolveChatWrapper, type Token } from "node-llama-cpp";
import { afterAll, describe, expect, it } from "vitest";
import { bundledVocab, initTextModel, TrainerError } from "../src/index.js";
import { tempDir } from "./native-fixtures.js";
import { tokenizerVectors } from "./text-fixtures.js";

const tmp = tempDir();
afterAll(() => tmp.cleanup());
const llama = getLlama({ build: "never", logLevel: LlamaLogLevel.error });

/** Every key of a GGUF's metadata under `prefix`, flattened to dotted names. */
async function metadataUnder(path: string, prefix: string): Promise<Map<string, unknown>> {
  const { metadata } = await readGgufFileInfo(path, { readTensorInfo: false });
  const out = new Map<string, unknown>();
  const walk = (o: Record<string, unknown>, p: string) => {
    for (const [k, v] of Object.entries(o)) {
      if (v && typeof v === "object" && !Array.isArray(v)) walk(v as Record<string, unknown>, `${p}${k}.`);
      else if (`${p}${k}`.startsWith(prefix)) out.set(`${p}${k}`, v);
    }
  };
  walk(metadata as unknown as Record<string, unknown>, "");
  return out;
}

// Each case writes and loads models of up to 150k-token vocabularies: seconds, not the default 5.
describe("init-text", { timeout: 60_000 }, () => {
  it.each(["llama-bpe", "qwen2"])("writes a llama model around the %s tokenizer that llama.cpp tokenizes as the real one", async (vocabName) => {
    const vocab = bundledVocab(vocabName);
    const out = join(tmp.dir, `${vocabName}.gguf`);
    const r = await initTextModel({ vocab, out, preset: "tiny", seed: 7 });
    expect(r.hparams).toMatchObject({ nEmbd: 64, nLayer: 2, nHead: 4, nHeadKv: 2, tied: true });

    // The tokenizer is copied verbatim; the vocabulary file's own architecture keys are not.
    const [want, got] = await Promise.all([metadataUnder(vocab, "tokenizer."), metadataUnder(out, "tokenizer.")]);
    expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
    for (const [k, v] of want) expect(got.get(k), k).toEqual(v);
    const info = await readGgufFileInfo(out);
    expect(info.metadata.general.architecture).toBe("llama");
    const names = info.tensorInfo!.map((t) => t.name);
    expect(names).toContain("token_embd.weight");
    expect(names).not.toContain("output.weight"); // tied
    expect(info.tensorInfo!.find((t) => t.name === "blk.0.attn_k.weight")!.dimensions.map(Number)).toEqual([64, 32]); // 2 kv heads of 16

    const model = await (await llama).loadModel({ modelPath: out });
    try {
      expect(model.fileInsights.trainContextSize).toBe(256);
      const vectors = tokenizerVectors(vocab);
      expect(vectors.length).toBeGreaterThan(30);
      for (const { text, ids } of vectors) {
        const toks = model.tokenize(text, false);
        expect(Array.from(toks), JSON.stringify(text)).toEqual(ids);
      }
      const sentence = "Baking bread → cooking pasta: 3 ½ cups, naïve café 🦙";
      expect(model.detokenize(model.tokenize(sentence, false))).toBe(sentence);

      // It runs: a full next-token distribution over the real vocabulary.
      const ctx = await model.createContext({ contextSize: 64, threads: 1 });
      const toks = model.tokenize("Hello world", false);
      const res = await ctx.getSequence().controlledEvaluate([...toks.slice(0, -1), [toks.at(-1) as Token, { generateNext: { probabilities: true } }]]);
      const probs = res.at(-1)!.next!.probabilities!;
      expect(probs.size).toBe(r.hparams.nVocab);
      expect([...probs.values()].reduce((s, p) => s + p, 0)).toBeCloseTo(1, 3);
      await ctx.dispose();
    } finally {
      await model.dispose();
    }
  });

  it("keeps the Qwen2 chat template readable by node-llama-cpp's chat wrapper resolution", async () => {
    const out = join(tmp.dir, "qwen2-chat.gguf");
    await initTextModel({ vocab: bundledVocab("qwen2"), out, layout: { nEmbd: 32, nFf: 32, nHead: 2, nHeadKv: 1, nLayer: 1 } });
    const template = (await metadataUnder(bundledVocab("qwen2"), "tokenizer.chat_template")).get("tokenizer.chat_template");
    expect(typeof template).toBe("string");
    const model = await (await llama).loadModel({ modelPath: out });
    try {
      expect(model.fileInfo.metadata.tokenizer.chat_template).toBe(template);
      expect(resolveChatWrapper(model)?.wrapperName).toBe("ChatML");
    } finally {
      await model.dispose();
    }
  });

  it("writes every dtype from the same seeded weights, deterministically", async () => {
    const vocab = bundledVocab("starcoder"); // 49k tokens keep four model loads quick
    const paths: Record<string, string> = {};
    for (const dtype of ["f32", "f16", "bf16", "q8_0"] as const) {
      paths[dtype] = join(tmp.dir, `d-${dtype}.gguf`);
      const r = await initTextModel({ vocab, out: paths[dtype]!, dtype, seed: 11, layout: { nEmbd: 32, nFf: 64, nHead: 2, nHeadKv: 1, nLayer: 1, tied: false } });
      expect(r.dtype).toBe(dtype);
      const info = await readGgufFileInfo(paths[dtype]!);
      const types = new Map(info.tensorInfo!.map((t) => [t.name, t.ggmlType]));
      expect(types.get("output.weight")).toBe({ f32: 0, f16: 1, bf16: 30, q8_0: 8 }[dtype]); // ggml type ids
      expect(types.get("output_norm.weight")).toBe(0); // norms stay F32
      const model = await (await llama).loadModel({ modelPath: paths[dtype]! });
      await model.dispose();
    }
    const again = join(tmp.dir, "again.gguf");
    await initTextModel({ vocab, out: again, dtype: "f32", seed: 11, layout: { nEmbd: 32, nFf: 64, nHead: 2, nHeadKv: 1, nLayer: 1, tied: false } });
    expect(readFileSync(again).equals(readFileSync(paths.f32!))).toBe(true);
    await initTextModel({ vocab, out: again, dtype: "f32", seed: 12, layout: { nEmbd: 32, nFf: 64, nHead: 2, nHeadKv: 1, nLayer: 1, tied: false } });
    expect(readFileSync(again).equals(readFileSync(paths.f32!))).toBe(false);
  });

  it("refuses what it cannot write, naming the reason", async () => {
    const vocab = bundledVocab("llama-bpe");
    const out = join(tmp.dir, "bad.gguf");
    await expect(initTextModel({ vocab, out, layout: { nHead: 4, nHeadKv: 3 } })).rejects.toThrow(/n_head_kv must divide n_head/);
    await expect(initTextModel({ vocab, out, dtype: "q8_0", layout: { nEmbd: 48, nHead: 4, nHeadKv: 2 } })).rejects.toThrow(/multiples of 32/);
    await expect(initTextModel({ vocab: `${vocab}.inp`, out })).rejects.toThrow(TrainerError); // not a GGUF
    await expect(initTextModel({ vocab: join(tmp.dir, "missing.gguf"), out })).rejects.toThrow(/cannot open/);
    expect(() => bundledVocab("no-such-tokenizer")).toThrow(/available: .*qwen2/);
  });
});
