// What the command-line tasks share: number parsing with clear errors, and a main wrapper
// that turns user-facing errors into one line and an exit status.
import { InvalidArgumentError } from "./deps.ts";
import type { DatasetConfig, DatasetName } from "./data/load.ts";
import { SelfsupError } from "./errors.ts";

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

/**
 * Runs a task's body: a {@link SelfsupError} prints as one line and exits 1; anything else
 * is a bug in selfsup and keeps its stack.
 */
export async function runTask(name: string, body: () => Promise<number | void>): Promise<never> {
  try {
    const code = await body();
    Deno.exit(code ?? 0);
  } catch (error) {
    if (error instanceof SelfsupError) {
      console.error(`${name}: ${error.message}`);
      Deno.exit(1);
    }
    throw error;
  }
}

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
