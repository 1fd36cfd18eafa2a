import type { Program } from "../gpu/gpu.ts";
import { geluBackwardKernel, geluForwardKernel } from "../gpu/kernels/transformer.ts";
import type { Tensor } from "../gpu/tensor.ts";
import type { Entry, Forward, ForwardOptions, Layer } from "./module.ts";

/** Records y = x·Φ(x), PyTorch's default (erf) GELU. */
export function geluForward(program: Program, x: Tensor): Tensor {
  const y = program.temp(x.shape, "gelu output");
  program.dispatch(geluForwardKernel, [x, y], Math.ceil(x.size / 256), [x.size]);
  return y;
}

/** Records the GELU input gradient from the forward input `x`. */
export function geluBackward(program: Program, x: Tensor, gradY: Tensor): Tensor {
  const gradX = program.temp(x.shape, "gelu input gradient");
  program.dispatch(geluBackwardKernel, [x, gradY, gradX], Math.ceil(x.size / 256), [x.size]);
  return gradX;
}

/** The Gaussian error linear unit as a layer: `nn.GELU()` (approximate="none"). */
export class GELU implements Layer {
  entries(): Entry[] {
    return [];
  }

  forward(program: Program, input: Tensor, options: ForwardOptions): Forward {
    const output = geluForward(program, input);
    return {
      output,
      backward: (p, gradOutput) =>
        options.inputGrad ? geluBackward(p, input, gradOutput) : undefined,
    };
  }
}
