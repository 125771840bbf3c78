import { DAY_MS, mulberry32, type Rng } from "../rng.js";
import { parseOrThrow, type Cluster, type ClusterId, type Event, type Item } from "../schemas.js";
import { compareEvents } from "../sequences.js";
import { SYNTHETIC_PRESETS, SyntheticConfigSchema, type SyntheticConfig, type SyntheticSize } from "./config.js";
import { clusterKeywords } from "./names.js";
import { TransitionModel, type Trend } from "./transition-model.js";

const MINUTE_MS = 60_000;
const POSITIVE_SIGNALS = [4, 4.5, 5];
const NEGATIVE_SIGNALS = [1, 1.5, 2, 2.5];

export interface SyntheticWorld {
  config: SyntheticConfig;
  clusters: Cluster[];
  /** Every item, each with its clusterId (items of late clusters exist from the start but get no traffic before birth). */
  items: Item[];
  startMs: number;
  endMs: number;
  trends: readonly Trend[];
  /** When cluster c appears (ms; startMs for clusters present from the start). */
  clusterBirth(c: ClusterId): number;
  /** The engagement stream in compareEvents order; a fresh, identical stream on every call (never held in memory). */
  events(): Generator<Event>;
  /** Ground truth P_t(next | history) over cluster ids; `history` oldest first, only its last k count. */
  groundTruth(history: readonly ClusterId[], t: number): Float64Array;
  /**
   * Probability that a user with this history accepts `recommended` at time t:
   * maxAccept * (1 - exp(-p * C_t / 2)) with p its ground-truth probability and C_t the clusters alive at t.
   * A uniform guess gets ~39 % of maxAccept, a cluster in the history (or unborn) 0.
   */
  acceptProbability(history: readonly ClusterId[], recommended: ClusterId, t: number): number;
}

/** A Zipf(1) sampler over n ranks (item popularity inside a cluster). */
function zipfSampler(n: number): (rng: Rng) => number {
  const cdf = new Float64Array(n);
  let s = 0;
  for (let i = 0; i < n; i++) cdf[i] = s += 1 / (i + 1);
  return (rng) => {
    const u = rng() * s;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid]! < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

const pick = <T>(xs: readonly T[], rng: Rng): T => xs[Math.floor(rng() * xs.length)]!;

interface UserState {
  activity: number;
  /** Last k distinct positive clusters, oldest first. */
  history: ClusterId[];
}

/** Same update as advanceRecent: a revisited cluster moves to the front; a new one pushes out the oldest. */
function visit(history: ClusterId[], c: ClusterId, k: number): void {
  const at = history.indexOf(c);
  if (at >= 0) history.splice(at, 1);
  history.push(c);
  if (history.length > k) history.shift();
}

/** A seeded synthetic platform with drifting interests: a preset name or a full config. */
export function createSyntheticWorld(sizeOrConfig: SyntheticSize | SyntheticConfig, overrides: Partial<SyntheticConfig> = {}): SyntheticWorld {
  const base = typeof sizeOrConfig === "string" ? SYNTHETIC_PRESETS[sizeOrConfig] : sizeOrConfig;
  const config = parseOrThrow(SyntheticConfigSchema, { ...base, ...overrides }, "synthetic world config");
  const C = config.clusters;
  const names = clusterKeywords(C, mulberry32(config.seed ^ 0xc1a5));
  const model = new TransitionModel(config, names);
  const clusters: Cluster[] = names.map((keywords, id) => ({ id, keywords }));
  const items: Item[] = [];
  for (let c = 0; c < C; c++)
    for (let j = 0; j < config.itemsPerCluster; j++) items.push({ itemId: `c${c}-i${j}`, clusterId: c, title: `${names[c]!.join(" ")} #${j + 1}` });
  const itemRank = zipfSampler(config.itemsPerCluster);
  const itemOf = (c: ClusterId, rng: Rng) => `c${c}-i${itemRank(rng)}`;

  function* events(): Generator<Event> {
    const rng = mulberry32(config.seed ^ 0xe7e7);
    const users: UserState[] = [];
    for (let u = 0; u < config.users; u++) {
      const first = model.samplePopular(0, rng);
      const second = model.samplePopular(0, rng, [first]);
      // Exponential spread of activity: most users are occasional, a few are heavy.
      const activity = Math.min(0.95, Math.max(0.02, -config.activity * Math.log(Math.max(rng(), 1e-9))));
      users.push({ activity, history: [first, second] });
    }
    for (let day = 0; day < config.days; day++) {
      const dayStart = config.startMs + day * DAY_MS;
      const todays: Event[] = [];
      for (let u = 0; u < users.length; u++) {
        const user = users[u]!;
        if (rng() >= user.activity) continue;
        // Geometric session length with the configured mean.
        let n = 1;
        while (rng() < 1 - 1 / config.sessionEvents) n++;
        let ts = dayStart + Math.floor(rng() * 0.9 * DAY_MS);
        for (let j = 0; j < n; j++) {
          ts += MINUTE_MS * (1 + Math.floor(rng() * 10));
          let cluster: ClusterId;
          let signal: number;
          if (rng() < config.negativeRate) {
            cluster = model.samplePopular(day, rng);
            signal = pick(NEGATIVE_SIGNALS, rng);
          } else {
            const r = rng();
            const h = user.history;
            if (r < config.stay) cluster = h[h.length - 1]!;
            else if (r < config.stay + config.revisit && h.length > 1) cluster = h[h.length - 2]!;
            else cluster = model.sample(h, ts, rng);
            visit(h, cluster, config.k);
            signal = pick(POSITIVE_SIGNALS, rng);
          }
          todays.push({ eventId: `s${config.seed}-d${day}-u${u}-${j}`, userId: `u${u}`, itemId: itemOf(cluster, rng), ts, signal });
        }
      }
      todays.sort(compareEvents);
      yield* todays;
    }
  }

  return {
    config,
    clusters,
    items,
    startMs: config.startMs,
    endMs: config.startMs + config.days * DAY_MS,
    trends: model.trends,
    clusterBirth: (c) => config.startMs + model.birthDay[c]! * DAY_MS,
    events,
    groundTruth: (history, t) => Float64Array.from(model.distribution(history, t)),
    acceptProbability(history, recommended, t) {
      const p = model.distribution(history, t)[recommended] ?? 0;
      const day = model.dayOf(t);
      let alive = 0;
      for (let c = 0; c < C; c++) if (model.isBorn(c, day)) alive++;
      return config.maxAccept * (1 - Math.exp((-p * alive) / 2));
    },
  };
}
