/**
 * How far can llama.cpp's CPU answer for a prompt be from the exact answer of the same model file? Tests use this
 * instead of tolerances measured on one CPU (issue 12: a Q8_0 batching tolerance tuned on one machine failed on an
 * AMD EPYC). Measured on the Intel AMX and AMD Zen 4 CPU backends, llama.cpp's answers stayed within 0.3 of the bound.
 *
 * The center: a float64 forward pass of the model exactly as stored (F32 weights, or Q8_0 weights dequantised:
 * f16 scale times int8, which every ggml kernel multiplies with) with the LoRA adapter at llama.cpp's scale
 * (scale * alpha / rank). Everything llama.cpp does differently deviates from it by errors e_k with GUARANTEED
 * bounds |e_k| <= b_k (u = 2^-24 float32 unit roundoff, u16 = 2^-11 float16 unit roundoff):
 *  - Q8_0 activation quantisation: for a Q8_0 weight ggml quantises the matmul's input row per block of 32,
 *    d = amax/127 stored as f16, q = round(x * 127/amax), used as f16(d) * q, so per element
 *    |f16(d) q - x| <= d (1/2 + 127 u16 + 254 u) + 127 * 2^-25 (f16 subnormals). Which way an element close to a
 *    rounding boundary goes depends on float-level differences between kernels (vec_dot for one row, llamafile
 *    tinyBLAS for 2+ rows, AVX2 / AVX-512 / AMX variants, KV cache sizes), so two runs of one prompt can differ by
 *    a whole step d in any element: that is why Q8_0 answers depend on batch shape by far more than float rounding.
 *  - float rounding: each dot product, norm, rope angle (ggml builds theta_i by i float products), softmax and
 *    SiLU (ggml's vector expf is within 2 ulp; 8 u allowed), attention accumulation and residual add.
 *  - fast mode (F16 KV cache + flash attention): K and V stored as f16 (u16 |k|), Q converted to f16 by the
 *    one-query kernel (u16 |q|), and that kernel's f16 accumulation of sum_j p_j v_j (2T + 2 roundings of u16).
 *
 * Combining them. Propagating worst cases through the layers (interval / Lipschitz bounds at each step) diverges
 * even for F32: it compounds the worst direction at every step. Instead, to first order each output moves by
 * sum_k J_k e_k, with J_k = d output / d e_k computed exactly by backpropagation through the center. The
 * first-order worst case sum_k |J_k| b_k (all errors at their bound with aligned signs) is about 4x the bound used
 * here and, at 2-5 nats for Q8_0, too loose to tell a right answer from another prompt's. The bound used is the
 * standard probabilistic model of rounding errors (Higham & Mary, "A new approach to probabilistic rounding error
 * analysis", SIAM J. Sci. Comput. 2019): errors mean-independent with mean zero and |e_k| <= b_k, so by
 * Azuma-Hoeffding P(|sum_k J_k e_k| > LAMBDA sqrt(sum_k J_k^2 b_k^2)) <= 2 exp(-LAMBDA^2/2) = 4.6e-11 for LAMBDA = 7,
 * below 1e-5 after a union over every value a test compares. A chain of n roundings (a dot product) enters as
 * one site with b = sqrt(n) u S, S the sum of the magnitudes it adds (see `chain`). Second-order terms are O(b^2):
 * relative errors are <= 1/254 (Q8_0) and 4.9e-4 (f16), under 1 % of the first-order term, and not added.
 * Tests also compare llama.cpp's answers with the center itself, so a wrong center fails them, on any CPU.
 *
 * The architecture mirrors the trainer's graph (native/src/model.cpp) and llama.cpp's llama graph: pre-norm,
 * rope mode NORM over the whole head, no GQA, SwiGLU FFN, untied output, LoRA on every weight with factors.
 */
import { readFile } from "node:fs/promises";
import { GgmlType, readGgufFileInfo, type GgufTensorInfo } from "node-llama-cpp";

const U = 2 ** -24;
const U16 = 2 ** -11;
const gamma = (n: number, u = U) => (n * u) / (1 - n * u);
/**
 * A value rounded n times in a chain (a dot product of n terms, a norm, an exp) has error sum_i delta_i s_i with
 * |delta_i| <= u and |s_i| <= S (1 + gamma(n)), S the sum of the magnitudes involved. In the probabilistic model each
 * delta_i is a separate bounded error, so their contribution to sum_k J_k^2 b_k^2 is at most J^2 n u^2 S^2 (1 + gamma)^2:
 * one site with bound sqrt(n) u S (1 + gamma(n)) stands for all of them.
 */
