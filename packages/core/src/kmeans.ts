import { FreshrecError } from "./errors.js";
import { mulberry32 } from "./rng.js";

/** n points of dimension d stored row-major in one Float32Array, optionally weighted. */
export interface Points {
  data: Float32Array;
  n: number;
  d: number;
  /**
   * Positive weight per point (default 1 each): a point of weight w counts as w coincident points in seeding,
   * means, inertia and capacities, but is never split (e.g. one point per distinct item, weighted by its copies).
   */
  weights?: ArrayLike<number>;
}

export interface KMeansOptions {
  k: number;
  seed: number;
  /** Lloyd iterations at most (default 50). */
  maxIter?: number;
  /**
   * Balance cluster sizes: each cluster holds at most ceil(slack * W / k) of the total weight W (n when
   * unweighted; capacity-constrained assignment, like the paper's equal-sized clusters). `true` means slack 1.0.
   * A point heavier than every centroid's remaining room goes to the least-loaded centroid.
   */
  balance?: boolean | { slack: number };
}

export interface KMeansResult {
  /** k centroids of dimension d, row-major. */
  centroids: Float32Array;
  assignment: Int32Array;
  /** Total weight per cluster (points per cluster when unweighted). */
  sizes: number[];
  iterations: number;
  /** Weighted sum of squared distances of points to their centroids. */
  inertia: number;
}

function sqDist(a: Float32Array, ai: number, b: Float32Array, bi: number, d: number): number {
  let s = 0;
  for (let j = 0; j < d; j++) {
    const x = a[ai + j]! - b[bi + j]!;
    s += x * x;
  }
  return s;
}

/** Index of the centroid (row of `centroids`, dimension vector.length) nearest to `vector` in Euclidean distance. */
export function nearestCentroid(vector: Float32Array, centroids: Float32Array): number {
  const d = vector.length;
  const k = centroids.length / d;
  let best = 0;
  let bestD = Infinity;
  for (let c = 0; c < k; c++) {
    const dist = sqDist(vector, 0, centroids, c * d, d);
    if (dist < bestD) {
      bestD = dist;
      best = c;
    }
  }
  return best;
}

/** Point i's weight (1 when the points are unweighted). */
const weightOf = (p: Points, i: number): number => (p.weights ? p.weights[i]! : 1);

/** Index drawn with probability proportional to mass[i] (total `sum` > 0). */
function draw(mass: (i: number) => number, n: number, sum: number, rng: () => number): number {
  let r = rng() * sum;
  let pick = 0;
  for (; pick < n - 1; pick++) {
    r -= mass(pick);
    if (r < 0) break;
  }
  return pick;
}

/**
 * k-means++ seeding: the first centroid is drawn by weight (`total` of all points), each next one with probability proportional to
 * weight times squared distance to the nearest chosen one.
 */
function seedPlusPlus(p: Points, k: number, total: number, rng: () => number): Float32Array {
  const { data, n, d } = p;
  const centroids = new Float32Array(k * d);
  const first = draw((i) => weightOf(p, i), n, total, rng);
  centroids.set(data.subarray(first * d, first * d + d), 0);
  const nearest = new Float64Array(n);
  for (let i = 0; i < n; i++) nearest[i] = sqDist(data, i * d, centroids, 0, d);
  const mass = (i: number) => weightOf(p, i) * nearest[i]!;
  for (let c = 1; c < k; c++) {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += mass(i);
    // sum 0: all points coincide with chosen centroids
    const pick = sum > 0 ? draw(mass, n, sum, rng) : Math.floor(rng() * n);
    centroids.set(data.subarray(pick * d, pick * d + d), c * d);
    for (let i = 0; i < n; i++) {
      const dist = sqDist(data, i * d, centroids, c * d, d);
      if (dist < nearest[i]!) nearest[i] = dist;
    }
  }
  return centroids;
}

/**
 * Squared distances from every point to every centroid as |x|^2 + |c|^2 - 2 x.c over the points' non-zero
 * entries: item feature vectors are sparse (a few genres and tags out of hundreds of dimensions).
 */
class DistanceTable {
  private readonly offsets: Int32Array;
  private readonly cols: Int32Array;
  private readonly vals: Float32Array;
  private readonly pointNorms: Float64Array;

  constructor(private readonly p: Points) {
    const { data, n, d } = p;
    let nnz = 0;
    for (let i = 0; i < data.length; i++) if (data[i] !== 0) nnz++;
    this.offsets = new Int32Array(n + 1);
    this.cols = new Int32Array(nnz);
    this.vals = new Float32Array(nnz);
    this.pointNorms = new Float64Array(n);
    let at = 0;
    for (let i = 0; i < n; i++) {
      this.offsets[i] = at;
      for (let j = 0; j < d; j++) {
        const x = data[i * d + j]!;
        if (x === 0) continue;
        this.cols[at] = j;
        this.vals[at++] = x;
        this.pointNorms[i]! += x * x;
      }
    }
    this.offsets[n] = at;
  }

  /** Fills out[i * k + c] with the squared distance of point i to centroid c. */
  compute(centroids: Float32Array, k: number, out: Float64Array): void {
    const { n, d } = this.p;
    const cn = new Float64Array(k);
    for (let c = 0; c < k; c++) for (let j = 0; j < d; j++) cn[c]! += centroids[c * d + j]! ** 2;
    for (let i = 0; i < n; i++) {
      const from = this.offsets[i]!;
      const to = this.offsets[i + 1]!;
      for (let c = 0; c < k; c++) {
        let dot = 0;
        const base = c * d;
        for (let e = from; e < to; e++) dot += this.vals[e]! * centroids[base + this.cols[e]!]!;
        out[i * k + c] = Math.max(0, this.pointNorms[i]! + cn[c]! - 2 * dot);
      }
    }
  }
}

