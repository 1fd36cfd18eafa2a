import type { Program } from "../gpu/gpu.ts";
import { reluBackwardKernel, reluForwardKernel } from "../gpu/kernels/elementwise.ts";
import type { Tensor } from "../gpu/tensor.ts";
import type { Entry, Forward, ForwardOptions, Layer } from "./module.ts";

/** Records y = max(x, 0). */
export function reluForward(program: Program, x: Tensor): Tensor {
  const y = program.temp(x.shape, "relu output");
  program.dispatch(reluForwardKernel, [x, y], Math.ceil(x.size / 256), [x.size]);
  return y;
}

/** Records the ReLU gradient from the forward output `y`. */
export function reluBackward(program: Program, y: Tensor, gradY: Tensor): Tensor {
  const gradX = program.temp(y.shape, "relu input gradient");
  program.dispatch(reluBackwardKernel, [y, gradY, gradX], Math.ceil(y.size / 256), [y.size]);
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
