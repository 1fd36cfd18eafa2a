import type { Kernel } from "../kernel.ts";
import packWeights from "../../../shaders/conv2d_pack_weights.wgsl" with { type: "text" };
import packActivations from "../../../shaders/conv2d_pack_activations.wgsl" with { type: "text" };
import forward from "../../../shaders/conv2d_forward.wgsl" with { type: "text" };
import forward3x3 from "../../../shaders/conv2d_forward_3x3.wgsl" with { type: "text" };
import forwardTiled from "../../../shaders/conv2d_forward_tiled.wgsl" with { type: "text" };
import backwardWeight from "../../../shaders/conv2d_backward_weight.wgsl" with { type: "text" };
import backwardWeight3x3 from "../../../shaders/conv2d_backward_weight_3x3.wgsl" with {
  type: "text",
};
import backwardWeightTiled from "../../../shaders/conv2d_backward_weight_tiled.wgsl" with {
  type: "text",
};
import reduce from "../../../shaders/conv2d_reduce.wgsl" with { type: "text" };
import splitSum from "../../../shaders/conv2d_split_sum.wgsl" with { type: "text" };

/**
 * Convolution kernels; each WGSL file documents its parameters and grid. Plain names are the
 * general register-blocked kernels for CPU adapters, `_3x3` their specialisations to 3×3
 * kernels with padding 1 (conv2d_forward_3x3 has entry points `main` for stride 1 and
 * `main_stride2`), `_tiled` the workgroup-memory kernels for GPUs. The input gradient runs
 * the forward kernels on flipped weights, one stride phase at a time, under its own names so
 * that profiles tell the passes apart.
 */
export const conv2dPackWeightsKernel: Kernel = { name: "conv2d_pack_weights", code: packWeights };
export const conv2dPackActivationsKernel: Kernel = {
  name: "conv2d_pack_activations",
  code: packActivations,
};
export const conv2dForwardKernel: Kernel = { name: "conv2d_forward", code: forward };
export const conv2dForward3x3Kernel: Kernel = { name: "conv2d_forward_3x3", code: forward3x3 };
export const conv2dForwardTiledKernel: Kernel = {
  name: "conv2d_forward_tiled",
  code: forwardTiled,
};
export const conv2dBackwardInputKernel: Kernel = { name: "conv2d_backward_input", code: forward };
export const conv2dBackwardInput3x3Kernel: Kernel = {
  name: "conv2d_backward_input_3x3",
  code: forward3x3,
};
export const conv2dBackwardInputTiledKernel: Kernel = {
  name: "conv2d_backward_input_tiled",
  code: forwardTiled,
};
export const conv2dBackwardWeightKernel: Kernel = {
  name: "conv2d_backward_weight",
  code: backwardWeight,
};
export const conv2dBackwardWeight3x3Kernel: Kernel = {
  name: "conv2d_backward_weight_3x3",
  code: backwardWeight3x3,
};
export const conv2dBackwardWeightTiledKernel: Kernel = {
  name: "conv2d_backward_weight_tiled",
  code: backwardWeightTiled,
};
export const conv2dReduceKernel: Kernel = { name: "conv2d_reduce", code: reduce };

/** Adds the splits of a tiled forward or input-gradient pass into its output's placement. */
export const conv2dSplitSumKernel: Kernel = { name: "conv2d_split_sum", code: splitSum };