const chain = (n: number, u = U) => Math.sqrt(n) * u * (1 + gamma(n, u));
/** Per-element Q8_0 activation quantisation error, in units of the block step d = amax/127 (see the header). */
const Q8_STEP_ERROR = 0.5 + 127 * U16 + 254 * U;
const Q8_ABS_ERROR = 127 * 2 ** -25;
/** Hoeffding multiplier of the probabilistic bound: exceeded with probability <= 2 exp(-LAMBDA^2/2) = 4.6e-11. */
export const LAMBDA = 7;

export interface EvalMode {
  /** F16 KV cache and flash attention (the scorer's default, exact: false). */
  fast: boolean;
}

interface Matrix {
  rows: number;
  cols: number;
  w: Float64Array;
  q8: boolean;
}

/** A weight (row-major, rows = outputs) with its adapter folded in: y = M x, M = W + scale B A. */
interface Linear {
  w: Matrix;
  m: Float64Array;
  /** |W|, |A| and |scale B|, for the float-rounding bounds (floatBound). */
  absW: Float64Array;
  lora?: { a: Matrix; b: Matrix; scale: number; absA: Float64Array; absSB: Float64Array; r: number };
}

interface Layer {
  attnNorm: Float64Array;
  wq: Linear;
  wk: Linear;
  wv: Linear;
  wo: Linear;
  ffnNorm: Float64Array;
  gate: Linear;
  up: Linear;
  down: Linear;
}

export interface BoundedModel {
  nEmbd: number;
  nHead: number;
  nVocab: number;
  eps: number;
  freqBase: number;
  nRot: number;
  tokEmbd: Matrix;
  outputNorm: Float64Array;
  output: Linear;
  layers: Layer[];
}

function f16(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const e = (bits >> 10) & 0x1f;
  const m = bits & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

/** Row-major values of a 1-D or 2-D tensor (rows = ne1, cols = ne0), exactly as stored. */
function readTensor(file: Buffer, t: GgufTensorInfo): Matrix {
  const dims = t.dimensions.map(Number);
  const cols = dims[0]!;
  const rows = dims[1] ?? 1;
  const at = Number(t.fileOffset);
  const w = new Float64Array(rows * cols);
  if (t.ggmlType === GgmlType.F32) {
    for (let i = 0; i < w.length; i++) w[i] = file.readFloatLE(at + 4 * i);
    return { rows, cols, w, q8: false };
  }
  if (t.ggmlType === GgmlType.Q8_0) {
    for (let b = 0; b < (rows * cols) / 32; b++) {
      const o = at + 34 * b;
      const d = f16(file.readUInt16LE(o));
      for (let j = 0; j < 32; j++) w[32 * b + j] = d * file.readInt8(o + 2 + j);
    }
    return { rows, cols, w, q8: true };
  }
  // F16 and other types quantise activations differently; add their error model before accepting them.
  throw new Error(`error-bound: tensor ${t.name} has ggml type ${t.ggmlType}, which this bound does not model`);
}

async function readTensors(path: string): Promise<{ tensors: Map<string, Matrix>; metadata: unknown }> {
  const info = await readGgufFileInfo(path, { logWarnings: false });
  const file = await readFile(path);
  const tensors = new Map<string, Matrix>();
  for (const t of info.fullTensorInfo ?? []) tensors.set(t.name, readTensor(file, t));
  return { tensors, metadata: info.metadata };
}

function linear(w: Matrix, lora?: { a: Matrix; b: Matrix; scale: number }): Linear {
  const { rows, cols } = w;
  const m = Float64Array.from(w.w);
  if (!lora) return { w, m, absW: w.w.map(Math.abs) };
  const { a, b, scale } = lora;
  const r = a.rows;
  if (a.cols !== cols || b.rows !== rows || b.cols !== r) throw new Error("error-bound: adapter shapes do not fit the weight");
  for (let i = 0; i < rows; i++)
    for (let j = 0; j < cols; j++) {
      let s = 0;
      for (let k = 0; k < r; k++) s += b.w[i * r + k]! * a.w[k * cols + j]!;
      m[i * cols + j]! += scale * s;
    }
  return { w, m, absW: w.w.map(Math.abs), lora: { a, b, scale, absA: a.w.map(Math.abs), absSB: b.w.map((x) => Math.abs(scale * x)), r } };
}

const meta = (md: unknown, path: string): unknown => path.split(".").reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], md);

