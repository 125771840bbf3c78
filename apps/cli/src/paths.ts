import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root: default data and model folders live under it, and job processes run from it. */
export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

/** argv that runs this CLI again (update jobs run as `freshrec jobs run ...` child processes). */
export const CLI_COMMAND = [process.execPath, "--import", "tsx", join(REPO_ROOT, "apps", "cli", "src", "main.ts")];

export const defaultStoreUri = (): string => process.env.FRESHREC_STORE ?? join(REPO_ROOT, "data", "store");
export const defaultModelsDir = (): string => process.env.FRESHREC_MODELS ?? join(REPO_ROOT, "models");

/** A store URI as given: object-store URIs (s3://...) untouched, local paths made absolute (jobs run from the repo root). */
export const storeLocation = (uri: string): string => (/^[a-z][a-z0-9+.-]*:\/\//i.test(uri) ? uri : resolve(uri));
