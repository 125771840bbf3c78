import type { Rng } from "../rng.js";
import { FreshrecError } from "../errors.js";

const MODIFIERS = [
  "urban", "retro", "indie", "extreme", "cozy", "vintage", "tiny", "wild", "lofi", "speed", "deep", "neon", "rustic",
  "coastal", "midnight", "desert", "arctic", "budget", "luxury", "family", "solo", "street", "classic", "future",
];
const TOPICS = [
  "cooking", "guitar", "gaming", "fitness", "travel", "cats", "gardening", "chess", "skating", "anime", "poetry", "diy",
  "makeup", "trains", "drones", "baking", "fishing", "dance", "comedy", "science", "history", "cars", "camping", "yoga",
];

/** Distinct two-word keyword sets ("retro", "gaming") for n clusters, drawn without repetition. */
export function clusterKeywords(n: number, rng: Rng): string[][] {
  const pairs: string[][] = [];
  for (const m of MODIFIERS) for (const t of TOPICS) pairs.push([m, t]);
  if (n > pairs.length) throw new FreshrecError("invalid-argument", `synthetic world: at most ${pairs.length} synthetic clusters (asked for ${n})`);
  for (let i = pairs.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [pairs[i], pairs[j]] = [pairs[j]!, pairs[i]!];
  }
  return pairs.slice(0, n);
}