/** Reads a freshrec base model and optional LoRA adapter (llama.cpp's user scale, default 1) for bounding. */
export async function loadBoundedModel(modelPath: string, adapterPath?: string, adapterScale = 1): Promise<BoundedModel> {
  const { tensors, metadata } = await readTensors(modelPath);
  const num = (k: string) => Number(meta(metadata, k));
  const nEmbd = num("llama.embedding_length");
  const nHead = num("llama.attention.head_count");
  const nRot = num("llama.rope.dimension_count");
  if (num("llama.attention.head_count_kv") !== nHead || nRot !== nEmbd / nHead) throw new Error("error-bound: only full-head rope without GQA is modelled");
  const adapter = adapterPath ? await readTensors(adapterPath) : undefined;
  const alpha = adapter ? Number(meta(adapter.metadata, "adapter.lora.alpha")) : 0;
  const get = (name: string): Matrix => {
    const t = tensors.get(name);
    if (!t) throw new Error(`error-bound: ${modelPath} has no tensor ${name}`);
    return t;
  };
  const used = new Set<string>();
  const lin = (name: string): Linear => {
    const a = adapter?.tensors.get(`${name}.lora_a`);
    const b = adapter?.tensors.get(`${name}.lora_b`);
    if (a && b) used.add(name);
    // llama.cpp: effective scale = scale * alpha / rank (rank read from lora_b), or scale without alpha.
    return linear(get(name), a && b ? { a, b, scale: alpha ? (adapterScale * alpha) / b.cols : adapterScale } : undefined);
  };
  const nLayer = num("llama.block_count");
  const layers: Layer[] = Array.from({ length: nLayer }, (_, i) => {
    const p = `blk.${i}.`;
    return {
      attnNorm: get(`${p}attn_norm.weight`).w,
      wq: lin(`${p}attn_q.weight`),
      wk: lin(`${p}attn_k.weight`),
      wv: lin(`${p}attn_v.weight`),
      wo: lin(`${p}attn_output.weight`),
      ffnNorm: get(`${p}ffn_norm.weight`).w,
      gate: lin(`${p}ffn_gate.weight`),
      up: lin(`${p}ffn_up.weight`),
      down: lin(`${p}ffn_down.weight`),
    };
  });
  const output = lin("output.weight");
  for (const name of adapter?.tensors.keys() ?? []) {
    const base = name.replace(/\.lora_[ab]$/, "");
    // llama.cpp ignores adapter tensors for norms; anything else unmodelled would make the center wrong.
    if (!used.has(base) && !base.endsWith("_norm.weight")) throw new Error(`error-bound: adapter tensor ${name} is not modelled`);
  }
  const tokEmbd = get("token_embd.weight");
  return {
    nEmbd, nHead, nRot, nVocab: tokEmbd.rows, eps: num("llama.attention.layer_norm_rms_epsilon"), freqBase: num("llama.rope.freq_base"),
    tokEmbd, outputNorm: get("output_norm.weight").w, output, layers,
  };
}

// ---- forward pass (center) with the error bounds of every site -------------------------------------------------

type Vec = Float64Array;

const mv = (m: Float64Array, rows: number, cols: number, x: Vec): Vec => {
  const y = new Float64Array(rows);
  for (let j = 0; j < rows; j++) {
    let s = 0;
    for (let i = 0; i < cols; i++) s += m[j * cols + i]! * x[i]!;
    y[j] = s;
  }
  return y;
};
const abs = (v: Vec): Vec => v.map(Math.abs);
const scaled = (v: Vec, s: number): Vec => v.map((x) => x * s);

/** Bound on the float rounding of y = M x per output: the dot product, the f16-scale products, the LoRA path. */
function floatBound(L: Linear, x: Vec): Vec {
  const { rows, cols } = L.w;
  const ax = abs(x);
  const b = scaled(mv(L.absW, rows, cols, ax), chain(cols + 4));
  if (L.lora) {
    const t = mv(L.lora.absA, L.lora.r, cols, ax);
    const sb = mv(L.lora.absSB, rows, L.lora.r, t);
    for (let j = 0; j < rows; j++) b[j]! += chain(cols + L.lora.r + 6) * sb[j]! + U * b[j]!;
  }
  return b;
}

