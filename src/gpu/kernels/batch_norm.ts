import type { Kernel } from "../kernel.ts";
import stats from "../../../shaders/batch_norm_stats.wgsl" with { type: "text" };
import statsCombine from "../../../shaders/batch_norm_stats_combine.wgsl" with { type: "text" };
import evalStats from "../../../shaders/batch_norm_eval_stats.wgsl" with { type: "text" };
import forward from "../../../shaders/batch_norm_forward.wgsl" with { type: "text" };
import epilogue from "../../../shaders/batch_norm_epilogue.wgsl" with { type: "text" };
import epilogueResidual from "../../../shaders/batch_norm_epilogue_residual.wgsl" with {
  type: "text",
};
import gradient from "../../../shaders/batch_norm_gradient.wgsl" with { type: "text" };
import gradientRelu from "../../../shaders/batch_norm_gradient_relu.wgsl" with { type: "text" };
import backwardReduce from "../../../shaders/batch_norm_backward_reduce.wgsl" with {
  type: "text",
};
import backwardCombine from "../../../shaders/batch_norm_backward_combine.wgsl" with {
  type: "text",
};
import backwardInput from "../../../shaders/batch_norm_backward_input.wgsl" with {
  type: "text",
};
import statsSmall from "../../../shaders/batch_norm_stats_small.wgsl" with { type: "text" };
import backwardSmall from "../../../shaders/batch_norm_backward_small.wgsl" with {
  type: "text",
};
import splitExpand from "../../../shaders/batch_norm_split_expand.wgsl" with { type: "text" };
import splitFold from "../../../shaders/batch_norm_split_fold.wgsl" with { type: "text" };

/**
 * Per-(channel, chunk) mean and squared deviations (Welford, then a pairwise merge in the
 * workgroup); one workgroup of 64 per chunk, channel-major. Params: HW, C, N·HW, chunk,
 * chunks, (64 / HW)·C·HW + 64 % HW, 64 % HW.
 */
export const batchNormStatsKernel: Kernel = { name: "batch_norm_stats", code: stats };

/**
 * Merges the chunks of each channel into the saved (mean, invstd) and updates the running
 * statistics; one workgroup of 64 per channel. Params: C, N·HW, chunk, chunks, f32 momentum,
 * f32 eps.
 */
export const batchNormStatsCombineKernel: Kernel = {
  name: "batch_norm_stats_combine",
  code: statsCombine,
};

/** The saved (mean, invstd) from the running statistics; 64 channels per workgroup. */
export const batchNormEvalStatsKernel: Kernel = { name: "batch_norm_eval_stats", code: evalStats };

/**
 * y = (x − mean)·invstd·γ + β; workgroups of 256 over (C·HW positions × image groups).
 * Params: C·HW, HW, N, groups.
 */
export const batchNormForwardKernel: Kernel = {
  name: "batch_norm_forward",
  code: forward + epilogue,
};

/** {@link batchNormForwardKernel} followed by a ReLU, in the same pass. */
export const batchNormForwardReluKernel: Kernel = {
  name: "batch_norm_forward",
  code: forward + epilogue,
  constants: { relu: 1 },
};

/**
 * y = max(bn(x) + r, 0): batch norm, a residual join and its ReLU; laid out as
 * {@link batchNormForwardKernel}, with r bound after y.
 */
export const batchNormForwardResidualKernel: Kernel = {
  name: "batch_norm_forward_residual",
  code: forward + epilogueResidual,
};

/** Per-(channel, chunk) Σgy and Σgy·(x − mean); laid out as {@link batchNormStatsKernel}. */
export const batchNormBackwardReduceKernel: Kernel = {
  name: "batch_norm_backward_reduce",
  code: backwardReduce + gradient,
};

/**
 * {@link batchNormBackwardReduceKernel} behind a fused ReLU: gy masked by the forward output
 * y > 0, which it also stores; y and the masked gradient are bound after the partial sums.
 */
export const batchNormBackwardReduceReluKernel: Kernel = {
  name: "batch_norm_backward_reduce_relu",
  code: backwardReduce + gradientRelu,
};

/**
 * Per channel: γ and β gradients (+=) and the coefficients of the input gradient; one
 * workgroup of 64 per channel. Params: C, chunks, N·HW, train (1 or 0).
 */
export const batchNormBackwardCombineKernel: Kernel = {
  name: "batch_norm_backward_combine",
  code: backwardCombine,
};

/** gx from the per-channel coefficients; laid out as {@link batchNormForwardKernel}. */
export const batchNormBackwardInputKernel: Kernel = {
  name: "batch_norm_backward_input",
  code: backwardInput,
};

/** Split batch norm: γ, β and running statistics repeated per group; 256 values a group. */
export const batchNormSplitExpandKernel: Kernel = {
  name: "batch_norm_split_expand",
  code: splitExpand,
};

/** Split batch norm: a pair of per-channel values folded over the groups; 64 channels a group. */
export const batchNormSplitFoldKernel: Kernel = { name: "batch_norm_split_fold", code: splitFold };

/**
 * Training statistics of channels with few values, in one pass: one invocation per channel,
 * 64 a group. Params: HW, C, N, momentum, eps.
 */
export const batchNormStatsSmallKernel: Kernel = {
  name: "batch_norm_stats_small",
  code: statsSmall,
};

/**
 * The backward reductions of channels with few values, in one pass: one invocation per
 * channel, 64 a group. Params: HW, C, N, train.
 */
export const batchNormBackwardSmallKernel: Kernel = {
  name: "batch_norm_backward_small",
  code: backwardSmall + gradient,
};

/** {@link batchNormBackwardSmallKernel} behind a fused ReLU, bound as the chunked one's. */
export const batchNormBackwardSmallReluKernel: Kernel = {
  name: "batch_norm_backward_small_relu",
  code: backwardSmall + gradientRelu,
};
