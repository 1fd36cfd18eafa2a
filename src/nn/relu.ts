import type { Program } from "../gpu/gpu.ts";
import { reluBackwardKernel, reluForwardKernel } from "../gpu/kernels/elementwise.ts";
import { inPrecision, precisionOf } from "../gpu/kernel.ts";
import type { Tensor } from "../gpu/tensor.ts";
import type { Entry, Forward, ForwardOptions, Layer } from "./module.ts";

/** Records y = max(x, 0), in x's precision. */
export function reluForward(program: Program, x: Tensor): Tensor {
  const precision = precisionOf(x);
  const y = program.temp(x.shape, "relu output", precision);
  const kernel = inPrecision(reluForwardKernel, precision);
  program.dispatch(kernel, [x, y], Math.ceil(x.size / 256), [x.size]);
  return y;
}

/** Records the ReLU gradient from the forward output `y`, in their precision. */
export function reluBackward(program: Program, y: Tensor, gradY: Tensor): Tensor {
  const precision = precisionOf(y, gradY);
  const gradX = program.temp(y.shape, "relu input gradient", precision);
  const kernel = inPrecision(reluBackwardKernel, precision);
  program.dispatch(kernel, [y, gradY, gradX], Math.ceil(y.size / 256), [y.size]);
  return gradX;
}

/** The rectified linear unit as a layer. */
export class ReLU implements Layer {
  entries(): Entry[] {
    return [];
  }

  forward(program: Program, input: Tensor, options: ForwardOptions): Forward {
    const output = reluForward(program, input);
    return {
      output,
      backward: (p, gradOutput) =>
        options.inputGrad ? reluBackward(p, output, gradOutput) : undefined,
    };
  }
}
