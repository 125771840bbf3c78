/** Small, valid manifests of each kind, as the update jobs write them (tests publish records without training). */
import type { AdapterManifest, ArtefactKind, BaseManifest, RecordOfKind, TableManifest, TrainingSetManifest } from "../src/index.js";

const holdout = { n: 10, exactMatch: 1, recallAt1: 0.2, recallAt5: 0.5 };
const layout = { k: 2, ragSlots: 3, nClusters: 8 };
const cost = { wallS: 1, cpuS: 1, asOf: 86_400_000 };
const trainingSet: TrainingSetManifest = {
  id: "ts-1",
  window: { start: 0, end: 86_400_000 },
  holdoutStart: 43_200_000,
  counts: { inWindow: 20, kept: 15, train: 12, val: 3, holdout: 5, droppedByPairCap: 0, droppedByKeyCap: 0, ragDropped: 0, relabelled: 0, ragEmpty: 0, keys: 4 },
  caps: { perKey: 100, perPair: 10 },
  ragDropout: 0.2,
  relabelCopies: 0,
  ragWindowDays: 7,
  seed: 1,
  storeVersion: 3,
  layout,
};

const base: BaseManifest = { modelHash: "h", trainFile: "base.gguf", trainingSetId: "ts-1", trainingSet, trainer: "native", hyperparameters: {}, layout, window: trainingSet.window, holdout, ...cost };
const adapter: AdapterManifest = { baseId: "base-x", baseHash: "h", trainingSetId: "ts-1", trainingSet, trainer: "native", hyperparameters: {}, warmStartFrom: null, holdout, ...cost };
const table: TableManifest = {
  tableId: "table-x",
  lineage: { baseId: "base-x", adapterId: null, snapshotId: null, createdAt: 0 },
  rag: false,
  ragBlend: { weights: { rag: 0, popularity: 0 }, reason: "no RAG" },
  keys: 4,
  allKeys: true,
  holdout,
  incumbent: { id: null, holdout: null },
  ...cost,
};

export function sampleManifest<K extends ArtefactKind>(kind: K, overrides: Partial<RecordOfKind<K>["manifest"]> = {}): RecordOfKind<K>["manifest"] {
  const sample = { base, adapter, table }[kind];
  return { ...sample, ...overrides } as RecordOfKind<K>["manifest"];
}
