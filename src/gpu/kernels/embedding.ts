import type { Kernel } from "../kernel.ts";
import l2NormalizeForward from "../../../shaders/l2_normalize_forward.wgsl" with { type: "text" };
import l2NormalizeBackward from "../../../shaders/l2_normalize_backward.wgsl" with {
  type: "text",
};
import l2NormalizeInPlace from "../../../shaders/l2_normalize_in_place.wgsl" with {
  type: "text",
};
import weightNormForward from "../../../shaders/weight_norm_forward.wgsl" with { type: "text" };
import weightNormBackward from "../../../shaders/weight_norm_backward.wgsl" with {
  type: "text",
};
import gatherRows from "../../../shaders/gather_rows.wgsl" with { type: "text" };
import queueWrite from "../../../shaders/queue_write.wgsl" with { type: "text" };
import embeddingSpread from "../../../shaders/embedding_spread.wgsl" with { type: "text" };

/** Rows to unit length, keeping their norms: one invocation per row, 64 a group. */
export const l2NormalizeForwardKernel: Kernel = {
  name: "l2_normalize_forward",
  code: l2NormalizeForward,
};

/** Back through the row normalisation: one invocation per row, 64 a group. */
export const l2NormalizeBackwardKernel: Kernel = {
  name: "l2_normalize_backward",
  code: l2NormalizeBackward,
};

/** Rows to unit length in place: one invocation per row, 64 a group. */
export const l2NormalizeInPlaceKernel: Kernel = {
  name: "l2_normalize_in_place",
  code: l2NormalizeInPlace,
};

/** A weight from its direction and magnitude, keeping the row norms: one invocation per row. */
export const weightNormForwardKernel: Kernel = {
  name: "weight_norm_forward",
  code: weightNormForward,
};

/** Back through the weight norm into magnitude and direction: one invocation per row. */
export const weightNormBackwardKernel: Kernel = {
  name: "weight_norm_backward",
  code: weightNormBackward,
};

/** out[i] = x[index[i]] by rows: one invocation per value, 256 a group. */
export const gatherRowsKernel: Kernel = { name: "gather_rows", code: gatherRows };

/** Rows into a ring buffer at a step-value slot: one invocation per value, 256 a group. */
export const queueWriteKernel: Kernel = { name: "queue_write", code: queueWrite };

/** Mean per-dimension standard deviation of unit rows: a single workgroup. */
export const embeddingSpreadKernel: Kernel = { name: "embedding_spread", code: embeddingSpread };
