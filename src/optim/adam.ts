import type { Gpu, Program } from "../gpu/gpu.ts";
import { f32 } from "../gpu/kernel.ts";
import { adamUpdateKernel } from "../gpu/kernels/optim.ts";
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
 * decoupled weight decay, as PyTorch's `AdamW`: one dispatch over the flat block. State:
 * `exp_avg` and `exp_avg_sq`, PyTorch's names.
 */
export class Adam implements Optimizer {
  readonly state: ReadonlyMap<string, Tensor>;
  readonly #chunks: ChunkTable;
  readonly #step: SegmentSteps<"stepSize" | "sqrtBiasCorrection2" | "decay">;

  constructor(readonly gpu: Gpu, readonly block: ParameterBlock, readonly options: AdamOptions) {
    this.state = zeroState(gpu, block, ["exp_avg", "exp_avg_sq"]);
    this.#chunks = new ChunkTable(gpu, block, options.excludeBiasAndNorm);
    this.#step = new SegmentSteps(
      gpu,
      block,
      ["stepSize", "sqrtBiasCorrection2", "decay"],
      "Adam",
      options.lrScale,
    );
  }

  record(program: Program): void {
    const { beta1, beta2, eps, weightDecay, decoupled } = this.options;
    const n = this.block.values.size;
    program.dispatch(
      adamUpdateKernel,
      [
        this.#step.tensor,
        this.#chunks.tensor,
        this.block.values,
        this.block.grads,
        this.state.get("exp_avg")!,
        this.state.get("exp_avg_sq")!,
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
      ],
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