/** Bound on |Q8_0(x) - x| per element (blocks of 32), zero for a weight that does not quantise its input. */
function q8Bound(L: Linear, x: Vec): Vec | null {
  if (!L.w.q8) return null;
  const e = new Float64Array(x.length);
  for (let b = 0; b < x.length; b += 32) {
    let amax = 0;
    for (let i = b; i < b + 32; i++) amax = Math.max(amax, Math.abs(x[i]!));
    e.fill(Q8_STEP_ERROR * (amax / 127) * (1 + 2 * U) + Q8_ABS_ERROR, b, b + 32);
  }
  return e;
}

interface Norm {
  x: Vec;
  rms: number;
  out: Vec;
}
function rmsNorm(x: Vec, g: Vec, eps: number): Norm {
  const rms = Math.sqrt(x.reduce((s, v) => s + v * v, 0) / x.length + eps);
  return { x, rms, out: x.map((v, i) => (g[i]! * v) / rms) };
}
function ropeAngles(pos: number, n: number, base: number, nRot: number): { cos: Vec; sin: Vec; err: Vec } {
  const cos = new Float64Array(n / 2);
  const sin = new Float64Array(n / 2);
  const err = new Float64Array(n / 2);
  for (let i = 0; i < n / 2; i++) {
    const theta = pos * base ** ((-2 * i) / nRot);
    cos[i] = Math.cos(theta);
    sin[i] = Math.sin(theta);
    // theta_i by i float products of a rounded powf result, then cos/sin and the rotation's two products and add.
    err[i] = theta * chain(2 * i + 4) + chain(6);
  }
  return { cos, sin, err };
}
function rope(x: Vec, a: { cos: Vec; sin: Vec }, hd: number): Vec {
  const y = new Float64Array(x.length);
  for (let h = 0; h < x.length; h += hd)
    for (let i = 0; i < hd / 2; i++) {
      const [x0, x1] = [x[h + 2 * i]!, x[h + 2 * i + 1]!];
      y[h + 2 * i] = x0 * a.cos[i]! - x1 * a.sin[i]!;
      y[h + 2 * i + 1] = x0 * a.sin[i]! + x1 * a.cos[i]!;
    }
  return y;
}
/** Rope rounding bound per element: angle error times the pair's length. */
function ropeBound(y: Vec, a: { err: Vec }, hd: number): Vec {
  const b = new Float64Array(y.length);
  for (let h = 0; h < y.length; h += hd)
    for (let i = 0; i < hd / 2; i++) b[h + 2 * i] = b[h + 2 * i + 1] = a.err[i]! * Math.hypot(y[h + 2 * i]!, y[h + 2 * i + 1]!);
  return b;
}
const f16Bound = (v: Vec): Vec => v.map((x) => U16 * Math.abs(x) + 2 ** -25);
const silu = (x: number) => x / (1 + Math.exp(-x));
const siluGrad = (x: number) => {
  const s = 1 / (1 + Math.exp(-x));
  return s * (1 + x * (1 - s));
};

interface LayerTrace {
  n1: Norm[];
  angles: Array<{ cos: Vec; sin: Vec; err: Vec }>;
  q: Vec[];
  k: Vec[];
  v: Vec[];
  /** p[t][head][j], j <= t */
  p: Vec[][];
  o: Vec[];
  n2: Norm[];
  g: Vec[];
  u: Vec[];
  z: Vec[];
  // error bounds per site
  bN1: Vec[];
  bQ8h: Array<Vec | null>;
  bFq: Vec[];
  bFk: Vec[];
  bFv: Vec[];
  bRq: Vec[];
  bRk: Vec[];
  bF16q: Vec[];
  bF16k: Vec[];
  bF16v: Vec[];
  /** score rounding per [t][head][j] */
  bS: Vec[][];
  bO: Vec[];
  bQ8o: Array<Vec | null>;
  bFo: Vec[];
  bX1: Vec[];
  bN2: Vec[];
  bQ8f: Array<Vec | null>;
  bFg: Vec[];
  bFu: Vec[];
  bZ: Vec[];
  bQ8z: Array<Vec | null>;
  bFd: Vec[];
  bX2: Vec[];
}

