import type { Program } from "../gpu/gpu.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { uniform } from "./init.ts";
import { linearBackwardInput, linearBackwardWeight, linearForward } from "./linear.ts";
import { type Entry, type Forward, type ForwardOptions, type Layer, Parameter } from "./module.ts";
import { weightFor } from "./precision.ts";
import { patchify, patchifyBackward } from "./tokens.ts";

/**
 * timm's `PatchEmbed`: a convolution with kernel = stride = p (`proj`, with bias) from images
 * [N, C, H, W] to tokens [N, (H/p)·(W/p), D], computed as patchify + one GEMM with the weight
 * [D, C, p, p] read as [D, C·p·p]. Initialised as PyTorch's Conv2d, which timm leaves it:
 * weight and bias uniform on ±1/√(C·p²). On f16 images it computes with an f16 copy of its
 * (f32) weight, cast in each step, as Linear does; the bias and both gradients stay f32.
 */
export class PatchEmbed implements Layer {
  readonly weight: Parameter;
  readonly bias: Parameter;

  constructor(readonly channels: number, readonly dim: number, readonly patchSize: number) {
    const bound = 1 / Math.sqrt(channels * patchSize * patchSize);
    this.weight = new Parameter([dim, channels, patchSize, patchSize], "weight", uniform(bound));
    this.bias = new Parameter([dim], "bias", uniform(bound));
  }

  entries(): Entry[] {
    return [["proj.weight", this.weight], ["proj.bias", this.bias]];
  }

  forward(program: Program, input: Tensor, options: ForwardOptions): Forward {
    if (input.shape.length !== 4 || input.shape[1] !== this.channels) {
      throw new Error(`PatchEmbed(${this.channels} channels) got input [${input.shape}]`);
    }
    const patches = patchify(program, input, this.patchSize);
    const [n, count, size] = patches.shape;
    const rows = patches.reshape([n * count, size]);
    const weight = (t: Tensor) => t.reshape([this.dim, size]);
    const value = weightFor(program, this.weight.value, input);
    const y = linearForward(program, rows, weight(value), this.bias.value);
    return {
      output: y.reshape([n, count, this.dim]),
      backward: (p, gradOutput) => {
        const gradY = gradOutput.reshape([n * count, this.dim]);
        linearBackwardWeight(p, rows, gradY, weight(this.weight.grad), this.bias.grad);
        if (!options.inputGrad) return undefined;
        const gradPatches = linearBackwardInput(p, gradY, weight(value));
        return patchifyBackward(p, gradPatches, input.shape, this.patchSize);
      },
    };
  }
}
