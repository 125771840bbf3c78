import { parseArgs } from "node:util";
import { resolve } from "node:path";
import { CLUSTER_COUNT_RULE, DEFAULT_POSITIVE_THRESHOLD, parseClusterCountOption, parseThresholdOption, type ModelKind } from "@freshrec/core";
import {
  runReplay,
  loadDataset,
  parseStrategies,
  parseLive,
  ReplayError,
  DEFAULT_REPLAY_MODEL,
  REPLAY_MODEL_SIZES,
  type DatasetSpec,
  type ReplayModelSize,
  type ReplayOptions,
} from "@freshrec/replay";
import { TEXT_SCORINGS } from "@freshrec/scorer";
import { terminalProgress } from "../progress.js";
import { textBaseModel } from "../service/base-model.js";

const MODEL_KIND_CHOICES: Record<string, ModelKind[]> = { "cluster-token": ["cluster-token"], text: ["text"], both: ["cluster-token", "text"] };

export const summary = "replay a dataset through every update strategy and baseline; write reports/<run-id>/ (optionally with the simulated A/B)";

const HELP = `usage: freshrec replay --dataset movielens DIR | synthetic SIZE | events FILE [options]

  --dataset KIND ARG      movielens <dir>, synthetic <tiny|default|large>, or events <file> (with --items <file>)
  --items FILE            items file for --dataset events (generic format: per item a clusterId, or features
                          such as categorical columns and tags to build clusters from; packages/core/IMPORT-FORMAT.md)
  --clusters N            clusters built from item features, movielens and events (default:
                          ${CLUSTER_COUNT_RULE})
  --threshold X           positive engagement is signal >= X, movielens and events (default ${DEFAULT_POSITIVE_THRESHOLD})
  --strategies LIST       all, or a comma list of static,finetune,rag,hybrid,adaptive,rag-frozen (default all)
  --live LIST             also replay these strategies served by live scoring (fresh RAG per request, the
                          server's mode "live"): none, or a comma list of rag,hybrid,adaptive (default hybrid)
  --rag-blend W           what RAG tables mix into the model's scores: fit (default: weights fitted per refresh on
                          held-out days), or R[,P]: weight R of the key's retrieved successor shares and P of recent
                          popularity (R + P <= 1); 0 is the paper's model alone
  --seed N                seed for the synthetic world, clustering, training, bootstrap and the A/B (default 1)
  --world-drift X         synthetic only: the world's drift level (1 is the preset's; 0 a world that never drifts)
  --time-scale X          stretch cadences and windows by X (default: chosen from the dataset's traffic)
  --finetune-days F       fine-tune cadence before scaling (default 30, the paper's)
  --refresh-days R        RAG table refresh cadence before scaling (default 2, the paper's)
  --model-kind K          cluster-token (default), text, or both: both kinds' strategies side by side on the same
                          data, the text ones named <strategy>-text, with hit@10 on clusters born after each
                          model's last fine-tune (cold start)
  --text-model FILE       the text GGUF for --model-kind text|both (default: freshrec's own small llama-architecture
                          model with StarCoder's tokenizer, its weights trained on the pretraining window)
  --text-scoring S        how a text model's answer log-probabilities become a distribution over clusters:
                          ${TEXT_SCORINGS.join(", ")} (default constrained; packages/scorer/README.md, "Text models")
  --model SIZE            cluster-token model size: ${Object.keys(REPLAY_MODEL_SIZES).join(", ")} (default ${DEFAULT_REPLAY_MODEL.size})
  --pretrain-epochs N     base model epochs (default ${DEFAULT_REPLAY_MODEL.pretrainEpochs})
  --lora-epochs N         epochs per fine-tune (default ${DEFAULT_REPLAY_MODEL.loraEpochs})
  --train-threads N       trainer threads (default ${DEFAULT_REPLAY_MODEL.threads})
  --test-fraction X       share of transitions (latest) in the test period (default 0.4)
  --ab ARMS               simulated A/B on the synthetic world, e.g. hybrid,finetune (treatment first)
  --ab-users N            simulated requests per arm, about (default 2000)
  --reports DIR           where reports go (default reports)
  --run-id ID             report folder name (default <dataset>-<strategies>-seed<N>)
  --json                  print results.json's path and the headline table as one JSON line at the end`;

