import type { Gpu, Program } from "../gpu/gpu.ts";
import { f32 } from "../gpu/kernel.ts";
import {
  gradClipCoefficientsKernel,
  gradClipScaleKernel,
  larsNormsKernel,
} from "../gpu/kernels/optim.ts";
import type { Tensor } from "../gpu/tensor.ts";
import type { ParameterBlock } from "../nn/parameters.ts";
import { ChunkTable, NormPieces } from "./_layout.ts";

/**
 * Clips each parameter's gradient to a norm of at most `clip`, one parameter at a time, as
 * DINO's `utils.clip_gradients` does after the backward pass: g ← g · clip / (‖g‖ + 1e-6)
 * where that factor is below 1. (Not `torch.nn.utils.clip_grad_norm_`, which scales all
 * gradients by one factor from their joint norm.) Record it after the backward passes and
 * before the optimizer's update.
 *
 * Three dispatches, as LARS's norms: partial sums of ‖g‖² over pieces of each parameter
 * (LARS's first stage, with no weight decay), each parameter's factor from its pieces, then
 * the scaling over the flat block.
 *
 * @example
 * ```ts ignore
 * const clip = new GradientClip(gpu, block, 3);
 * recordBackward(program);
 * clip.record(program);
 * optimizer.record(program);
 * ```
 */
export class GradientClip {
  readonly #chunks: ChunkTable;
  readonly #pieces: NormPieces;
  readonly #factors: Tensor;

  constructor(readonly gpu: Gpu, readonly block: ParameterBlock, readonly clip: number) {
    if (!(clip > 0) || !Number.isFinite(clip)) {
      throw new Error(`Gradient clipping needs a finite norm > 0, got ${clip}`);
    }
    this.#chunks = new ChunkTable(gpu, block, false);
    this.#pieces = new NormPieces(gpu, block, () => true, "gradient clipping");
    this.#factors = gpu.tensor([Math.max(block.segments.length, 1)], "gradient clip factors");
  }

  record(program: Program): void {
    const segments = this.block.segments.length;
    const { pieces, segmentPieces, partials, count } = this.#pieces;
    if (count === 0) return;
    program.dispatch(
      larsNormsKernel,
      [pieces, this.block.values, this.block.grads, partials],
      count,
      [count, f32(0)],
    );
    program.dispatch(
      gradClipCoefficientsKernel,
      [segmentPieces, partials, this.#factors],
      segments,
      [segments, f32(this.clip)],
    );
    const n = this.block.grads.size;
    program.dispatch(
      gradClipScaleKernel,
      [this.#chunks.tensor, this.#factors, this.block.grads],
      Math.ceil(n / 256),
      [n],
    );
  }

  destroy(): void {
    this.#chunks.destroy();
    this.#pieces.destroy();
    this.gpu.release(this.#factors.buffer);
  }
}
