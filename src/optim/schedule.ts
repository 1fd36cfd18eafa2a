/**
 * Learning-rate schedules as pure functions of the step. `step` counts the steps taken
 * before the one the rate is for, from 0 (SimCLR's `global_step`), so the first update uses
 * the rate at step 0; pass it to `Optimizer.prepare` as step number `step + 1`.
 *
 * @example
 * ```ts
 * const schedule: CosineSchedule = {
 *   base: scaledLearningRate(0.3, 512), // 0.6, SimCLR's LARS recipe at batch 512
 *   warmupSteps: 10,
 *   totalSteps: 100,
 * };
 * const rates = [0, 5, 10, 100].map((step) => learningRate(step, schedule));
 * if (rates.join() !== "0,0.3,0.6,0") throw new Error(`unexpected ${rates}`);
 * if (constantLearningRate(5, { base: 1e-3 }) !== 1e-3) throw new Error("not constant");
 * ```
 *
 * @module
 */

/** A linear warm-up followed by a cosine decay. */
export interface CosineSchedule {
  /** The peak rate, reached at the end of the warm-up. */
  readonly base: number;
  /** Steps of linear warm-up from 0; 0 for none. */
  readonly warmupSteps: number;
  /** Steps of the whole run, warm-up included. */
  readonly totalSteps: number;
  /** The floor the decay ends at, reached at step `totalSteps`; 0 when left out. */
  readonly final?: number;
}

/**
 * SimCLR's schedule: `base · step / warmupSteps` during the warm-up, then a cosine decay from
 * `base` to `final` over the remaining steps, and `final` from `totalSteps` on.
 *
 * @example
 * ```ts ignore
 * const schedule = { base: 0.3, warmupSteps: 10, totalSteps: 100 };
 * learningRate(0, schedule); // 0
 * learningRate(10, schedule); // 0.3
 * learningRate(100, schedule); // 0
 * ```
 */
export function learningRate(
  step: number,
  { base, warmupSteps, totalSteps, final = 0 }: CosineSchedule,
): number {
  checkStep(step);
  if (!(warmupSteps >= 0 && warmupSteps <= totalSteps) || !Number.isInteger(warmupSteps)) {
    throw new RangeError(`Warm-up of ${warmupSteps} steps does not fit ${totalSteps} steps`);
  }
  if (step < warmupSteps) return (base * step) / warmupSteps;
  const decaySteps = totalSteps - warmupSteps;
  if (decaySteps === 0) return final;
  const progress = Math.min(step - warmupSteps, decaySteps) / decaySteps;
  return final + (base - final) * 0.5 * (1 + Math.cos(Math.PI * progress));
}

/**
 * A linear warm-up to `base` over `warmupSteps` steps (none by default), then `base`.
 *
 * @example
 * ```ts ignore
 * constantLearningRate(5, { base: 1e-3 }); // 0.001
 * ```
 */
export function constantLearningRate(
  step: number,
  { base, warmupSteps = 0 }: { readonly base: number; readonly warmupSteps?: number },
): number {
  checkStep(step);
  return step < warmupSteps ? (base * step) / warmupSteps : base;
}

/**
 * SimCLR's scaling of the base learning rate with the batch size: `linear` gives
 * `base · batchSize / 256` (the LARS recipe: 0.3 × batch/256), `sqrt` gives
 * `base · √batchSize` (0.075 × √batch, which the paper prefers for small batches).
 *
 * @example
 * ```ts ignore
 * scaledLearningRate(0.3, 512); // 0.6
 * ```
 */
export function scaledLearningRate(
  base: number,
  batchSize: number,
  scaling: "linear" | "sqrt" = "linear",
): number {
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new RangeError(`Batch size must be a positive integer, got ${batchSize}`);
  }
  return scaling === "linear" ? (base * batchSize) / 256 : base * Math.sqrt(batchSize);
}

function checkStep(step: number): void {
  if (!Number.isInteger(step) || step < 0) {
    throw new RangeError(`Schedule steps count from 0, got ${step}`);
  }
}
