// What the command-line tasks share: number parsing with clear errors, and a main wrapper
// that turns user-facing errors into one line and an exit status.
import { InvalidArgumentError } from "./deps.ts";
import { SelfsupError } from "./errors.ts";

/** Parses a whole number ≥ 1 for commander, or says why not. */
export function positiveInteger(value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isInteger(n) || n < 1) {
    throw new InvalidArgumentError(`expected a whole number ≥ 1, got "${value}"`);
  }
  return n;
}

/** Parses a whole number ≥ 0. */
export function nonNegativeInteger(value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isInteger(n) || n < 0) {
    throw new InvalidArgumentError(`expected a whole number ≥ 0, got "${value}"`);
  }
  return n;
}

/** Parses a finite number > 0. */
export function positiveNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n <= 0) {
    throw new InvalidArgumentError(`expected a number > 0, got "${value}"`);
  }
  return n;
}

/** Parses a finite number ≥ 0. */
export function nonNegativeNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n < 0) {
    throw new InvalidArgumentError(`expected a number ≥ 0, got "${value}"`);
  }
  return n;
}

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
