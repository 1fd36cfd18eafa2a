import type { Gpu, Program } from "../gpu/gpu.ts";
import { emaUpdateKernel } from "../gpu/kernels/optim.ts";
import { StepValues } from "../gpu/step_values.ts";
import type { ParameterBlock } from "../nn/parameters.ts";

/**
 * A moving average of an online network's parameters into a target network's (MoCo's key
 * encoder, BYOL's target, DINO's teacher): one dispatch over the target's flat block,
 * t ← τ·t + (1 − τ)·o, with τ set before each submit. The target's parameters must be laid
 * out as a prefix of the online block's (build both from the same entries, the online
 * network's extra heads last); running statistics are not averaged — the target's own
 * forward passes update them, as in the reference implementations.
 */
export class EmaUpdate {
  readonly #step: StepValues<"rate" | "oneMinusRate">;

  constructor(
    readonly gpu: Gpu,
    readonly target: ParameterBlock,
    readonly online: ParameterBlock,
  ) {
    target.segments.forEach((t, i) => {
      const o = online.segments[i];
      if (!o || o.name !== t.name || o.offset !== t.offset || o.size !== t.size) {
        throw new Error(
          `Moving average: the target's ${t.name} is not laid out as the online block's`,
        );
      }
    });
    this.#step = new StepValues(gpu, ["rate", "oneMinusRate"], "moving average");
  }

  /** Copies the online parameters into the target's, as training starts. */
  copy(): void {
    const encoder = this.gpu.device.createCommandEncoder();
    const t = this.target.values;
    encoder.copyBufferToBuffer(this.online.values.buffer, 0, t.buffer, t.byteOffset, t.byteLength);
    this.gpu.device.queue.submit([encoder.finish()]);
  }

  record(program: Program): void {
    const n = this.target.values.size;
    program.dispatch(
      emaUpdateKernel,
      [this.#step.tensor, this.online.values.slice(0, [n]), this.target.values],
      Math.ceil(n / 256),
      [n],
    );
  }

  /** Sets τ for the next run of the recorded update. */
  prepare(rate: number): void {
    if (!(rate >= 0 && rate <= 1)) {
      throw new Error(`Moving-average rate must be in [0, 1], got ${rate}`);
    }
    this.#step.write({ rate, oneMinusRate: 1 - rate });
  }

  destroy(): void {
    this.#step.destroy();
  }
}

/**
 * BYOL's schedule of the moving-average rate, as solo-learn's `MomentumUpdater`: τ rises from
 * `base` at step 0 to `final` at step `totalSteps` along a half cosine,
 * τ = final − (final − base)·(cos(π·step/totalSteps) + 1)/2. `step` counts the updates
 * already made; `final` = `base` keeps it constant (MoCo).
 */
export function emaRate(step: number, totalSteps: number, base: number, final: number): number {
  if (!(totalSteps >= 1) || !(step >= 0)) {
    throw new RangeError(`Moving-average schedule at step ${step} of ${totalSteps}`);
  }
  return final -
    (final - base) * (Math.cos((Math.PI * Math.min(step, totalSteps)) / totalSteps) + 1) / 2;
}
