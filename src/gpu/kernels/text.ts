import type { Kernel } from "../kernel.ts";
import embeddingForward from "../../../shaders/embedding_forward.wgsl" with { type: "text" };
import embeddingBackwardRows from "../../../shaders/embedding_backward_rows.wgsl" with {
  type: "text",
};
import embeddingBackwardSum from "../../../shaders/embedding_backward_sum.wgsl" with {
  type: "text",
};
import softmaxMaskedForward from "../../../shaders/softmax_masked_forward.wgsl" with {
  type: "text",
};
import sequencePoolForward from "../../../shaders/sequence_pool_forward.wgsl" with {
  type: "text",
};
import sequencePoolBackward from "../../../shaders/sequence_pool_backward.wgsl" with {
  type: "text",
};
import maskedCrossEntropyRows from "../../../shaders/masked_cross_entropy_rows.wgsl" with {
  type: "text",
};
import rowSoftmax from "../../../shaders/row_softmax.wgsl" with { type: "text" };
import clipLossLogsumexp from "../../../shaders/clip_loss_logsumexp.wgsl" with { type: "text" };
import clipLossBackward from "../../../shaders/clip_loss_backward.wgsl" with { type: "text" };
import clipLossReduce from "../../../shaders/clip_loss_reduce.wgsl" with { type: "text" };

// The kernels of text encoders, masked language modelling and CLIP; each WGSL file documents its
// parameters and grid.

/** Rows of an embedding table by id: one invocation per output value, 256 a group. */
export const embeddingForwardKernel: Kernel = { name: "embedding_forward", code: embeddingForward };

/**
 * The table's gradient in two passes: list the rows the ids use (one invocation per id), then
 * sum each listed row's without float atomics (one invocation per (row, 8 columns)).
 */
export const embeddingBackwardRowsKernel: Kernel = {
  name: "embedding_backward_rows",
  code: embeddingBackwardRows,
};
export const embeddingBackwardSumKernel: Kernel = {
  name: "embedding_backward_sum",
  code: embeddingBackwardSum,
};

/** Attention's softmax without padding keys (and later ones, when causal): one row each. */
export const softmaxMaskedForwardKernel: Kernel = {
  name: "softmax_masked_forward",
  code: softmaxMaskedForward,
};

/** A sequence's features from its tokens': mean, first or last; and the gradient. */
export const sequencePoolForwardKernel: Kernel = {
  name: "sequence_pool_forward",
  code: sequencePoolForward,
};
export const sequencePoolBackwardKernel: Kernel = {
  name: "sequence_pool_backward",
  code: sequencePoolBackward,
};

/** Cross-entropy on the rows whose target is not −1, averaged over them: a workgroup per row. */
export const maskedCrossEntropyRowsKernel: Kernel = {
  name: "masked_cross_entropy_rows",
  code: rowSoftmax + maskedCrossEntropyRows,
};

/** CLIP's symmetric contrastive loss with a learnable temperature, in three passes. */
export const clipLossLogsumexpKernel: Kernel = {
  name: "clip_loss_logsumexp",
  code: rowSoftmax + clipLossLogsumexp,
};
export const clipLossBackwardKernel: Kernel = {
  name: "clip_loss_backward",
  code: clipLossBackward,
};
export const clipLossReduceKernel: Kernel = { name: "clip_loss_reduce", code: clipLossReduce };
