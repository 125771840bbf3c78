/**
 * The dashboard page: polls the server's read API (/readyz, /v1/model, /v1/quality, /v1/history,
 * /v1/tables/diff) and renders each panel. The page holds no data of its own; with auth on it asks for a read
 * key (or takes one from the URL fragment, `#key=...`, which browsers never send to the server).
 */
import type * as Echarts from "echarts";

declare const echarts: typeof Echarts;

interface Gate {
  passed: boolean;
  reasons: string[];
}
interface RecordView {
  id: string;
  kind: string;
  status: string;
  createdAt: number;
  gate?: Gate;
}
interface Job {
  id: string;
  kind: string;
  state: string;
  startedAt: number;
  endedAt?: number;
  error?: string;
  progress?: { phase: string; done: number; total?: number };
}
interface Model {
  ready: boolean;
  lineage: { baseId: string | null; adapterId: string | null; tableId: string | null; snapshotId: string | null; ragBlend: number; popularityBlend: number };
  since: number | null;
  role: string;
  degraded: { scorer?: string; table?: string };
  lastSwap: { at: number; ok: boolean; what: string; reason?: string } | null;
  lastFailure: { at: number; what: string; reason?: string } | null;
  registry: RecordView[];
  ingest: { received: number; newestEventTs: number | null; lagS: number | null };
  loop: { phase: string; strategy?: string; drift?: { adapterJaccard?: number; recentJaccard?: number }; running?: { action: string; since: number }; failure?: { action: string; error: string } } | null;
  jobs: Job[];
}
interface Rate {
  rate: number | null;
  lo: number | null;
  hi: number | null;
}
interface Quality {
  horizonMs: number;
  answers: { settled: number; open: number; requests: number; notStored: number };
  groups: Array<{ tableId: string | null; adapterId: string | null; mode: string; arm: string; settled: number; top1: Rate; topk: Rate; open: number; openTop1Hits: number; openTopkHits: number }>;
  series: Array<{ label: string; points: Array<{ at: number; settled: number; topk: number | null }> }>;
  experiment: {
    running: { candidateTable: string | null; candidateScorer: { baseId: string; adapterId: string | null } | null; share: number; since: number; by: string } | null;
    arms: Array<{ arm: string; settled: number; top1: Rate; topk: Rate }>;
    difference: { top1: Difference; topk: Difference } | null;
  } | null;
}
interface Difference {
  diff: number;
  lo: number;
  hi: number;
}
interface Promotion {
  at: number;
  action: string;
  kind: string;
  from: string | null;
  to: string | null;
  /** experiment-start / experiment-stop entries name their candidate here. */
  candidate?: string;
  by: string;
  gate?: Gate;
}
interface Decision {
  at: number;
  action: string;
  reason: string;
  outcome: string;
  drift: { adapterJaccard?: number; recentJaccard?: number };
}
interface Diff {
  from: { id: string };
  to: { id: string };
  commonKeys: number;
  top1Changed: number;
  top1ChangedShare: number | null;
  cause: string;
  changes: Array<{ key: string; from: number; to: number }>;
}

class Unauthorized extends Error {}

const KEY_STORAGE = "freshrec-dashboard-key";
/** A key in the address's fragment (`#key=...`) is kept for this tab and removed from the address. */
function takeKeyFromFragment(): boolean {
  const key = new URLSearchParams(location.hash.slice(1)).get("key");
  if (!key) return false;
  sessionStorage.setItem(KEY_STORAGE, key);
  history.replaceState(null, "", location.pathname + location.search);
  return true;
}
takeKeyFromFragment();
const pollMs = Math.max(250, Number(new URLSearchParams(location.search).get("poll")) || 3000);

async function api<T>(path: string): Promise<{ status: number; body: T }> {
  const key = sessionStorage.getItem(KEY_STORAGE);
  const res = await fetch(`../${path}`, { headers: key ? { authorization: `Bearer ${key}` } : {} });
  if (res.status === 401 || res.status === 403) throw new Unauthorized(`${res.status} on ${path}`);
  return { status: res.status, body: (await res.json()) as T };
}

