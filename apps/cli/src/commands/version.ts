import { LAYOUT_VERSION } from "@freshrec/core";

export const summary = "print freshrec's version and model layout version";

export async function run(): Promise<number> {
  console.log(`freshrec 0.1.0 (prompt layout v${LAYOUT_VERSION})`);
  return 0;
}
