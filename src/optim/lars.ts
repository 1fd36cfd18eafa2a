import type { Gpu, Program } from "../gpu/gpu.ts";
import { f32 } from "../gpu/kernel.ts";
import { larsNormsKernel, larsTrustKernel, larsUpdateKernel } from "../gpu/kernels/optim.ts";
import type { Tensor } from "../gpu/tensor.ts";
import type { ParameterBlock } from "../nn/parameters.ts";
import { checkStep, chunkTable, SegmentSteps, zeroState } from "./_layout.ts";
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
 * Elements of a weight summed by one workgroup in the first stage of the norms: large enough
 * that llvmpipe runs few workgroups, small enough that a 2.4M-element weight spreads over
 * hundreds of them on a GPU.
 */
const pieceSize = 4096;

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
  readonly #chunks: Tensor;
  readonly #pieces: Tensor;
  readonly #pieceCount: number;
  readonly #segmentPieces: Tensor;
  readonly #partials: Tensor;
  readonly #trust: Tensor;

  constructor(readonly gpu: Gpu, readonly block: ParameterBlock, readonly options: LarsOptions) {
    this.state = zeroState(gpu, block, ["momentum"]);
    this.#step = new SegmentSteps(gpu, block, ["learningRate"], "LARS", options.lrScale);
    this.#chunks = chunkTable(gpu, block, options.excludeBiasAndNorm);

    const pieces: number[] = [];
    const segmentPieces = new Uint32Array(2 * Math.max(block.segments.length, 1));
    block.segments.forEach(({ offset, size, kind }, index) => {
      segmentPieces[2 * index] = pieces.length / 2;
      if (kind === "weight" || !options.excludeBiasAndNorm) {
        for (let start = 0; start < size; start += pieceSize) {
          pieces.push(offset + start, offset + Math.min(size, start + pieceSize));
        }
      }
      segmentPieces[2 * index + 1] = pieces.length / 2;
    });
    this.#pieceCount = pieces.length / 2;
    this.#pieces = gpu.tensor([Math.max(pieces.length, 2)], "LARS pieces", "u32");
    if (pieces.length) gpu.write(this.#pieces, Uint32Array.from(pieces));
    this.#segmentPieces = gpu.tensor([segmentPieces.length], "LARS segment pieces", "u32");
    gpu.write(this.#segmentPieces, segmentPieces);
    this.#partials = gpu.tensor([2 * Math.max(this.#pieceCount, 1)], "LARS partial norms");
    this.#trust = gpu.tensor([Math.max(block.segments.length, 1)], "LARS trust ratios");
  }

  record(program: Program): void {
    const { momentum, weightDecay, trustCoefficient } = this.options;
    const segments = this.block.segments.length;
    if (segments === 0) return;
    if (this.#pieceCount > 0) {
      program.dispatch(
        larsNormsKernel,
        [this.#pieces, this.block.values, this.block.grads, this.#partials],
        this.#pieceCount,
        [this.#pieceCount, f32(weightDecay)],
      );
    }
    program.dispatch(
      larsTrustKernel,
      [this.#segmentPieces, this.#partials, this.#trust],
      segments,
      [segments, f32(trustCoefficient)],
    );
    const n = this.block.values.size;
    program.dispatch(
      larsUpdateKernel,
      [
        this.#step.tensor,
        this.#chunks,
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

  destroy(): void {
    const owned = [this.#chunks, this.#pieces, this.#segmentPieces, this.#partials, this.#trust];
    for (const tensor of [...this.state.values(), ...owned]) this.gpu.release(tensor.buffer);
    this.#step.destroy();
  }
}