function ragBlendOption(v: string): "fit" | { rag: number; popularity: number } {
  if (v === "fit") return v;
  const [rag = NaN, popularity = 0, ...rest] = v.split(",").map(Number);
  if (rest.length > 0 || !(rag >= 0 && popularity >= 0 && rag + popularity <= 1))
    throw new ReplayError(`--rag-blend: expected fit, R or R,P with R, P >= 0 and R + P <= 1, got ${JSON.stringify(v)}`);
  return { rag, popularity };
}

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      dataset: { type: "string" },
      items: { type: "string" },
      clusters: { type: "string" },
      threshold: { type: "string" },
      "world-drift": { type: "string" },
      strategies: { type: "string", default: "all" },
      live: { type: "string" },
      "rag-blend": { type: "string" },
      seed: { type: "string", default: "1" },
      "time-scale": { type: "string" },
      "finetune-days": { type: "string" },
      "refresh-days": { type: "string" },
      model: { type: "string" },
      "model-kind": { type: "string", default: "cluster-token" },
      "text-model": { type: "string" },
      "text-scoring": { type: "string" },
      "pretrain-epochs": { type: "string" },
      "lora-epochs": { type: "string" },
      "train-threads": { type: "string" },
      "test-fraction": { type: "string" },
      ab: { type: "string" },
      "ab-users": { type: "string" },
      reports: { type: "string", default: "reports" },
      "run-id": { type: "string" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const kind = values.dataset;
  const arg = positionals[0];
  if (!kind || !arg || !["movielens", "synthetic", "events"].includes(kind)) {
    console.error(`freshrec replay: --dataset needs movielens DIR, synthetic SIZE or events FILE\n\n${HELP}`);
    return 2;
  }
  const num = (name: string, v: string | undefined) => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new ReplayError(`--${name}: expected a positive number, got ${JSON.stringify(v)}`);
    return n;
  };
  const recorded = {
    ...(values.clusters === undefined ? {} : { clusters: parseClusterCountOption(values.clusters) }),
    ...(values.threshold === undefined ? {} : { threshold: parseThresholdOption(values.threshold) }),
  };
  const worldDrift = values["world-drift"] === undefined ? undefined : Number(values["world-drift"]);
  if (worldDrift !== undefined && (kind !== "synthetic" || !(worldDrift >= 0)))
    throw new ReplayError(`--world-drift: a drift level >= 0 of the synthetic world (1 is the preset's), got ${JSON.stringify(values["world-drift"])} for --dataset ${kind}`);
  if (kind === "synthetic" && Object.keys(recorded).length > 0)
    throw new ReplayError(`--clusters and --threshold apply to movielens and events: the synthetic world's clusters and positives are its ground truth`);
  const spec: DatasetSpec =
    kind === "movielens"
      ? { kind: "movielens", dir: resolve(arg), ...recorded }
      : kind === "synthetic"
        ? { kind: "synthetic", size: arg, ...(worldDrift === undefined ? {} : { drift: worldDrift }) }
        : { kind: "events", file: resolve(arg), items: values.items ? resolve(values.items) : undefined, ...recorded };
  const seed = num("seed", values.seed) ?? 1;
  const modelKinds = MODEL_KIND_CHOICES[values["model-kind"]!];
  if (!modelKinds) throw new ReplayError(`--model-kind: expected ${Object.keys(MODEL_KIND_CHOICES).join(", ")}, got ${JSON.stringify(values["model-kind"])}`);
  if (values["text-model"] !== undefined && !modelKinds.includes("text")) throw new ReplayError(`--text-model needs --model-kind text or both`);
  const textModel = values["text-model"] === undefined ? undefined : await textBaseModel(values["text-model"]);
  const scoring = values["text-scoring"];
  if (scoring !== undefined && !(TEXT_SCORINGS as readonly string[]).includes(scoring)) throw new ReplayError(`--text-scoring: expected ${TEXT_SCORINGS.join(", ")}, got ${JSON.stringify(scoring)}`);
  // Every option is checked before the dataset loads and anything trains.
  const options: Omit<ReplayOptions, "dataset"> = {
    strategies: parseStrategies(values.strategies!),
    ...(values.live ? { live: parseLive(values.live) } : {}),
    seed,
    timeScale: num("time-scale", values["time-scale"]),
    finetuneEveryDays: num("finetune-days", values["finetune-days"]),
    refreshEveryDays: num("refresh-days", values["refresh-days"]),
    testFraction: num("test-fraction", values["test-fraction"]),
    model: {
      ...(values.model ? { size: values.model as ReplayModelSize } : {}),
      ...(values["pretrain-epochs"] ? { pretrainEpochs: num("pretrain-epochs", values["pretrain-epochs"]) } : {}),
      ...(values["lora-epochs"] ? { loraEpochs: num("lora-epochs", values["lora-epochs"]) } : {}),
      ...(values["train-threads"] ? { threads: num("train-threads", values["train-threads"]) } : {}),
    },
    modelKinds,
    ...(textModel ? { textModel } : {}),
    loop: { ...(values["rag-blend"] ? { ragBlend: ragBlendOption(values["rag-blend"]) } : {}), ...(scoring ? { text: { scoring } } : {}) },
    ab: values.ab ? { arms: values.ab.split(","), users: num("ab-users", values["ab-users"]) } : undefined,
    reportsDir: resolve(values.reports!),
    runId: values["run-id"],
  };
  const dataset = await loadDataset(spec, seed);
  for (const note of dataset.notes) console.log(`${dataset.name}: ${note}`);
  const progress = terminalProgress();
  try {
    const out = await runReplay({ ...options, dataset, onProgress: progress.report });
    progress.done();
    console.log(out.table);
    console.log(`report: ${out.report.dir}/index.html`);
    if (values.json) console.log(JSON.stringify({ results: `${out.report.dir}/results.json`, strategies: out.headline }));
    return 0;
  } finally {
    progress.done();
  }
}
