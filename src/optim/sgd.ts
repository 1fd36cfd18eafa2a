import type { Gpu, Program } from "../gpu/gpu.ts";
import { f32 } from "../gpu/kernel.ts";
import { sgdUpdateKernel, sgdUpdatePlainKernel } from "../gpu/kernels/optim.ts";
import type { Tensor } from "../gpu/tensor.ts";
import type { ParameterBlock } from "../nn/parameters.ts";
import { checkStep, ChunkTable, SegmentSteps, zeroState } from "./_layout.ts";
import type { Optimizer } from "./optimizer.ts";

/** SGD's hyperparameters. */
export interface SgdOptions {
  readonly momentum: number;
  readonly weightDecay: number;
  /** Decay (and, for LARS, adapt) only weights, not biases and normalisation parameters. */
  readonly excludeBiasAndNorm: boolean;
  /** Each parameter's learning rate relative to the run's, by name (1 when left out). */
  readonly lrScale?: (parameter: string) => number;
}

/**
 * Stochastic gradient descent with momentum and L2 weight decay, as PyTorch's `SGD` with
 * dampening 0 and without Nesterov momentum: one dispatch over the flat block. State:
 * `momentum_buffer` (none without momentum).
 */
export class Sgd implements Optimizer {
  readonly state: ReadonlyMap<string, Tensor>;
  readonly #chunks: ChunkTable;
  readonly #step: SegmentSteps<"learningRate">;

  constructor(readonly gpu: Gpu, readonly block: ParameterBlock, readonly options: SgdOptions) {
    this.state = zeroState(gpu, block, options.momentum > 0 ? ["momentum_buffer"] : []);
    this.#chunks = new ChunkTable(gpu, block, options.excludeBiasAndNorm);
    this.#step = new SegmentSteps(gpu, block, ["learningRate"], "SGD", options.lrScale);
  }

  record(program: Program): void {
    const n = this.block.values.size;
    const buffer = this.state.get("momentum_buffer");
    const tensors = [this.#step.tensor, this.#chunks.tensor, this.block.values, this.block.grads];
    program.dispatch(
      buffer ? sgdUpdateKernel : sgdUpdatePlainKernel,
      buffer ? [...tensors, buffer] : tensors,
      Math.ceil(n / 256),
      [n, f32(this.options.momentum), f32(this.options.weightDecay)],
    );
  }

  prepare(step: number, learningRate: number): void {
    checkStep(step, learningRate);
    this.#step.write(learningRate, (lr) => ({ learningRate: lr }));
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
