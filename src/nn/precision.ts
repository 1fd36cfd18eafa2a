/**
 * f16 networks: casts between f32 and f16 tensors, and the boundary that runs a backbone on
 * f16 activations while everything around it stays f32 (images in, features out, the head, the
 * loss, the parameters and their gradients).
 *
 * @module
 */
import type { Program } from "../gpu/gpu.ts";
import {
  castToF16Kernel,
  castToF16ScaledKernel,
  castToF32Kernel,
} from "../gpu/kernels/precision.ts";
import type { Tensor } from "../gpu/tensor.ts";
import type { Backbone, BackboneConfig } from "./backbone.ts";
import type { Entry, Forward, ForwardOptions } from "./module.ts";

function cast(program: Program, x: Tensor, to: "f16" | "f32", scale?: Tensor): Tensor {
  const from = to === "f16" ? "f32" : "f16";
  if (x.dtype !== from) throw new Error(`Casting a ${x.dtype} tensor as ${from} to ${to}`);
  const y = program.temp(x.shape, `${x.dtype} as ${to}`, to);
  const kernel = to === "f32" ? castToF32Kernel : scale ? castToF16ScaledKernel : castToF16Kernel;
  const tensors = scale ? [x, y, scale] : [x, y];
  program.dispatch(kernel, tensors, Math.ceil(x.size / 256), [x.size]);
  return y;
}

/** Records y = f16(x · scale) (f16(x) without a scale: f32 [1] on the GPU). */
export function toF16(program: Program, x: Tensor, scale?: Tensor): Tensor {
  return cast(program, x, "f16", scale);
}

/** Records y = f32(x) of an f16 tensor. */
export function toF32(program: Program, x: Tensor): Tensor {
  return cast(program, x, "f32");
}

/**
 * The weight (f32) a layer computes with on `input`: itself, or on f16 input an f16 copy cast
 * in this step. The layer's parameter and its gradient stay f32.
 */
export function weightFor(program: Program, weight: Tensor, input: Tensor): Tensor {
  return input.dtype === "f16" ? toF16(program, weight) : weight;
}

/**
 * A backbone that computes on f16 activations and gradients: images are cast to f16 as they
 * enter, features to f32 as they leave, and the features' gradient to f16 on its way back,
 * multiplied by the loss scale (see {@link HalfPrecision.useLossScale}) so that small
 * gradients do not flush to zero in f16. Evaluation-mode passes run the f32 network. Its
 * layers cast their f32 weights to f16 for each step (see Conv2d, Linear) and accumulate f32
 * parameter gradients. Parameters, names and config are the inner backbone's: checkpoints do
 * not know the precision a run trained in.
 */
export class HalfPrecision implements Backbone {
  #lossScale?: Tensor;

  constructor(readonly inner: Backbone) {}

  get featureDim(): number {
    return this.inner.featureDim;
  }

  get config(): BackboneConfig {
    return this.inner.config;
  }

  get classifierName(): string {
    return this.inner.classifierName;
  }

  entries(): Entry[] {
    return this.inner.entries();
  }

  /**
   * Multiplies the gradient entering the backbone by `scale` (f32 [1], on the GPU) from the
   * next recorded backward on; the caller divides it out of the parameters' gradients.
   */
  useLossScale(scale: Tensor): void {
    this.#lossScale = scale;
  }

  forward(program: Program, input: Tensor, options: ForwardOptions): Forward {
    // f16 is how the run trains: evaluation sees the f32 network, as `deno task probe` of the
    // checkpoint later does, so that both give the same figures.
    if (!options.train) return this.inner.forward(program, input, options);
    // The gradient of the images would carry the loss scale; no method asks for it.
    if (options.inputGrad) throw new Error("An f16 backbone does not give its input's gradient");
    return this.around(program, input, (x) => this.inner.forward(program, x, options));
  }

  /**
   * Records `pass`, a training pass of the inner network that gives no input gradient, on f16:
   * its f32 input cast in, its output cast out to f32, the output's gradient cast in times the
   * loss scale. For a method that runs the network in pieces (MAE's encoder on the visible
   * patches) as {@link forward} runs it whole.
   */
  around(program: Program, input: Tensor, pass: (input: Tensor) => Forward): Forward {
    const inner = pass(toF16(program, input));
    return {
      output: toF32(program, inner.output),
      backward: (p, gradOutput) => {
        inner.backward(p, toF16(p, gradOutput, this.#lossScale));
        return undefined;
      },
    };
  }
}