export interface PromptBound {
  /** Exact (float64) logits of the last position over the whole vocabulary. */
  logits: Vec;
  /** Exact log-softmax over `over`, at the tokens `report` (in that order). */
  logp: Vec;
  /** Per reported token: |llama.cpp's log-prob - logp| <= bound, except with probability 4.6e-11 (see the header). */
  bound: Vec;
}

/**
 * The next-token log-softmax over the tokens `over` (e.g. the cluster tokens a prompt may be answered with, or the
 * whole vocabulary) after the prompt `input` (positions 0..T-1), at the tokens `report` (default: all of `over`).
 */
export function boundPrompt(m: BoundedModel, input: readonly number[], mode: EvalMode, over: readonly number[], report: readonly number[] = over): PromptBound {
  const E = m.nEmbd;
  const H = m.nHead;
  const hd = E / H;
  const kappa = 1 / Math.sqrt(hd);
  const T = input.length;
  const traces: LayerTrace[] = [];
  let xs: Vec[] = input.map((t) => {
    if (t < 0 || t >= m.nVocab) throw new Error(`error-bound: token ${t} outside the vocabulary`);
    // get_rows dequantises exactly (an f16 scale times an int8 fits float32).
    return m.tokEmbd.w.slice(t * E, (t + 1) * E);
  });
  for (const L of m.layers) {
    const n1 = xs.map((x) => rmsNorm(x, L.attnNorm, m.eps));
    const h = n1.map((n) => n.out);
    const angles = xs.map((_, pos) => ropeAngles(pos, hd, m.freqBase, m.nRot));
    const qPre = h.map((v) => mv(L.wq.m, E, E, v));
    const kPre = h.map((v) => mv(L.wk.m, E, E, v));
    const q = qPre.map((v, t) => rope(v, angles[t]!, hd));
    const k = kPre.map((v, t) => rope(v, angles[t]!, hd));
    const v = h.map((x) => mv(L.wv.m, E, E, x));
    const p: Vec[][] = [];
    const bS: Vec[][] = [];
    const o: Vec[] = [];
    const bO: Vec[] = [];
    for (let t = 0; t < T; t++) {
      const ot = new Float64Array(E);
      const bo = new Float64Array(E);
      const pt: Vec[] = [];
      const bst: Vec[] = [];
      for (let hh = 0; hh < H; hh++) {
        const off = hh * hd;
        const s = new Float64Array(t + 1);
        const bs = new Float64Array(t + 1);
        for (let j = 0; j <= t; j++) {
          let dot = 0;
          let mag = 0;
          for (let i = off; i < off + hd; i++) {
            dot += q[t]![i]! * k[j]![i]!;
            mag += Math.abs(q[t]![i]! * k[j]![i]!);
          }
          s[j] = kappa * dot;
          bs[j] = chain(hd + 4) * kappa * mag;
        }
        const max = Math.max(...s);
        const w = s.map((x) => Math.exp(x - max));
        const zsum = w.reduce((a, b) => a + b, 0);
        const ph = w.map((x) => x / zsum);
        pt.push(ph);
        bst.push(bs);
        // softmax rounding (exp 8u, online max rescaling 8u, the sum and the division) on each weight, and the
        // accumulation of sum_j p_j v_j: f32, or f16 in the one-query flash kernel with an f16 V cache.
        const gW = chain(t + 1 + 24) + (mode.fast ? chain(2 * (t + 1) + 2, U16) + chain(2 * (t + 1) + 2) : chain(t + 1 + 2));
        for (let j = 0; j <= t; j++)
          for (let i = off; i < off + hd; i++) {
            ot[i]! += ph[j]! * v[j]![i]!;
            bo[i]! += gW * ph[j]! * Math.abs(v[j]![i]!);
          }
      }
      p.push(pt);
      bS.push(bst);
      o.push(ot);
      bO.push(bo);
    }
    const attnOut = o.map((x) => mv(L.wo.m, E, E, x));
    const x1 = xs.map((x, t) => x.map((val, i) => val + attnOut[t]![i]!));
    const n2 = x1.map((x) => rmsNorm(x, L.ffnNorm, m.eps));
    const f = n2.map((n) => n.out);
    const F = L.gate.w.rows;
    const g = f.map((x) => mv(L.gate.m, F, E, x));
    const u = f.map((x) => mv(L.up.m, F, E, x));
    const z = g.map((gg, t) => gg.map((x, i) => silu(x) * u[t]![i]!));
    const ffo = z.map((x) => mv(L.down.m, E, F, x));
    const x2 = x1.map((x, t) => x.map((val, i) => val + ffo[t]![i]!));
    traces.push({
      n1, angles, q, k, v, p, o, n2, g, u, z,
      bN1: h.map((x) => scaled(abs(x), chain(E + 6))),
      bQ8h: h.map((x) => q8Bound(L.wq, x)),
      bFq: h.map((x) => floatBound(L.wq, x)),
      bFk: h.map((x) => floatBound(L.wk, x)),
      bFv: h.map((x) => floatBound(L.wv, x)),
      bRq: q.map((x, t) => ropeBound(x, angles[t]!, hd)),
      bRk: k.map((x, t) => ropeBound(x, angles[t]!, hd)),
      bF16q: q.map((x) => (mode.fast ? f16Bound(x) : new Float64Array(E))),
      bF16k: k.map((x) => (mode.fast ? f16Bound(x) : new Float64Array(E))),
      bF16v: v.map((x) => (mode.fast ? f16Bound(x) : new Float64Array(E))),
      bS,
      bO,
      bQ8o: o.map((x) => q8Bound(L.wo, x)),
      bFo: o.map((x) => floatBound(L.wo, x)),
      bX1: x1.map((x) => scaled(abs(x), U)),
      bN2: f.map((x) => scaled(abs(x), chain(E + 6))),
      bQ8f: f.map((x) => q8Bound(L.gate, x)),
      bFg: f.map((x) => floatBound(L.gate, x)),
      bFu: f.map((x) => floatBound(L.up, x)),
      bZ: z.map((x) => scaled(abs(x), chain(12))),
      bQ8z: z.map((x) => q8Bound(L.down, x)),
      bFd: z.map((x) => floatBound(L.down, x)),
      bX2: x2.map((x) => scaled(abs(x), U)),
    });
    xs = x2;
  }
  const nN = rmsNorm(xs[T - 1]!, m.outputNorm, m.eps);
  const V = m.nVocab;
  const logits = mv(m.output.m, V, E, nN.out);
  const bNN = scaled(abs(nN.out), chain(E + 6));
  const bQ8N = q8Bound(m.output, nN.out);
  const bFN = floatBound(m.output, nN.out);

  const l = over.map((t) => logits[t]!);
  const lmax = Math.max(...l);
  const lse = lmax + Math.log(l.reduce((s, v) => s + Math.exp(v - lmax), 0));
  const probs = Float64Array.from(l, (v) => Math.exp(v - lse));
  const logp = Float64Array.from(report, (t) => logits[t]! - lse);
  // The sampler's f32 softmax over the whole vocabulary (exp 8u, sum, division) and the renormalisation over
  // `over` (in float64 of f32 values): a relative error on each probability, absolute on its log.
  const softmaxFloat = 2 * gamma(V + 16);

  // Backpropagation of all C = report.length outputs at once: gradients are C x n row-major blocks.
  const C = report.length;
  const s2 = new Float64Array(C);
  const site = (J: Vec, b: Vec | null) => {
    if (!b) return;
    const n = b.length;
    for (let c = 0; c < C; c++) {
      let q = 0;
      for (let i = 0; i < n; i++) {
        const jb = J[c * n + i]! * b[i]!;
        q += jb * jb;
      }
      s2[c]! += q;
    }
  };
  // d log p_c / d logits = onehot(c) - p over `over`
  const dl = new Float64Array(C * V);
  for (let c = 0; c < C; c++) {
    over.forEach((t, a) => (dl[c * V + t] = -probs[a]!));
    dl[c * V + report[c]!]! += 1;
  }
  site(dl, bFN);
  const dhN = back(m.output, dl, C, bQ8N, site);
  site(dhN, bNN);
  let dx: Array<Vec | null> = xs.map(() => null);
  dx[T - 1] = rmsNormBackB(nN, m.outputNorm, dhN, C);
  for (let li = m.layers.length - 1; li >= 0; li--) {
    const L = m.layers[li]!;
    const tr = traces[li]!;
    const F = L.gate.w.rows;
    const dq: Vec[] = xs.map(() => new Float64Array(C * E));
    const dk: Vec[] = xs.map(() => new Float64Array(C * E));
    const dv: Vec[] = xs.map(() => new Float64Array(C * E));
    const dx1: Array<Vec | null> = [];
    for (let t = 0; t < T; t++) {
      const dx2 = dx[t]!;
      // In the last layer only the last position reaches the logits.
      if (!dx2) {
        dx1.push(null);
        continue;
      }
      site(dx2, tr.bX2[t]!);
      site(dx2, tr.bFd[t]!);
      const dz = back(L.down, dx2, C, tr.bQ8z[t]!, site);
      site(dz, tr.bZ[t]!);
      const dg = new Float64Array(C * F);
      const du = new Float64Array(C * F);
      const gt = tr.g[t]!;
      const ut = tr.u[t]!;
      for (let i = 0; i < F; i++) {
        const sg = silu(gt[i]!);
        const dsg = siluGrad(gt[i]!) * ut[i]!;
        for (let c = 0; c < C; c++) {
          dg[c * F + i] = dz[c * F + i]! * dsg;
          du[c * F + i] = dz[c * F + i]! * sg;
        }
      }
      site(dg, tr.bFg[t]!);
      site(du, tr.bFu[t]!);
      const df = back2([L.gate, dg], [L.up, du], C, tr.bQ8f[t]!, site);
      site(df, tr.bN2[t]!);
      const d1 = addInto(rmsNormBackB(tr.n2[t]!, L.ffnNorm, df, C), dx2);
      site(d1, tr.bX1[t]!);
      dx1.push(d1);
      // attention output projection, then the attention itself
      site(d1, tr.bFo[t]!);
      const dO = back(L.wo, d1, C, tr.bQ8o[t]!, site);
      site(dO, tr.bO[t]!);
      for (let hh = 0; hh < H; hh++) {
        const off = hh * hd;
        const ph = tr.p[t]![hh]!;
        const ds = new Float64Array(C * (t + 1));
        for (let c = 0; c < C; c++) {
          let pdp = 0;
          for (let j = 0; j <= t; j++) {
            const vj = tr.v[j]!;
            const dvj = dv[j]!;
            let s = 0;
            for (let i = off; i < off + hd; i++) {
              const d = dO[c * E + i]!;
              s += d * vj[i]!;
              dvj[c * E + i]! += ph[j]! * d;
            }
            ds[c * (t + 1) + j] = s;
            pdp += ph[j]! * s;
          }
          for (let j = 0; j <= t; j++) ds[c * (t + 1) + j] = ph[j]! * (ds[c * (t + 1) + j]! - pdp);
        }
        site(ds, tr.bS[t]![hh]!);
        const qt = tr.q[t]!;
        const dqt = dq[t]!;
        for (let c = 0; c < C; c++)
          for (let j = 0; j <= t; j++) {
            const g = kappa * ds[c * (t + 1) + j]!;
            if (g === 0) continue;
            const kj = tr.k[j]!;
            const dkj = dk[j]!;
            for (let i = off; i < off + hd; i++) {
              dqt[c * E + i]! += g * kj[i]!;
              dkj[c * E + i]! += g * qt[i]!;
            }
          }
      }
    }
    const next: Array<Vec | null> = [];
    for (let t = 0; t < T; t++) {
      site(dq[t]!, tr.bF16q[t]!);
      site(dk[t]!, tr.bF16k[t]!);
      site(dv[t]!, tr.bF16v[t]!);
      site(dq[t]!, tr.bRq[t]!);
      site(dk[t]!, tr.bRk[t]!);
      const dqPre = ropeBackB(dq[t]!, tr.angles[t]!, hd, C);
      const dkPre = ropeBackB(dk[t]!, tr.angles[t]!, hd, C);
      site(dqPre, tr.bFq[t]!);
      site(dkPre, tr.bFk[t]!);
      site(dv[t]!, tr.bFv[t]!);
      const dh = back2([L.wq, dqPre], [L.wk, dkPre], C, tr.bQ8h[t]!, site, [L.wv, dv[t]!]);
      site(dh, tr.bN1[t]!);
      const back = rmsNormBackB(tr.n1[t]!, L.attnNorm, dh, C);
      next.push(dx1[t] ? addInto(back, dx1[t]!) : back);
    }
    dx = next;
  }
  return { logits, logp, bound: s2.map((v) => LAMBDA * Math.sqrt(v) + softmaxFloat) };
}

