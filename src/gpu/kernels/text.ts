import type { Kernel } from "../kernel.ts";
import embeddingForward from "../../../shaders/embedding_forward.wgsl" with { type: "text" };
import embeddingBackward from "../../../shaders/embedding_backward.wgsl" with { type: "text" };
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

// The kernels of text encoders and masked language modelling; each WGSL file documents its
// parameters and grid.

/** Rows of an embedding table by id: one invocation per output value, 256 a group. */
export const embeddingForwardKernel: Kernel = { name: "embedding_forward", code: embeddingForward };

/** The table's gradient, summed per id without atomics: one invocation per (row, 8 columns). */
export const embeddingBackwardKernel: Kernel = {
  name: "embedding_backward",
  code: embeddingBackward,
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
