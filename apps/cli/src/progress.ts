import cliProgress from "cli-progress";

/** Progress as packages report it: a phase name and done/total units. */
export interface ProgressEvent {
  phase: string;
  done: number;
  total?: number;
  /** Extra figures shown after the bar, e.g. { loss: 0.42 }. */
  info?: Record<string, number | string | null>;
}
export type ProgressFn = (e: ProgressEvent) => void;

/**
 * A progress reporter for the terminal: a bar per phase on a TTY, one line per ~5 % otherwise
 * (CI logs stay short). Call `done()` when the job ends.
 */
export function terminalProgress(stream: NodeJS.WriteStream = process.stderr): { report: ProgressFn; done(): void } {
  let bar: cliProgress.SingleBar | undefined;
  let phase = "";
  let lastPct = -1;
  const format = (e: ProgressEvent) =>
    Object.entries(e.info ?? {})
      .map(([k, v]) => `${k}=${typeof v === "number" ? Number(v.toPrecision(4)) : (v ?? "-")}`)
      .join(" ");
  const report: ProgressFn = (e) => {
    if (stream.isTTY) {
      if (e.phase !== phase) {
        bar?.stop();
        phase = e.phase;
        bar = new cliProgress.SingleBar(
          { stream, format: `${e.phase.padEnd(18)} [{bar}] {percentage}% {value}/{total} {info}`, hideCursor: true },
          cliProgress.Presets.shades_classic,
        );
        bar.start(e.total ?? 0, e.done, { info: format(e) });
      }
      if (e.total !== undefined) bar?.setTotal(e.total);
      bar?.update(e.done, { info: format(e) });
      return;
    }
    const pct = e.total ? Math.floor((100 * e.done) / e.total / 5) * 5 : -1;
    if (e.phase !== phase || pct !== lastPct) {
      phase = e.phase;
      lastPct = pct;
      stream.write(`${e.phase}: ${e.done}${e.total ? `/${e.total} (${pct}%)` : ""} ${format(e)}\n`);
    }
  };
  return { report, done: () => bar?.stop() };
}
