import type { Gpu, Program } from "../gpu/gpu.ts";
import { lossScaleUnscaleKernel, lossScaleUpdateKernel } from "../gpu/kernels/precision.ts";
import type { Tensor } from "../gpu/tensor.ts";
import type { ParameterBlock } from "../nn/parameters.ts";

/** How the scale starts and grows; PyTorch's GradScaler's defaults when left out. */
export interface LossScaleOptions {
  /** 2¹⁶. */
  readonly initialScale?: number;
  /** Good steps in a row that double the scale: 2,000. */
  readonly growthInterval?: number;
}

/**
 * Dynamic loss scaling for parameters trained through f16 activations, as PyTorch's
 * GradScaler does it, all on the GPU (no read by the host per step): the f16 network
 * multiplies the gradient entering it by {@link LossScale.scale}; after the backward pass the
 * scale is divided out of its parameters' gradients and any gradient that is not finite
 * raises {@link LossScale.overflow}; the optimizer's update runs guarded by that flag (a step
 * that overflowed changes no parameter and no optimizer state), and the scale is halved after
 * an overflow and doubled after a run of good steps.
 */
export class LossScale {
  /** f32 [1]: the factor on the gradient entering the f16 network. */
  readonly scale: Tensor;
  /** f32 [1]: good steps since the scale last changed. */
  readonly goodSteps: Tensor;
  /** u32 [1]: 1 after a step whose scaled gradients were not all finite. */
  readonly overflow: Tensor;
  readonly #begin: number;
  readonly #count: number;
  readonly #growthInterval: number;

  /** Scales the gradients of the parameters of `block` whose names start with `prefix`. */
  constructor(
    readonly gpu: Gpu,
    block: ParameterBlock,
    prefix: string,
    options: LossScaleOptions = {},
  ) {
    const scaled = block.segments.filter((s) => s.name.startsWith(prefix));
    if (scaled.length === 0) throw new Error(`No parameter of the block starts with ${prefix}`);
    const first = block.segments.indexOf(scaled[0]);
    if (block.segments.slice(first, first + scaled.length).some((s) => !scaled.includes(s))) {
      throw new Error(`The parameters named ${prefix}* do not lie together in the block`);
    }
    const last = scaled[scaled.length - 1];
    this.#begin = scaled[0].offset;
    this.#count = last.offset + last.size - this.#begin;
    this.scale = gpu.tensor([1], "loss scale");
    this.goodSteps = gpu.tensor([1], "loss scale: good steps");
    this.overflow = gpu.tensor([1], "loss scale: overflow", "u32");
    this.#growthInterval = options.growthInterval ?? 2000;
    gpu.write(this.scale, Float32Array.of(options.initialScale ?? 2 ** 16));
    gpu.write(this.goodSteps, Float32Array.of(0));
    gpu.write(this.overflow, Uint32Array.of(0));
  }

  /** Records the unscaling and the overflow check; after the backward pass, before the update. */
  recordUnscale(program: Program, grads: Tensor): void {
    program.clear(this.overflow);
    program.dispatch(
      lossScaleUnscaleKernel,
      [this.scale, grads, this.overflow],
      Math.ceil(this.#count / 256),
      [this.#begin, this.#count],
    );
  }

  /** Records `update` (the optimizer's) guarded by the overflow flag, then the scale's update. */
  recordGuarded(program: Program, update: () => void): void {
    program.guard(this.overflow, update);
    program.dispatch(lossScaleUpdateKernel, [this.overflow, this.scale, this.goodSteps], 1, [
      this.#growthInterval,
    ]);
  }

  /** The state a checkpoint keeps for an exact resume, by name. */
  get state(): ReadonlyMap<string, Tensor> {
    return new Map([["loss_scale", this.scale], ["loss_scale_good_steps", this.goodSteps]]);
  }

  destroy(): void {
    for (const t of [this.scale, this.goodSteps, this.overflow]) this.gpu.release(t.buffer);
  }
}
