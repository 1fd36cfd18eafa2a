import type { Program } from "../gpu/gpu.ts";
import { weightNormBackwardKernel, weightNormForwardKernel } from "../gpu/kernels/embedding.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { constant, uniform } from "./init.ts";
import { l2NormalizeBackward, l2NormalizeForward } from "./l2_normalize.ts";
import { linearBackwardInput, linearBackwardWeight, linearForward } from "./linear.ts";
import { type Entry, type Forward, type ForwardOptions, type Layer, Parameter } from "./module.ts";

/**
 * A weight-normalised linear layer without bias, as DINO's last layer:
 * `nn.utils.weight_norm(nn.Linear(in, out, bias=False))`, W = g · v / ‖v‖ row by row, with
 * the magnitude `weight_g` [out, 1] starting at 1 as DINO sets it. By default the magnitude
 * stays at 1 (DINO's `norm_last_layer`): W is then each row of the direction v [out, in] at
 * unit length and the output x·Wᵀ cosine-like scores of the input against `out`
 * prototypes, so the passes are the row normalisation's kernels on v, and `weight_g` (all
 * ones) is not stored. With `trainableMagnitude` (`norm_last_layer` False) g is a parameter
 * that the weight norm's own kernels read and differentiate.
 *
 * The parameters are named as PyTorch names them. v starts as `nn.Linear`'s weight does,
 * uniform on ±1/√in.
 */
export class WeightNormLinear implements Layer {
  readonly weightV: Parameter;
  readonly weightG?: Parameter;

  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    options: { trainableMagnitude?: boolean } = {},
  ) {
    this.weightV = new Parameter(
      [outFeatures, inFeatures],
      "weight",
      uniform(1 / Math.sqrt(inFeatures)),
    );
    // DINO decays g with the weights: its parameter groups exempt only biases and 1-D tensors.
    if (options.trainableMagnitude) {
      this.weightG = new Parameter([outFeatures, 1], "weight", constant(1));
    }
  }

  entries(): Entry[] {
    return this.weightG
      ? [["weight_g", this.weightG], ["weight_v", this.weightV]]
      : [["weight_v", this.weightV]];
  }

  forward(program: Program, input: Tensor, options: ForwardOptions): Forward {
    if (input.shape.length !== 2 || input.shape[1] !== this.inFeatures) {
      throw new Error(
        `WeightNormLinear(${this.inFeatures}, ${this.outFeatures}) got input [${input.shape}]`,
      );
    }
    const { weight, backward } = this.weightG
      ? this.#scaled(program, this.weightG)
      : this.#unit(program);
    return {
      output: linearForward(program, input, weight, null),
      backward: (p, gradOutput) => {
        const gradWeight = p.temp(weight.shape, "weight-norm weight gradient");
        p.clear(gradWeight);
        linearBackwardWeight(p, input, gradOutput, gradWeight, null);
        backward(p, gradWeight);
        return options.inputGrad ? linearBackwardInput(p, gradOutput, weight) : undefined;
      },
    };
  }

  /** W = v / ‖v‖, the gradient added to v's. */
  #unit(program: Program) {
    const { y: weight, norms } = l2NormalizeForward(program, this.weightV.value);
    return {
      weight,
      backward: (p: Program, gradWeight: Tensor) =>
        l2NormalizeBackward(p, weight, norms, gradWeight, this.weightV.grad),
    };
  }

  /** W = g · v / ‖v‖, the gradients added to g's and v's. */
  #scaled(program: Program, g: Parameter) {
    const v = this.weightV;
    const [rows, cols] = v.shape;
    const weight = program.temp([rows, cols], "weight-norm weight");
    const norms = program.temp([rows], "weight-norm row norms");
    const groups = Math.ceil(rows / 64);
    program.dispatch(weightNormForwardKernel, [v.value, g.value, weight, norms], groups, [
      rows,
      cols,
    ]);
    return {
      weight,
      backward: (p: Program, gradWeight: Tensor) =>
        p.dispatch(
          weightNormBackwardKernel,
          [v.value, g.value, norms, gradWeight, g.grad, v.grad],
          groups,
          [rows, cols],
        ),
    };
  }
}
