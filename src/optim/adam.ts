import type { Gpu, Program } from "../gpu/gpu.ts";
import { f32 } from "../gpu/kernel.ts";
import { adamCountKernel, adamUpdateKernel } from "../gpu/kernels/optim.ts";
import type { Tensor } from "../gpu/tensor.ts";
import type { ParameterBlock } from "../nn/parameters.ts";
import { checkStep, ChunkTable, SegmentSteps, zeroState } from "./_layout.ts";
import type { Optimizer } from "./optimizer.ts";

/** Adam's hyperparameters; `decoupled` makes it AdamW. */
export interface AdamOptions {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  readonly decoupled: boolean;
  /** Decay only weights, not biases and normalisation parameters. */
  readonly excludeBiasAndNorm: boolean;
  /** Each parameter's learning rate relative to the run's, by name (1 when left out). */
  readonly lrScale?: (parameter: string) => number;
}

/**
 * Adam (Kingma & Ba) with L2 weight decay added to the gradient, as PyTorch's `Adam`, or with
 * decoupled weight decay, as PyTorch's `AdamW`: one dispatch over the flat block, and one
 * that counts the update. State, by PyTorch's names: `exp_avg` and `exp_avg_sq` (flat, in
 * the block's layout) and `step`, one f32 per parameter: the updates applied to it, which
 * its bias corrections count (a step skipped by the loss scale's guard and a frozen
 * parameter's steps not included, as PyTorch's `state['step']`).
 */
export class Adam implements Optimizer {
  readonly state: ReadonlyMap<string, Tensor>;
  readonly #chunks: ChunkTable;
  readonly #step: SegmentSteps<
    "stepSize" | "sqrtBiasCorrection2" | "decay" | "learningRate" | "hostStep"
  >;

  constructor(readonly gpu: Gpu, readonly block: ParameterBlock, readonly options: AdamOptions) {
    const state = zeroState(gpu, block, ["exp_avg", "exp_avg_sq"]);
    state.set("step", stepCounts(gpu, block));
    this.state = state;
    this.#chunks = new ChunkTable(gpu, block, options.excludeBiasAndNorm);
    this.#step = new SegmentSteps(
      gpu,
      block,
      ["stepSize", "sqrtBiasCorrection2", "decay", "learningRate", "hostStep"],
      "Adam",
      options.lrScale,
    );
  }

  record(program: Program): void {
    const { beta1, beta2, eps, weightDecay, decoupled } = this.options;
    const n = this.block.values.size;
    const count = this.state.get("step")!;
    program.dispatch(
      adamUpdateKernel,
      [
        this.#step.tensor,
        this.#chunks.tensor,
        this.block.values,
        this.block.grads,
        this.state.get("exp_avg")!,
        this.state.get("exp_avg_sq")!,
        count,
      ],
      Math.ceil(n / 256),
      [
        n,
        f32(beta1),
        f32(1 - beta1),
        f32(beta2),
        f32(1 - beta2),
        f32(eps),
        f32(decoupled ? 0 : weightDecay),
        f32(logBeta(beta1)),
        f32(logBeta(beta2)),
      ],
    );
    // In the same record as the update, so that whatever skips the update skips the count.
    program.dispatch(
      adamCountKernel,
      [this.#chunks.firstChunks, this.#chunks.tensor, count],
      Math.ceil(count.size / 64),
      [this.block.segments.length],
    );
  }

  prepare(step: number, learningRate: number): void {
    checkStep(step, learningRate);
    const { beta1, beta2, weightDecay, decoupled } = this.options;
    // In float64 on the host, as PyTorch computes them in Python, per parameter group.
    this.#step.write(learningRate, (lr) => ({
      stepSize: lr / (1 - beta1 ** step),
      sqrtBiasCorrection2: Math.sqrt(1 - beta2 ** step),
      decay: decoupled ? 1 - lr * weightDecay : 1,
      learningRate: lr,
      hostStep: step,
    }));
  }

  freeze(names: readonly string[]): void {
    this.#chunks.freeze(names);
  }

  destroy(): void {
    for (const tensor of this.state.values()) this.gpu.release(tensor.buffer);
    this.#chunks.destroy();
    this.#step.destroy();
  }
}

/** Zero step counts, one per parameter of `block` (at least one element). */
function stepCounts(gpu: Gpu, block: ParameterBlock): Tensor {
  const count = gpu.tensor([Math.max(block.segments.length, 1)], "optimizer step");
  gpu.write(count, new Float32Array(count.size));
  return count;
}

/** ln β for the kernel's own bias corrections, at least −88 so that β = 0 gives βᵗ = 0 in f32. */
function logBeta(beta: number): number {
  return Math.max(Math.log(beta), -88);
}
