import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root: default data and model folders live under it, and job processes run from it. */
export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

/** argv that runs this CLI again (update jobs run as `freshrec jobs run ...` child processes). */
export const CLI_COMMAND = [process.execPath, "--import", "tsx", join(REPO_ROOT, "apps", "cli", "src", "main.ts")];

export const defaultStoreUri = (): string => process.env.FRESHREC_STORE ?? join(REPO_ROOT, "data", "store");
export const defaultModelsDir = (): string => process.env.FRESHREC_MODELS ?? join(REPO_ROOT, "models");

/** s3://... and other scheme URIs (kept as given); anything else is a local path. */
const isUri = (s: string): boolean => /^[a-z][a-z0-9+.-]*:\/\//i.test(s);

/** A store URI as given: object-store URIs (s3://...) untouched, local paths made absolute (jobs run from the repo root). */
export const storeLocation = (uri: string): string => (isUri(uri) ? uri : resolve(uri));

/**
 * The model registry as given: a local folder, or an s3:// URI mirrored into a local cache folder (llama.cpp loads
 * local files): `cache`, else $FRESHREC_MODELS_CACHE, else models-cache/ under the repo root. One cache per process
 * that runs separately (each host has its own).
 */
export function registryLocation(models: string, cache?: string): { modelsDir: string; registryUri?: string } {
  if (!isUri(models)) return { modelsDir: resolve(models) };
  return { registryUri: models.replace(/\/+$/, ""), modelsDir: resolve(cache ?? process.env.FRESHREC_MODELS_CACHE ?? join(REPO_ROOT, "models-cache")) };
}
