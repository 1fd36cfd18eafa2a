import type { Program } from "../gpu/gpu.ts";
import { avgPoolBackwardKernel, avgPoolForwardKernel } from "../gpu/kernels/pool.ts";
import type { Tensor } from "../gpu/tensor.ts";
import type { Entry, Forward, ForwardOptions, Layer } from "./module.ts";

/** Records global average pooling, [N, C, H, W] → [N, C]. */
export function globalAvgPoolForward(program: Program, x: Tensor): Tensor {
  if (x.shape.length !== 4) throw new Error(`Average pool expects NCHW input, got [${x.shape}]`);
  const [n, c, h, w] = x.shape;
  const y = program.temp([n, c], "average pool output");
  program.dispatch(avgPoolForwardKernel, [x, y], Math.ceil((n * c) / 64), [n * c, h * w]);
  return y;
}

/** Records the input gradient of global average pooling (overwritten): gy / (H·W) everywhere. */
export function globalAvgPoolBackward(
  program: Program,
  gradY: Tensor,
  inputShape: readonly number[],
): Tensor {
  const [n, c, h, w] = inputShape;
  if (gradY.size !== n * c) {
    throw new Error(`Average pool gradient [${gradY.shape}] for [${inputShape}]`);
  }
  const gradX = program.temp(inputShape, "average pool input gradient");
  program.dispatch(avgPoolBackwardKernel, [gradY, gradX], Math.ceil(gradX.size / 256), [
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
