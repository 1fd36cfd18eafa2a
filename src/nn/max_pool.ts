import { conv2dOutputSize } from "./conv2d.ts";
import type { Program } from "../gpu/gpu.ts";
import { maxPoolBackwardKernel, maxPoolForwardKernel } from "../gpu/kernels/pool.ts";
import { inPrecision, precisionOf } from "../gpu/kernel.ts";
import type { Tensor } from "../gpu/tensor.ts";
import type { Entry, Forward, ForwardOptions, Layer } from "./module.ts";

/** The window of a 2-D max pool; `stride` defaults to `kernel` and `padding` to 0, as PyTorch. */
export interface MaxPoolOptions {
  kernel: number;
  stride?: number;
  padding?: number;
}

/** What max pooling's backward pass needs: the winners' indices, and the input shape. */
export interface MaxPoolSaved {
  /** Per output, the index of its maximum within its input plane (ih·W + iw), u32. */
  readonly argmax: Tensor;
  readonly inputShape: readonly number[];
}

// Geometry and uniform parameters shared by the two kernels.
function geometry(
  shape: readonly number[],
  { kernel, stride = kernel, padding = 0 }: MaxPoolOptions,
) {
  if (shape.length !== 4) throw new Error(`Max pool expects NCHW input, got [${shape}]`);
  if (!(kernel >= 1 && stride >= 1 && padding >= 0 && 2 * padding <= kernel)) {
    throw new Error(
      `Max pool kernel ${kernel}, stride ${stride}, padding ${padding}: padding must be at most ` +
        `half the kernel`,
    );
  }
  const [n, c, h, w] = shape;
  // A pooling window slides as a convolution's does.
  const oh = conv2dOutputSize(h, kernel, stride, padding);
  const ow = conv2dOutputSize(w, kernel, stride, padding);
  if (oh < 1 || ow < 1) throw new Error(`Max pool kernel ${kernel} does not fit input [${shape}]`);
  return { outShape: [n, c, oh, ow], params: [h, w, oh, ow, kernel, stride, padding] };
}

/**
 * Records 2-D max pooling of x [N, C, H, W] (PyTorch semantics, no dilation or ceil mode), in
 * x's precision.
 */
export function maxPoolForward(
  program: Program,
  x: Tensor,
  options: MaxPoolOptions,
): { output: Tensor; saved: MaxPoolSaved } {
  const { outShape, params } = geometry(x.shape, options);
  const precision = precisionOf(x);
  const output = program.temp(outShape, "max pool output", precision);
  const argmax = program.temp(outShape, "max pool argmax", "u32");
  program.dispatch(
    inPrecision(maxPoolForwardKernel, precision),
    [x, output, argmax],
    Math.ceil(output.size / 256),
    [...params, output.size],
  );
  return { output, saved: { argmax, inputShape: x.shape } };
}

/**
 * Records max pooling's input gradient (overwritten), in gy's precision: each output's gradient
 * goes to its argmax.
 */
export function maxPoolBackward(
  program: Program,
  saved: MaxPoolSaved,
  gradY: Tensor,
  options: MaxPoolOptions,
): Tensor {
  const { params } = geometry(saved.inputShape, options);
  if (gradY.size !== saved.argmax.size) {
    throw new Error(`Max pool gradient [${gradY.shape}] for output [${saved.argmax.shape}]`);
  }
  const precision = precisionOf(gradY);
  const gradX = program.temp(saved.inputShape, "max pool input gradient", precision);
  program.dispatch(
    inPrecision(maxPoolBackwardKernel, precision),
    [gradY, saved.argmax, gradX],
    Math.ceil(gradX.size / 256),
    [...params, gradX.size],
  );
  return gradX;
}

/** 2-D max pooling as a layer, e.g. ResNet's stem `new MaxPool2d({ kernel: 3, stride: 2, padding: 1 })`. */
export class MaxPool2d implements Layer {
  readonly options: Required<MaxPoolOptions>;

  constructor({ kernel, stride = kernel, padding = 0 }: MaxPoolOptions) {
    this.options = { kernel, stride, padding };
  }

  entries(): Entry[] {
    return [];
  }

  forward(program: Program, input: Tensor, options: ForwardOptions): Forward {
    const { output, saved } = maxPoolForward(program, input, this.options);
    return {
      output,
      backward: (p, gradOutput) =>
        options.inputGrad ? maxPoolBackward(p, saved, gradOutput, this.options) : undefined,
    };
  }
}
