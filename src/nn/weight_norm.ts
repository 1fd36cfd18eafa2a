import type { Program } from "../gpu/gpu.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { uniform } from "./init.ts";
import { l2NormalizeBackward, l2NormalizeForward } from "./l2_normalize.ts";
import { linearBackwardInput, linearBackwardWeight, linearForward } from "./linear.ts";
import { type Entry, type Forward, type ForwardOptions, type Layer, Parameter } from "./module.ts";

/**
 * A weight-normalised linear layer without bias, as DINO's last layer:
 * `nn.utils.weight_norm(nn.Linear(in, out, bias=False))` with its magnitude `weight_g` fixed
 * at 1 (DINO's default `norm_last_layer`). The weight is then each row of the direction v
 * [out, in] at unit length, W = v / ‖v‖, and the layer's output x·Wᵀ: cosine-like scores of
 * the input against `out` prototypes. So the weight norm's forward and backward passes are
 * the row normalisation's kernels on v, the backward accumulating into v's gradient:
 * gv += (gW − W (W·gW)) / ‖v‖, row by row.
 *
 * The parameter is named `weight_v` as PyTorch names it; `weight_g` (all ones) is not stored.
 * v starts as `nn.Linear`'s weight does, uniform on ±1/√in.
 */
export class WeightNormLinear implements Layer {
  readonly weightV: Parameter;

  constructor(readonly inFeatures: number, readonly outFeatures: number) {
    this.weightV = new Parameter(
      [outFeatures, inFeatures],
      "weight",
      uniform(1 / Math.sqrt(inFeatures)),
    );
  }

  entries(): Entry[] {
    return [["weight_v", this.weightV]];
  }

  forward(program: Program, input: Tensor, options: ForwardOptions): Forward {
    if (input.shape.length !== 2 || input.shape[1] !== this.inFeatures) {
      throw new Error(
        `WeightNormLinear(${this.inFeatures}, ${this.outFeatures}) got input [${input.shape}]`,
      );
    }
    const { y: weight, norms } = l2NormalizeForward(program, this.weightV.value);
    return {
      output: linearForward(program, input, weight, null),
      backward: (p, gradOutput) => {
        const gradWeight = p.temp(weight.shape, "weight-norm weight gradient");
        p.clear(gradWeight);
        linearBackwardWeight(p, input, gradOutput, gradWeight, null);
        l2NormalizeBackward(p, weight, norms, gradWeight, this.weightV.grad);
        return options.inputGrad ? linearBackwardInput(p, gradOutput, weight) : undefined;
      },
    };
  }
}
