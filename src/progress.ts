/**
 * A small progress reporter for long steps (downloads, training epochs): a live bar on a
 * terminal, and a plain line every few seconds when the output goes to a file or a pipe.
 *
 * @module
 */

import process from "node:process";
import { cliProgress } from "./deps.ts";

/** Options of {@linkcode progress}. */
export interface ProgressOptions {
  /** Shown at the start of the line, e.g. "download" or "epoch 3". */
  label: string;
  /** The value that means done. */
  total: number;
  /** Unit of the value, e.g. "steps"; "B" shows values as kB/MB/GB. */
  unit?: string;
  /** Where to write; stderr by default so that stdout stays free for results. */
  output?: "stdout" | "stderr";
  /** Seconds between plain lines when the output is not a terminal (default 5). */
  intervalSeconds?: number;
}

/** Extra values shown after the count, e.g. `{ loss: "1.23", "images/s": 512 }`. */
export type ProgressFields = Record<string, string | number>;

/** A running progress display. */
export interface Progress {
  /** Sets the current value (0..total) and, optionally, the extra fields shown beside it. */
  update(value: number, fields?: ProgressFields): void;
  /** Finishes the display (prints a last line); further updates are ignored. */
  stop(): void;
}

function formatBytes(n: number): string {
  if (n < 1e3) return `${n} B`;
  if (n < 1e6) return `${(n / 1e3).toFixed(1)} kB`;
  if (n < 1e9) return `${(n / 1e6).toFixed(1)} MB`;
  return `${(n / 1e9).toFixed(2)} GB`;
}

function formatCount(value: number, total: number, unit: string): string {
  if (unit === "B") return `${formatBytes(value)}/${formatBytes(total)}`;
  return `${value}/${total}${unit ? " " + unit : ""}`;
}

function formatFields(fields: ProgressFields): string {
  return Object.entries(fields).map(([k, v]) => `${k} ${v}`).join(" | ");
}

function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return "?";
  const t = Math.round(s);
  const h = Math.floor(t / 3600), m = Math.floor((t % 3600) / 60), sec = t % 60;
  const mm = String(m).padStart(h > 0 ? 2 : 1, "0"), ss = String(sec).padStart(2, "0");
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

/**
 * Starts a progress display.
 *
 * @example
 * ```ts
 * import { progress } from "./progress.ts";
 * const p = progress({ label: "epoch 1", total: 3, unit: "steps" });
 * for (let step = 1; step <= 3; step++) p.update(step, { loss: "1.23" });
 * p.stop();
 * ```
 */
export function progress(options: ProgressOptions): Progress {
  const unit = options.unit ?? "";
  const stream = options.output === "stdout" ? Deno.stdout : Deno.stderr;
  return stream.isTerminal() ? barProgress(options, unit) : lineProgress(options, unit, stream);
}

function barProgress(options: ProgressOptions, unit: string): Progress {
  const bar = new cliProgress.SingleBar({
    format: `${options.label} [{bar}] {percentage}% | {count}{fields} | ETA {eta_formatted}`,
    stream: options.output === "stdout" ? process.stdout : process.stderr,
    hideCursor: true,
    etaBuffer: 50,
  });
  const payload = (value: number, fields: ProgressFields) => ({
    count: formatCount(value, options.total, unit),
    fields: Object.keys(fields).length > 0 ? " | " + formatFields(fields) : "",
  });
  bar.start(options.total, 0, payload(0, {}));
  let stopped = false;
  return {
    update(value, fields = {}) {
      if (!stopped) bar.update(value, payload(value, fields));
    },
    stop() {
      if (stopped) return;
      stopped = true;
      bar.stop();
    },
  };
}

function lineProgress(
  options: ProgressOptions,
  unit: string,
  stream: typeof Deno.stdout | typeof Deno.stderr,
): Progress {
  const interval = (options.intervalSeconds ?? 5) * 1000;
  const start = performance.now();
  let lastLine = start;
  let value = 0;
  let fields: ProgressFields = {};
  let stopped = false;
  const encoder = new TextEncoder();
  const print = (done: boolean) => {
    const elapsed = (performance.now() - start) / 1000;
    const pct = options.total > 0 ? Math.floor((100 * value) / options.total) : 100;
    const timing = done
      ? `took ${formatSeconds(elapsed)}`
      : `ETA ${formatSeconds(value > 0 ? (elapsed / value) * (options.total - value) : Infinity)}`;
    const extra = Object.keys(fields).length > 0 ? " | " + formatFields(fields) : "";
    const line = `${options.label}: ${pct}% | ${formatCount(value, options.total, unit)}${extra}` +
      ` | ${timing}\n`;
    stream.writeSync(encoder.encode(line));
  };
  return {
    update(v, f) {
      if (stopped) return;
      value = v;
      if (f) fields = f;
      const now = performance.now();
      if (now - lastLine >= interval) {
        lastLine = now;
        print(false);
      }
    },
    stop() {
      if (stopped) return;
      stopped = true;
      print(true);
    },
  };
}
