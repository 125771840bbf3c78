import { parseArgs } from "node:util";
import { ValidationError } from "@freshrec/core";
import { describeAssessment, inspectModelFile } from "@freshrec/scorer";

export const summary = "read a GGUF model file's header and say what freshrec will do with it (or why it cannot use it)";

const HELP = `usage: freshrec models inspect FILE [--json]

Reads the file's architecture, tokenizer and chat template (nothing is loaded into llama.cpp) and says whether freshrec
runs it as a cluster-token or a text model, with chat or completion prompts, fine-tuned by the native trainer or only
through an external trainer. A file it cannot use is refused with the reason (exit 1).`;

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { json: { type: "boolean", default: false }, help: { type: "boolean", default: false } } });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new ValidationError("models inspect", [{ path: "FILE", message: "exactly one model file is needed", value: positionals }]);
  const assessment = await inspectModelFile(positionals[0]!);
  console.log(values.json ? JSON.stringify(assessment) : describeAssessment(assessment).join("\n"));
  return 0;
}
