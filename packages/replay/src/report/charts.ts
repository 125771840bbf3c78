import * as echarts from "echarts";
import type { Results } from "../results.js";

/** One chart of the report: a file-safe name, a caption, and the SVG echarts rendered on the server. */
export interface Chart {
  name: string;
  title: string;
  svg: string;
}

const WIDTH = 860;
const HEIGHT = 400;

function render(option: echarts.EChartsCoreOption): string {
  const chart = echarts.init(null, null, { renderer: "svg", ssr: true, width: WIDTH, height: HEIGHT });
  try {
    // No animation: the SVG must be the final frame, and identical for identical data.
    chart.setOption({ animation: false, textStyle: { fontFamily: "DejaVu Sans, sans-serif" }, ...option });
    return chart.renderToSVGString();
  } finally {
    chart.dispose();
  }
}

const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);

function hitOverTime(r: Results, metric: "hit@1" | "hit@10"): Chart {
  const series = Object.entries(r.strategies).map(([name, s]) => ({
    name,
    type: "line",
    showSymbol: false,
    lineStyle: s.kind === "baseline" ? { type: "dashed" } : undefined,
    data: s.curve.filter((p) => p.n > 0).map((p) => [day(p.start), Number(p[metric].toFixed(4))]),
  }));
  return {
    name: `${metric.replace("@", "-at-")}-over-time`,
    title: `${metric} per evaluation period, by strategy (dashed: baselines without a model)`,
    svg: render({
      title: { text: `${metric} over time`, left: "center" },
      legend: { bottom: 0, type: "scroll" },
      grid: { left: 60, right: 30, top: 40, bottom: 70 },
      xAxis: { type: "category" },
      yAxis: { type: "value", name: metric },
      series,
    }),
  };
}

function qualityVsCost(r: Results): Chart {
  const models = Object.entries(r.strategies).filter(([, s]) => s.kind === "model");
  return {
    name: "quality-vs-cost",
    title: "hit@1 against trainer CPU seconds spent during the replay (model strategies)",
    svg: render({
      title: { text: "quality vs training cost", left: "center" },
      legend: { bottom: 0 },
      grid: { left: 60, right: 30, top: 40, bottom: 70 },
      xAxis: { type: "value", name: "trainer CPU s" },
      yAxis: { type: "value", name: "hit@1", scale: true },
      series: models.map(([name, s]) => ({
        name,
        type: "scatter",
        symbolSize: 14,
        label: { show: true, formatter: name, position: "top" },
        data: [[Number(s.train_cpu_s.toFixed(2)), Number(s["hit@1"].toFixed(4))]],
      })),
    }),
  };
}

function driftOverTime(r: Results): Chart | undefined {
  const drift = r.analyses.drift;
  if (!drift || drift.series.length === 0) return undefined;
  return {
    name: "drift-over-time",
    title: `Mean Jaccard similarity of each key's top-${drift.topN} successors, window against the previous ${drift.windowDays}-day window (paper: 0.17)`,
    svg: render({
      title: { text: "drift (Jaccard of top successors, window over window)", left: "center" },
      grid: { left: 60, right: 30, top: 40, bottom: 50 },
      xAxis: { type: "category", name: "window start" },
      yAxis: { type: "value", name: "Jaccard", min: 0, max: 1 },
      series: [
        { name: "Jaccard", type: "line", data: drift.series.map((p) => [day(p.start), Number(p.mean.toFixed(4))]) },
        { name: "paper", type: "line", showSymbol: false, lineStyle: { type: "dotted" }, data: drift.series.map((p) => [day(p.start), 0.17]) },
      ],
    }),
  };
}

function abChart(r: Results): Chart | undefined {
  if (!r.ab) return undefined;
  const arms = r.ab.arms;
  return {
    name: "ab-acceptance",
    title: `Simulated A/B: acceptance rate per arm with 95 % CI (${r.ab.users} users, served via ${r.ab.via})`,
    svg: render({
      title: { text: "simulated A/B acceptance rate", left: "center" },
      grid: { left: 60, right: 30, top: 40, bottom: 50 },
      xAxis: { type: "category", data: arms.map((a) => a.arm) },
      yAxis: { type: "value", name: "acceptance", scale: true },
      series: [
        { type: "bar", data: arms.map((a) => Number(a.rate.toFixed(5))), barWidth: "40%" },
        {
          type: "scatter",
          symbol: "rect",
          symbolSize: [20, 2],
          data: arms.flatMap((a) => [
            [a.arm, Number(a.ci[0].toFixed(5))],
            [a.arm, Number(a.ci[1].toFixed(5))],
          ]),
        },
      ],
    }),
  };
}

/** Every chart the report shows, in order. */
export function reportCharts(r: Results): Chart[] {
  return [hitOverTime(r, "hit@1"), hitOverTime(r, "hit@10"), qualityVsCost(r), driftOverTime(r), abChart(r)].filter(
    (c): c is Chart => c !== undefined,
  );
}