function assignNearest(p: Points, dist: Float64Array, k: number, assignment: Int32Array): number {
  let inertia = 0;
  for (let i = 0; i < p.n; i++) {
    let best = 0;
    let bestD = Infinity;
    for (let c = 0; c < k; c++) {
      const dist_ = dist[i * k + c]!;
      if (dist_ < bestD) {
        bestD = dist_;
        best = c;
      }
    }
    assignment[i] = best;
    inertia += weightOf(p, i) * bestD;
  }
  return inertia;
}

/**
 * Capacity-constrained assignment: points that lose most by not getting their nearest centroid (largest
 * weighted gap to the second nearest) choose first; each takes the nearest centroid with room for its weight,
 * or, when none has, the least-loaded one (nearest among equals).
 */
function assignBalanced(p: Points, dist: Float64Array, k: number, capacity: number, assignment: Int32Array): number {
  const { n } = p;
  const regret = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let b1 = Infinity;
    let b2 = Infinity;
    for (let c = 0; c < k; c++) {
      const v = dist[i * k + c]!;
      if (v < b1) {
        b2 = b1;
        b1 = v;
      } else if (v < b2) b2 = v;
    }
    regret[i] = weightOf(p, i) * (b2 - b1);
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => regret[b]! - regret[a]! || a - b);
  const load = new Float64Array(k);
  let inertia = 0;
  for (const i of order) {
    const w = weightOf(p, i);
    let best = -1;
    for (let c = 0; c < k; c++) {
      if (load[c]! + w <= capacity && (best < 0 || dist[i * k + c]! < dist[i * k + best]!)) best = c;
    }
    if (best < 0) {
      for (let c = 0; c < k; c++) {
        if (best < 0 || load[c]! < load[best]! || (load[c] === load[best] && dist[i * k + c]! < dist[i * k + best]!)) best = c;
      }
    }
    assignment[i] = best;
    load[best]! += w;
    inertia += w * dist[i * k + best]!;
  }
  return inertia;
}

/** Recomputes centroids as weighted means; an empty cluster is re-seeded at the point farthest from its centroid. */
function updateCentroids(p: Points, k: number, assignment: Int32Array, centroids: Float32Array): number[] {
  const { data, n, d } = p;
  const sums = new Float64Array(k * d);
  const sizes = new Array<number>(k).fill(0);
  for (let i = 0; i < n; i++) {
    const c = assignment[i]!;
    const w = weightOf(p, i);
    sizes[c]! += w;
    for (let j = 0; j < d; j++) sums[c * d + j]! += w * data[i * d + j]!;
  }
  for (let c = 0; c < k; c++) {
    if (sizes[c] === 0) {
      let far = 0;
      let farD = -1;
      for (let i = 0; i < n; i++) {
        const v = sqDist(data, i * d, centroids, assignment[i]! * d, d);
        if (v > farD) {
          farD = v;
          far = i;
        }
      }
      centroids.set(data.subarray(far * d, far * d + d), c * d);
      continue;
    }
    for (let j = 0; j < d; j++) centroids[c * d + j] = sums[c * d + j]! / sizes[c]!;
  }
  return sizes;
}

/** Seeded k-means (k-means++ init, Lloyd iterations) over optionally weighted points, optionally balanced to near-equal cluster sizes. */
export function kmeans(points: Points, opts: KMeansOptions): KMeansResult {
  const { n, d, weights } = points;
  const { k } = opts;
  if (!Number.isInteger(k) || k < 1) throw new FreshrecError("invalid-argument", `kmeans: k must be a positive integer (got ${k})`);
  if (k > n) throw new FreshrecError("invalid-argument", `kmeans: k = ${k} exceeds the ${n} points`);
  if (points.data.length !== n * d) throw new FreshrecError("invalid-argument", `kmeans: data has ${points.data.length} values, expected n*d = ${n * d}`);
  if (weights && weights.length !== n) throw new FreshrecError("invalid-argument", `kmeans: ${weights.length} weights for ${n} points`);
  let total = 0;
  for (let i = 0; i < n; i++) {
    const w = weightOf(points, i);
    if (!(Number.isFinite(w) && w > 0)) throw new FreshrecError("invalid-argument", `kmeans: weight of point ${i} must be a positive number (got ${w})`);
    total += w;
  }
  const rng = mulberry32(opts.seed);
  const centroids = seedPlusPlus(points, k, total, rng);
  const slack = opts.balance === true ? 1 : opts.balance ? opts.balance.slack : undefined;
  const capacity = slack === undefined ? Infinity : Math.ceil((slack * total) / k);
  const assignment = new Int32Array(n).fill(-1);
  const previous = new Int32Array(n);
  let inertia = 0;
  let sizes: number[] = [];
  let iterations = 0;
  const maxIter = opts.maxIter ?? 50;
  const table = new DistanceTable(points);
  const dist = new Float64Array(n * k);
  while (iterations < maxIter) {
    previous.set(assignment);
    table.compute(centroids, k, dist);
    inertia = capacity === Infinity ? assignNearest(points, dist, k, assignment) : assignBalanced(points, dist, k, capacity, assignment);
    iterations++;
    sizes = updateCentroids(points, k, assignment, centroids);
    let changed = 0;
    for (let i = 0; i < n; i++) if (assignment[i] !== previous[i]) changed++;
    if (changed === 0) break;
  }
  return { centroids, assignment, sizes, iterations, inertia };
}
