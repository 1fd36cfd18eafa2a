import type { Kernel } from "../kernel.ts";
import forward from "../../../shaders/linear_forward.wgsl" with { type: "text" };
import backwardInput from "../../../shaders/linear_backward_input.wgsl" with { type: "text" };
import backwardWeight from "../../../shaders/linear_backward_weight.wgsl" with { type: "text" };
import backwardWeightReduce from "../../../shaders/linear_backward_weight_reduce.wgsl" with {
  type: "text",
};
import pad from "../../../shaders/linear_pad.wgsl" with { type: "text" };

/**
 * y = x·Wᵀ + b, 16×16 outputs per invocation in workgroups of 64; inner dimension a multiple
 * of 4. Params: m, n, k / 4, ceil(n / 16).
 */
export const linearForwardKernel: Kernel = { name: "linear_forward", code: forward };

/**
 * gx = gy·W, 16×16 outputs per invocation in workgroups of 64; inner and output widths
 * multiples of 4. Params: m, n, k / 4, n / 4, ceil(n / 16).
 */
export const linearBackwardInputKernel: Kernel = {
  name: "linear_backward_input",
  code: backwardInput,
};

/**
 * gW (+)= gyᵀ·x and gb (+)= Σ gy over one split of the batch per invocation group, 16×16
 * outputs per invocation in workgroups of 64. Params: m, n, k, m / 4, n / 4, ceil(n / 16),
 * tiles, rows per split, accumulate (1: add into the gradients; 0: write split partials).
 */
export const linearBackwardWeightKernel: Kernel = {
  name: "linear_backward_weight",
  code: backwardWeight,
};

/** Adds split partials into the weight and bias gradients; one invocation per element. */
export const linearBackwardWeightReduceKernel: Kernel = {
  name: "linear_backward_weight_reduce",
  code: backwardWeightReduce,
};

/** Zero-pads a matrix to a larger one; one invocation per output element. */
export const linearPadKernel: Kernel = { name: "linear_pad", code: pad };
