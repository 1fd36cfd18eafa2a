import type { Program } from "../gpu/gpu.ts";
import { avgPoolBackwardKernel, avgPoolForwardKernel } from "../gpu/kernels/pool.ts";
import { inPrecision, precisionOf } from "../gpu/kernel.ts";
import type { Tensor } from "../gpu/tensor.ts";
import type { Entry, Forward, ForwardOptions, Layer } from "./module.ts";

/** Records global average pooling, [N, C, H, W] → [N, C], features in x's precision. */
export function globalAvgPoolForward(program: Program, x: Tensor): Tensor {
  if (x.shape.length !== 4) throw new Error(`Average pool expects NCHW input, got [${x.shape}]`);
  const [n, c, h, w] = x.shape;
  const precision = precisionOf(x);
  const y = program.temp([n, c], "average pool output", precision);
  const kernel = inPrecision(avgPoolForwardKernel, precision);
  program.dispatch(kernel, [x, y], Math.ceil((n * c) / 64), [n * c, h * w]);
  return y;
}

/**
 * Records the input gradient of global average pooling (overwritten), in gy's precision:
 * gy / (H·W) everywhere.
 */
export function globalAvgPoolBackward(
  program: Program,
  gradY: Tensor,
  inputShape: readonly number[],
): Tensor {
  const [n, c, h, w] = inputShape;
  if (gradY.size !== n * c) {
    throw new Error(`Average pool gradient [${gradY.shape}] for [${inputShape}]`);
  }
  const precision = precisionOf(gradY);
  const gradX = program.temp(inputShape, "average pool input gradient", precision);
  const kernel = inPrecision(avgPoolBackwardKernel, precision);
  program.dispatch(kernel, [gradY, gradX], Math.ceil(gradX.size / 256), [
    gradX.size,
    h * w,
  ]);
  return gradX;
}

/** Global average pooling as a layer: the ResNet head, [N, C, H, W] → [N, C]. */
export class GlobalAvgPool implements Layer {
  entries(): Entry[] {
    return [];
  }

  forward(program: Program, input: Tensor, options: ForwardOptions): Forward {
    const output = globalAvgPoolForward(program, input);
    return {
      output,
      backward: (p, gradOutput) =>
        options.inputGrad ? globalAvgPoolBackward(p, gradOutput, input.shape) : undefined,
    };
  }
}