const esc = (s: unknown) => String(s ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const time = (ms: number | null | undefined) => (ms ? new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z") : "–");
const pct = (x: number | null | undefined) => (x === null || x === undefined ? "–" : `${(100 * x).toFixed(1)} %`);
const rate = (r: Rate) => (r.rate === null ? "–" : `${pct(r.rate)} <span class="muted">[${pct(r.lo)}, ${pct(r.hi)}]</span>`);
const gate = (g?: Gate) => (g ? (g.passed ? `<span class="ok">passed</span>` : `<span class="bad">refused</span>: ${esc(g.reasons.join("; "))}`) : "–");
const body = (id: string) => document.querySelector<HTMLElement>(`#${id} .body`)!;
const table = (head: string[], rows: string[][]) =>
  `<table><thead><tr>${head.map((h) => `<th>${h}</th>`).join("")}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join("")}</tr>`).join("")}</tbody></table>`;

const charts = new Map<string, Echarts.ECharts>();
function chart(id: string, option: Echarts.EChartsOption): void {
  let c = charts.get(id);
  if (!c) {
    c = echarts.init(document.getElementById(id)!, undefined, { renderer: "svg" });
    charts.set(id, c);
  }
  c.setOption(option, { notMerge: true });
}

function renderStatus(ready: { ready: boolean; reason?: string }, model: Model | null): void {
  const el = document.getElementById("status")!;
  el.className = `status ${ready.ready ? "ready" : "unready"}`;
  el.textContent = ready.ready ? `ready · ${model?.role ?? ""}` : `not ready: ${ready.reason ?? "unknown reason"}`;
  document.getElementById("updated")!.textContent = `updated ${new Date().toLocaleTimeString()} · every ${pollMs / 1000} s`;
}

function renderServing(m: Model): void {
  const active = m.registry.filter((r) => r.status === "active");
  const degraded = [m.degraded.scorer, m.degraded.table].filter(Boolean);
  body("serving").innerHTML = `<dl>
    <dt>base</dt><dd><code>${esc(m.lineage.baseId)}</code></dd>
    <dt>adapter</dt><dd><code>${esc(m.lineage.adapterId ?? "none")}</code></dd>
    <dt>table</dt><dd><code id="active-table">${esc(m.lineage.tableId)}</code></dd>
    <dt>RAG snapshot</dt><dd><code>${esc(m.lineage.snapshotId ?? "none")}</code></dd>
    <dt>blend</dt><dd>RAG ${m.lineage.ragBlend}, popularity ${m.lineage.popularityBlend}</dd>
    <dt>since</dt><dd>${time(m.since)}</dd>
    <dt>last swap</dt><dd>${m.lastSwap ? `${time(m.lastSwap.at)} ${m.lastSwap.ok ? "" : '<span class="bad">failed</span>'} ${esc(m.lastSwap.what)}` : "–"}</dd>
    ${m.lastFailure ? `<dt>last failure</dt><dd class="bad">${esc(m.lastFailure.what)}: ${esc(m.lastFailure.reason)}</dd>` : ""}
    ${degraded.length ? `<dt>degraded</dt><dd class="bad">${degraded.map(esc).join("<br>")}</dd>` : ""}
  </dl>${table(["active", "kind", "gate"], active.map((r) => [`<code>${esc(r.id)}</code>`, esc(r.kind), gate(r.gate)]))}`;
}

function renderQuality(q: Quality): void {
  const h = q.horizonMs / 3_600_000;
  body("quality").innerHTML = `<p>Served answers whose clusters the user engaged with within ${h} h: ${q.answers.settled} settled, ${q.answers.open} still open (${q.answers.notStored} not yet stored), standing for ${q.answers.requests} requests (repeats of an answer within a minute count once).</p>${table(
    ["table / adapter", "mode", "arm", "settled", "top-1 hit", "top-k hit", "open (hits so far)"],
    q.groups.map((g) => [`<code>${esc(g.tableId ?? g.adapterId ?? "base")}</code>`, esc(g.mode), esc(g.arm), String(g.settled), rate(g.top1), rate(g.topk), `${g.open} (${g.openTop1Hits} / ${g.openTopkHits})`]),
  )}${experiment(q.experiment)}`;
  chart("quality-chart", {
    tooltip: { trigger: "axis" },
    legend: { bottom: 0, type: "scroll" },
    grid: { top: 30, left: 45, right: 10, bottom: 50 },
    xAxis: { type: "time", axisLabel: { hideOverlap: true } },
    yAxis: { type: "value", min: 0, max: 100, name: "settled top-k hit %" },
    series: q.series.map((s) => ({ name: s.label, type: "line", showSymbol: true, data: s.points.map((p) => [p.at, p.topk === null ? null : 100 * p.topk]) })),
  });
}

const points = (d: Difference) => `${d.diff >= 0 ? "+" : ""}${(100 * d.diff).toFixed(1)} points <span class="muted">[${(100 * d.lo).toFixed(1)}, ${(100 * d.hi).toFixed(1)}]</span>`;

function experiment(e: Quality["experiment"]): string {
  if (!e) return "";
  const r = e.running;
  const parts = r ? [r.candidateTable ? `table <code>${esc(r.candidateTable)}</code>` : "", r.candidateScorer ? `adapter <code>${esc(r.candidateScorer.adapterId ?? r.candidateScorer.baseId)}</code> (live answers)` : ""].filter(Boolean) : [];
  const head = r ? `A/B running since ${time(r.since)} (by ${esc(r.by)}): ${parts.join(" and ")} answer${parts.length > 1 ? "" : "s"} ${pct(r.share)} of users` : "A/B ended (its answers are still in the window)";
  const arms = e.arms.map((a) => `${esc(a.arm)}: ${a.settled} settled, top-k ${rate(a.topk)}`).join("; ");
  const diff = e.difference ? `candidate − active: top-1 ${points(e.difference.top1)}, top-k ${points(e.difference.topk)}` : "no difference yet (an arm has no settled answer)";
  return `<p id="experiment"><b>${head}</b>. ${arms}. ${diff}.</p>`;
}

function renderDiff(d: { status: number; body: Diff | { error: { message: string } } }): void {
  if (d.status !== 200 || !("to" in d.body)) {
    body("diff").innerHTML = `<p class="muted">${esc("error" in d.body ? d.body.error.message : `status ${d.status}`)}</p>`;
    return;
  }
  const x = d.body;
  const causes: Record<string, string> = { rag: "retrieval alone (same model, fresh RAG snapshot)", model: "the model (another base or adapter, same snapshot)", "model+rag": "both the model and retrieval", none: "nothing in the lineage" };
  body("diff").innerHTML = `<p><code>${esc(x.from.id)}</code> → <code id="diff-to">${esc(x.to.id)}</code>: top-1 changed for <b id="diff-changed">${x.top1Changed}</b> of ${x.commonKeys} history keys (${pct(x.top1ChangedShare)}); changed by ${esc(causes[x.cause] ?? x.cause)}.</p>${table(
    ["history key", "top-1 before", "top-1 now"],
    x.changes.slice(0, 12).map((c) => [`<code>${esc(c.key)}</code>`, String(c.from), String(c.to)]),
  )}`;
}

function renderLoop(m: Model, decisions: Decision[]): void {
  const l = m.loop;
  const drift = l?.drift ?? {};
  body("loop").innerHTML = l
    ? `<p>${esc(l.strategy ?? "")} loop: ${esc(l.phase)}${l.running ? `, running ${esc(l.running.action)} since ${time(l.running.since)}` : ""}; drift now: Jaccard adapter window ${drift.adapterJaccard?.toFixed(3) ?? "–"}, recent ${drift.recentJaccard?.toFixed(3) ?? "–"}${l.failure ? ` · <span class="bad">last ${esc(l.failure.action)} failed: ${esc(l.failure.error)}</span>` : ""}</p>${table(
        ["at", "action", "outcome", "reason"],
        decisions.slice(-5).reverse().map((d) => [time(d.at), esc(d.action), d.outcome === "done" ? "done" : `<span class="bad">${esc(d.outcome)}</span>`, esc(d.reason)]),
      )}`
    : `<p class="muted">no update loop runs in this process (replicas and embedded servers follow the registry only)</p>`;
  const point = (d: Decision, v: number | undefined) => [d.at, v ?? null, d.action];
  chart("drift-chart", {
    tooltip: { trigger: "axis" },
    legend: { top: 0 },
    grid: { top: 30, left: 45, right: 10, bottom: 25 },
    xAxis: { type: "time", axisLabel: { hideOverlap: true } },
    yAxis: { type: "value", min: 0, max: 1, name: "Jaccard" },
    series: [
      { name: "vs adapter window", type: "line", data: decisions.map((d) => point(d, d.drift.adapterJaccard)) },
      { name: "recent", type: "line", data: decisions.map((d) => point(d, d.drift.recentJaccard)) },
      { name: "fine-tunes", type: "scatter", symbolSize: 10, data: decisions.filter((d) => d.action !== "refresh").map((d) => [d.at, 0.02, d.action]) },
    ],
  });
}

const ingestHistory: Array<[number, number, number | null]> = [];
let lastIngest: { at: number; received: number } | undefined;
function renderIngest(m: Model): void {
  const now = Date.now();
  const perS = lastIngest && now > lastIngest.at ? ((m.ingest.received - lastIngest.received) * 1000) / (now - lastIngest.at) : 0;
  lastIngest = { at: now, received: m.ingest.received };
  ingestHistory.push([now, perS, m.ingest.lagS]);
  if (ingestHistory.length > 200) ingestHistory.shift();
  body("ingest").innerHTML = `<p><span id="ingest-received">${m.ingest.received}</span> events received by this process; ${perS.toFixed(1)} events/s now; newest event ${time(m.ingest.newestEventTs)}, lag ${m.ingest.lagS === null ? "–" : `${m.ingest.lagS.toFixed(0)} s`} behind the serving clock.</p>`;
  chart("ingest-chart", {
    tooltip: { trigger: "axis" },
    legend: { top: 0 },
    grid: { top: 30, left: 45, right: 45, bottom: 25 },
    xAxis: { type: "time", axisLabel: { hideOverlap: true } },
    yAxis: [
      { type: "value", name: "events/s" },
      { type: "value", name: "lag s" },
    ],
    series: [
      { name: "events/s", type: "line", showSymbol: false, data: ingestHistory.map(([t, r]) => [t, r]) },
      { name: "lag", type: "line", yAxisIndex: 1, showSymbol: false, data: ingestHistory.map(([t, , lag]) => [t, lag]) },
    ],
  });
}

function renderJobs(m: Model): void {
  const progress = (j: Job) => (j.progress ? `${esc(j.progress.phase)} ${j.progress.total ? pct(j.progress.done / j.progress.total) : j.progress.done}` : "");
  body("jobs").innerHTML = m.jobs.length
    ? table(
        ["job", "state", "started", "progress / error"],
        [...m.jobs].reverse().slice(0, 8).map((j) => [`${esc(j.kind)} <code>${esc(j.id)}</code>`, j.state === "failed" ? `<span class="bad">failed</span>` : esc(j.state), time(j.startedAt), j.state === "running" ? progress(j) : esc(j.error ?? "")]),
      )
    : `<p class="muted">no job started by this process yet</p>`;
}

function renderRegistry(m: Model, promotions: Promotion[]): void {
  const rejected = m.registry.filter((r) => r.status === "rejected").sort((a, b) => b.createdAt - a.createdAt);
  body("registry").innerHTML = `${table(
    ["at", "action", "kind", "from → to", "by", "gate"],
    [...promotions].reverse().slice(0, 12).map((p) => [time(p.at), esc(p.action), esc(p.kind), p.candidate ? `candidate <code>${esc(p.candidate)}</code>` : `<code>${esc(p.from ?? "none")}</code> → <code>${esc(p.to ?? "none")}</code>`, esc(p.by), gate(p.gate)]),
  )}<h3>Rejected candidates</h3>${rejected.length ? table(["candidate", "kind", "created", "why"], rejected.slice(0, 8).map((r) => [`<code>${esc(r.id)}</code>`, esc(r.kind), time(r.createdAt), gate(r.gate)])) : '<p class="muted">none</p>'}`;
}

async function poll(): Promise<void> {
  try {
    const ready = await api<{ ready: boolean; reason?: string }>("readyz");
    const model = await api<Model>("v1/model");
    renderStatus(ready.body, model.body);
    document.getElementById("login")!.hidden = true;
    const [quality, history, diff] = await Promise.all([api<Quality>("v1/quality"), api<{ promotions: Promotion[]; decisions: Decision[] }>("v1/history"), api<Diff | { error: { message: string } }>("v1/tables/diff")]);
    renderServing(model.body);
    renderQuality(quality.body);
    renderDiff(diff);
    renderLoop(model.body, history.body.decisions);
    renderIngest(model.body);
    renderJobs(model.body);
    renderRegistry(model.body, history.body.promotions);
  } catch (err) {
    const el = document.getElementById("status")!;
    el.className = "status unready";
    if (err instanceof Unauthorized) {
      // Polling stops until a key is given: failed authentications are rate limited per client address.
      waitingForKey = true;
      el.textContent = "an API key with the read scope is needed";
      document.getElementById("login")!.hidden = false;
    } else el.textContent = `the server does not answer: ${err instanceof Error ? err.message : String(err)}`;
  }
}

document.getElementById("login")!.addEventListener("submit", (e) => {
  e.preventDefault();
  sessionStorage.setItem(KEY_STORAGE, (document.getElementById("key") as HTMLInputElement).value);
  waitingForKey = false;
  void tick();
});

window.addEventListener("hashchange", () => {
  if (!takeKeyFromFragment()) return;
  waitingForKey = false;
  void tick();
});

let running = false;
let waitingForKey = false;
async function tick(): Promise<void> {
  if (running || waitingForKey) return;
  running = true;
  try {
    await poll();
  } finally {
    running = false;
  }
}
void tick();
setInterval(() => void tick(), pollMs);