/** out (C x cols) += G (C x rows) M (rows x cols): the transposed product M^T g for each of C gradients. */
function mtB(m: Float64Array, rows: number, cols: number, g: Vec, C: number, out = new Float64Array(C * cols)): Vec {
  for (let c = 0; c < C; c++) {
    const oo = c * cols;
    const go = c * rows;
    let j = 0;
    // four rows at a time: about four times faster in V8 than one
    for (; j + 3 < rows; j += 4) {
      const [g0, g1, g2, g3] = [g[go + j]!, g[go + j + 1]!, g[go + j + 2]!, g[go + j + 3]!];
      const m0 = j * cols;
      const m1 = m0 + cols;
      const m2 = m1 + cols;
      const m3 = m2 + cols;
      for (let i = 0; i < cols; i++) out[oo + i]! += m[m0 + i]! * g0 + m[m1 + i]! * g1 + m[m2 + i]! * g2 + m[m3 + i]! * g3;
    }
    for (; j < rows; j++) {
      const gj = g[go + j]!;
      const mo = j * cols;
      for (let i = 0; i < cols; i++) out[oo + i]! += m[mo + i]! * gj;
    }
  }
  return out;
}

type Site = (J: Vec, b: Vec | null) => void;
/**
 * Backpropagates C gradients of y = W x + scale B (A x) to x. The input's Q8_0 quantisation error enters through
 * W alone (the adapter's F32 matmuls do not quantise), so that site sees W^T g; x gets W^T g + scale A^T (B^T g).
 */
