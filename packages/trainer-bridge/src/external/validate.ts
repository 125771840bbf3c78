import { readAdapterMetadata, readGgufMetadata, type AdapterFileInfo } from "@freshrec/scorer";

/**
 * Checks from the GGUF headers alone that an adapter fits a base model: the scorer's own checks (a LoRA
 * adapter of the base's architecture; every lora_a/lora_b pair targets a base tensor of matching shape, which
 * covers the vocabulary size through token_embd/output) - the same rules serving applies when it loads one.
 * Throws the scorer's AdapterMismatchError / ModelFileError naming the first problem.
 */
export async function validateAdapter(adapterPath: string, basePath: string): Promise<AdapterFileInfo> {
  return readAdapterMetadata(adapterPath, await readGgufMetadata(basePath));
}
