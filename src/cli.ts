// What the command-line tasks share: number parsing with clear errors, and a main wrapper
// that turns user-facing errors into one line and an exit status.
import { InvalidArgumentError } from "./deps.ts";
import type { DatasetConfig, DatasetName } from "./data/load.ts";
import { SelfsupError } from "./errors.ts";
import { isSystemError } from "./io/files.ts";

/** A commander parser of numbers at least (or, if `exclusive`, above) `min`, or integers. */
function numberFlag(
  { integer, min, exclusive }: { integer: boolean; min: number; exclusive: boolean },
): (value: string) => number {
  const expected = `${integer ? "a whole number" : "a number"} ${exclusive ? ">" : "≥"} ${min}`;
  return (value) => {
    const n = Number(value);
    const fits = exclusive ? n > min : n >= min;
    if (value.trim() === "" || !Number.isFinite(n) || (integer && !Number.isInteger(n)) || !fits) {
      throw new InvalidArgumentError(`expected ${expected}, got "${value}"`);
    }
    // Above 2^53 whole numbers are no longer exact: two seeds there would be one.
    if (integer && !Number.isSafeInteger(n)) {
      throw new InvalidArgumentError(`expected ${expected} below 2^53, got "${value}"`);
    }
    return n;
  };
}

/** Parses a whole number ≥ 1. */
export const positiveInteger = numberFlag({ integer: true, min: 1, exclusive: false });
/** Parses a whole number ≥ 0. */
export const nonNegativeInteger = numberFlag({ integer: true, min: 0, exclusive: false });
/** Parses a finite number > 0. */
export const positiveNumber = numberFlag({ integer: false, min: 0, exclusive: true });
/** Parses a finite number ≥ 0. */
export const nonNegativeNumber = numberFlag({ integer: false, min: 0, exclusive: false });

/** Parses a number in [0, 1]. */
export function fraction(value: string): number {
  const n = nonNegativeNumber(value);
  if (n > 1) throw new InvalidArgumentError(`expected a number in [0, 1], got "${value}"`);
  return n;
}

/** Parses a number in (0, 1]. */
export function positiveFraction(value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !(n > 0 && n <= 1)) {
    throw new InvalidArgumentError(`expected a number in (0, 1], got "${value}"`);
  }
  return n;
}

/**
 * Refuses a backbone-shaping flag that a task given `--random-init` would ignore: those of
 * another backbone than `backbone` (`flagsOf` lists each backbone's, by attribute name).
 */
export function refuseOtherBackboneFlags(
  given: (attribute: string) => boolean,
  backbone: string,
  flagsOf: Readonly<Record<string, readonly string[]>>,
): void {
  for (const [owner, attributes] of Object.entries(flagsOf)) {
    const stray = owner === backbone ? undefined : attributes.find(given);
    if (stray) throw new SelfsupError(`--${kebab(stray)} is for --backbone ${owner}`);
  }
}

/**
 * Runs a task's body: a {@link SelfsupError}, or the operating system refusing a file
 * operation (a full disk, a read-only file system, a file where a folder should be), prints
 * as one line and exits 1; anything else is a bug in selfsup and keeps its stack.
 */
export async function runTask(name: string, body: () => Promise<number | void>): Promise<never> {
  try {
    const code = await body();
    Deno.exit(code ?? 0);
  } catch (error) {
    if (error instanceof SelfsupError || isSystemError(error)) {
      console.error(`${name}: ${error.message}`);
      Deno.exit(1);
    }
    throw error;
  }
}

/** The signals a task stops on, with the exit status each conventionally gives (128 + n). */
const stopSignals = { SIGINT: 130, SIGTERM: 143 } as const;

/** A stop signal that arrived: its name and the exit status it calls for. */
export interface StopSignal {
  readonly name: keyof typeof stopSignals;
  readonly exitCode: number;
}

/**
 * Calls `onSignal` on Ctrl-C (SIGINT) and on SIGTERM — what `kill`, Docker, systemd and
 * batch schedulers send — instead of letting either kill the process, until disposed.
 * Windows delivers only SIGINT to a process.
 */
export function onStopSignals(onSignal: (signal: StopSignal) => void): Disposable {
  const names = (Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"]) as (
    keyof typeof stopSignals
  )[];
  const listeners = names.map((name) => {
    const listener = () => onSignal({ name, exitCode: stopSignals[name] });
    Deno.addSignalListener(name, listener);
    return [name, listener] as const;
  });
  return {
    [Symbol.dispose]() {
      for (const [name, listener] of listeners) Deno.removeSignalListener(name, listener);
    },
  };
}

/** What `--data` means, for every task's help. */
export const dataFlagHelp =
  "CIFAR: an existing folder or .tar.gz; a folder without the data is where it is " +
  "downloaded, and without --data it goes to the cache. Folder: the image folder's root";

/**
 * The data an evaluation task uses: the data the checkpoint was trained on (same images at
 * the same size) unless `--dataset` names another, with `--data` and `--limit` applied.
 */
export function datasetFor(
  trained: DatasetConfig | undefined,
  flags: { dataset?: DatasetName; data?: string; limit?: number },
): DatasetConfig {
  const base: DatasetConfig = trained && (!flags.dataset || flags.dataset === trained.name)
    ? trained
    : { name: flags.dataset ?? "synthetic", imageSize: trained?.imageSize };
  return {
    ...base,
    ...(flags.data !== undefined ? { path: flags.data } : {}),
    ...(flags.limit !== undefined ? { limit: flags.limit } : {}),
  };
}

/**
 * Runs a training call that stops cleanly: the first Ctrl-C or SIGTERM aborts `signal`, so
 * training stops after its current step with a checkpoint saved there; a second one quits at
 * once. Prints `<task>: run folder <out>` once the signals are caught (a test interrupting at
 * that line relies on the order). Returns the call's result and the signal that stopped it.
 */
export async function stoppable<T>(
  task: string,
  out: string,
  body: (signal: AbortSignal) => Promise<T>,
): Promise<{ result: T; stoppedBy?: StopSignal }> {
  const interrupt = new AbortController();
  let stoppedBy: StopSignal | undefined;
  using _ = onStopSignals((signal) => {
    if (stoppedBy) Deno.exit(signal.exitCode);
    stoppedBy = signal;
    console.error(
      `\n${signal.name === "SIGINT" ? "Interrupted" : "Terminated"}: stopping at the next ` +
        `safe point (${signal.name === "SIGINT" ? "Ctrl-C" : "SIGTERM"} again to quit now)`,
    );
    interrupt.abort();
  });
  console.error(`${task}: run folder ${out}`);
  const result = await body(interrupt.signal);
  return { result, stoppedBy };
}

/** A flag's attribute name as it appears on the command line: `batchSize` → `batch-size`. */
export function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** A sortable local time stamp for default run folder names, e.g. `20261130-014502`. */
export function timestamp(): string {
  return new Date().toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
}
