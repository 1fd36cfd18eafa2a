import type { Program } from "../gpu/gpu.ts";
import { geluBackwardKernel, geluForwardKernel } from "../gpu/kernels/transformer.ts";
import { inPrecision, precisionOf } from "../gpu/kernel.ts";
import type { Tensor } from "../gpu/tensor.ts";
import type { Entry, Forward, ForwardOptions, Layer } from "./module.ts";

/** Records y = x·Φ(x), PyTorch's default (erf) GELU, in x's precision. */
export function geluForward(program: Program, x: Tensor): Tensor {
  const precision = precisionOf(x);
  const y = program.temp(x.shape, "gelu output", precision);
  const kernel = inPrecision(geluForwardKernel, precision);
  program.dispatch(kernel, [x, y], Math.ceil(x.size / 256), [x.size]);
  return y;
}

/** Records the GELU input gradient from the forward input `x`, in their precision. */
export function geluBackward(program: Program, x: Tensor, gradY: Tensor): Tensor {
  const precision = precisionOf(x, gradY);
  const gradX = program.temp(x.shape, "gelu input gradient", precision);
  const kernel = inPrecision(geluBackwardKernel, precision);
  program.dispatch(kernel, [x, gradY, gradX], Math.ceil(x.size / 256), [x.size]);
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