function back(L: Linear, g: Vec, C: number, q8: Vec | null, site: Site): Vec {
  return back2([L, g], null, C, q8, site);
}
/** Same for several weights reading one input (q, k, v; gate, up): one shared quantisation of it. */
function back2(first: [Linear, Vec], second: [Linear, Vec] | null, C: number, q8: Vec | null, site: Site, third?: [Linear, Vec]): Vec {
  const parts = [first, ...(second ? [second] : []), ...(third ? [third] : [])];
  const cols = first[0].w.cols;
  const out = new Float64Array(C * cols);
  for (const [L, g] of parts) mtB(L.w.w, L.w.rows, cols, g, C, out);
  site(out, q8);
  for (const [L, g] of parts) {
    if (!L.lora) continue;
    const bg = mtB(L.lora.b.w, L.w.rows, L.lora.r, g, C);
    for (let i = 0; i < bg.length; i++) bg[i]! *= L.lora.scale;
    mtB(L.lora.a.w, L.lora.r, cols, bg, C, out);
  }
  return out;
}
function addInto(a: Vec, b: Vec): Vec {
  for (let i = 0; i < a.length; i++) a[i]! += b[i]!;
  return a;
}
function rmsNormBackB(n: Norm, g: Vec, dOut: Vec, C: number): Vec {
  const len = n.x.length;
  const out = new Float64Array(C * len);
  for (let c = 0; c < C; c++) {
    let ax = 0;
    for (let i = 0; i < len; i++) ax += dOut[c * len + i]! * g[i]! * n.x[i]!;
    const k = ax / (len * n.rms ** 3);
    for (let i = 0; i < len; i++) out[c * len + i] = (dOut[c * len + i]! * g[i]!) / n.rms - n.x[i]! * k;
  }
  return out;
}
function ropeBackB(dy: Vec, a: { cos: Vec; sin: Vec }, hd: number, C: number): Vec {
  const len = dy.length / C;
  const dx = new Float64Array(dy.length);
  for (let c = 0; c < C; c++)
    for (let h = 0; h < len; h += hd)
      for (let i = 0; i < hd / 2; i++) {
        const at = c * len + h + 2 * i;
        const [d0, d1] = [dy[at]!, dy[at + 1]!];
        dx[at] = d0 * a.cos[i]! + d1 * a.sin[i]!;
        dx[at + 1] = -d0 * a.sin[i]! + d1 * a.cos[i]!;
      }
  return dx;
}
