import type { Gpu, Program } from "../gpu/gpu.ts";
import { f32 } from "../gpu/kernel.ts";
import { larsNormsKernel, larsTrustKernel, larsUpdateKernel } from "../gpu/kernels/optim.ts";
import type { Tensor } from "../gpu/tensor.ts";
import type { ParameterBlock } from "../nn/parameters.ts";
import { checkStep, ChunkTable, NormPieces, SegmentSteps, zeroState } from "./_layout.ts";
import type { Optimizer } from "./optimizer.ts";

/** LARS's hyperparameters. */
export interface LarsOptions {
  readonly momentum: number;
  readonly weightDecay: number;
  /** Decay (and, for LARS, adapt) only weights, not biases and normalisation parameters. */
  readonly excludeBiasAndNorm: boolean;
  /** η in the trust ratio η‖p‖/‖g + wd·p‖. */
  readonly trustCoefficient: number;
  /** Each parameter's learning rate relative to the run's, by name (1 when left out). */
  readonly lrScale?: (parameter: string) => number;
}

/**
 * Layer-wise adaptive rate scaling (You et al. 2017) as SimCLR uses it (lars_optimizer.py,
 * classic momentum, not Nesterov). For weights g' = g + wd·p and the trust ratio is
 * η‖p‖/‖g'‖ when both norms are positive, else 1; with `excludeBiasAndNorm` (SimCLR's
 * choice) biases and normalisation parameters get neither (g' = g, ratio 1), otherwise they
 * are treated as weights. Then v ← μv + lr·ratio·g', p ← p − v. State: `momentum`.
 *
 * Three dispatches: partial squared norms over pieces of each weight, the ratio of each
 * segment from its pieces, then the update over the flat block.
 */
export class Lars implements Optimizer {
  readonly state: ReadonlyMap<string, Tensor>;
  readonly #step: SegmentSteps<"learningRate">;
  readonly #chunks: ChunkTable;
  readonly #pieces: NormPieces;
  readonly #trust: Tensor;

  constructor(readonly gpu: Gpu, readonly block: ParameterBlock, readonly options: LarsOptions) {
    this.state = zeroState(gpu, block, ["momentum"]);
    this.#step = new SegmentSteps(gpu, block, ["learningRate"], "LARS", options.lrScale);
    this.#chunks = new ChunkTable(gpu, block, options.excludeBiasAndNorm);
    this.#pieces = new NormPieces(
      gpu,
      block,
      ({ kind }) => kind === "weight" || !options.excludeBiasAndNorm,
      "LARS",
    );
    this.#trust = gpu.tensor([Math.max(block.segments.length, 1)], "LARS trust ratios");
  }

  record(program: Program): void {
    const { momentum, weightDecay, trustCoefficient } = this.options;
    const segments = this.block.segments.length;
    if (segments === 0) return;
    const { pieces, segmentPieces, partials, count } = this.#pieces;
    if (count > 0) {
      program.dispatch(
        larsNormsKernel,
        [pieces, this.block.values, this.block.grads, partials],
        count,
        [count, f32(weightDecay)],
      );
    }
    program.dispatch(
      larsTrustKernel,
      [segmentPieces, partials, this.#trust],
      segments,
      [segments, f32(trustCoefficient)],
    );
    const n = this.block.values.size;
    program.dispatch(
      larsUpdateKernel,
      [
        this.#step.tensor,
        this.#chunks.tensor,
        this.#trust,
        this.block.values,
        this.block.grads,
        this.state.get("momentum")!,
      ],
      Math.ceil(n / 256),
      [n, f32(momentum), f32(weightDecay)],
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
    for (const tensor of [...this.state.values(), this.#trust]) this.gpu.release(tensor.buffer);
    this.#chunks.destroy();
    this.#pieces.destroy();
    this.#step.destroy();
  }
}
