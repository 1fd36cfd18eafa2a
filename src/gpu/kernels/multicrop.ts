import type { Kernel } from "../kernel.ts";
import copyRows from "../../../shaders/copy_rows.wgsl" with { type: "text" };
import rotateImages from "../../../shaders/rotate_images.wgsl" with { type: "text" };
import multicropCrossEntropyRows from "../../../shaders/multicrop_cross_entropy_rows.wgsl" with {
  type: "text",
};
import dinoTeacherSoftmax from "../../../shaders/dino_teacher_softmax.wgsl" with {
  type: "text",
};
import dinoCenterUpdate from "../../../shaders/dino_center_update.wgsl" with { type: "text" };
import sinkhornColumns from "../../../shaders/sinkhorn_columns.wgsl" with { type: "text" };
import sinkhornRows from "../../../shaders/sinkhorn_rows.wgsl" with { type: "text" };
import rowSoftmax from "../../../shaders/row_softmax.wgsl" with { type: "text" };

// The kernels of the multi-crop and pretext-task methods (DINO, SwAV, rotation prediction);
// each WGSL file documents its parameters. Those that take a softmax of rows get the row
// statistics of row_softmax.wgsl prepended.

/** Values copied between offsets of two tensors: one invocation per value, 256 a group. */
export const copyRowsKernel: Kernel = { name: "copy_rows", code: copyRows };

/** The four 90° rotations of square images: one invocation per output value, 256 a group. */
export const rotateImagesKernel: Kernel = { name: "rotate_images", code: rotateImages };

/** Cross-entropy of soft targets against every other crop's softmax: a workgroup per row. */
export const multicropCrossEntropyRowsKernel: Kernel = {
  name: "multicrop_cross_entropy_rows",
  code: rowSoftmax + multicropCrossEntropyRows,
};

/** DINO's centred, sharpened teacher softmax: one workgroup per row. */
export const dinoTeacherSoftmaxKernel: Kernel = {
  name: "dino_teacher_softmax",
  code: rowSoftmax + dinoTeacherSoftmax,
};

/** DINO's centre update: one invocation per class, 256 a group. */
export const dinoCenterUpdateKernel: Kernel = {
  name: "dino_center_update",
  code: dinoCenterUpdate,
};

/** Sinkhorn–Knopp, prototype half: one invocation per prototype, 256 a group. */
export const sinkhornColumnsKernel: Kernel = { name: "sinkhorn_columns", code: sinkhornColumns };

/** Sinkhorn–Knopp, sample half: one workgroup per sample. */
export const sinkhornRowsKernel: Kernel = { name: "sinkhorn_rows", code: sinkhornRows };
