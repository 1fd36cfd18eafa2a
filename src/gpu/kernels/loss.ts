import type { Kernel } from "../kernel.ts";
import ntXentNormalize from "../../../shaders/nt_xent_normalize.wgsl" with { type: "text" };
import ntXentSimilarity from "../../../shaders/nt_xent_similarity.wgsl" with { type: "text" };
import ntXentLogsumexp from "../../../shaders/nt_xent_logsumexp.wgsl" with { type: "text" };
import ntXentSimilarityBackward from "../../../shaders/nt_xent_similarity_backward.wgsl" with {
  type: "text",
};
import ntXentBackward from "../../../shaders/nt_xent_backward.wgsl" with { type: "text" };
import ntXentNormalizeBackward from "../../../shaders/nt_xent_normalize_backward.wgsl" with {
  type: "text",
};
import crossEntropyRows from "../../../shaders/cross_entropy_rows.wgsl" with { type: "text" };
import lossMean from "../../../shaders/loss_mean.wgsl" with { type: "text" };
import infoNceRows from "../../../shaders/info_nce_rows.wgsl" with { type: "text" };
import cosineLossRows from "../../../shaders/cosine_loss_rows.wgsl" with { type: "text" };
import lossAccumulate from "../../../shaders/loss_accumulate.wgsl" with { type: "text" };
import patchTarget from "../../../shaders/patch_target.wgsl" with { type: "text" };
import maskedMseForward from "../../../shaders/masked_mse_forward.wgsl" with { type: "text" };
import maskedMseBackward from "../../../shaders/masked_mse_backward.wgsl" with { type: "text" };

/**
 * Normalises the rows of z [M, D] into ẑ [Mp, Dp] (zero-padded to multiples of 8) and keeps
 * their norms; one invocation per padded row, 64 a group.
 */
export const ntXentNormalizeKernel: Kernel = { name: "nt_xent_normalize", code: ntXentNormalize };

/** S = ẑẑᵀ/τ [Mp, Mp], 8×8 outputs per invocation: dispatch ceil((Mp/8)² / 64) workgroups. */
export const ntXentSimilarityKernel: Kernel = {
  name: "nt_xent_similarity",
  code: ntXentSimilarity,
};

/** Per-row masked logsumexp and loss of S: one workgroup per row. */
export const ntXentLogsumexpKernel: Kernel = { name: "nt_xent_logsumexp", code: ntXentLogsumexp };

/** Overwrites rows [0, M) of S with (G + Gᵀ)/τ: one invocation per element, 256 a group. */
export const ntXentSimilarityBackwardKernel: Kernel = {
  name: "nt_xent_similarity_backward",
  code: ntXentSimilarityBackward,
};

/** gẑ = Hẑ [Mp, Dp], 8×8 outputs per invocation: dispatch ceil((Mp/8)·(Dp/8) / 64) workgroups. */
export const ntXentBackwardKernel: Kernel = { name: "nt_xent_backward", code: ntXentBackward };

/** Back through the row normalisation into gz [M, D]; one invocation per row, 64 a group. */
export const ntXentNormalizeBackwardKernel: Kernel = {
  name: "nt_xent_normalize_backward",
  code: ntXentNormalizeBackward,
};

/** Per-row softmax cross-entropy loss and gradient: one workgroup per row. */
export const crossEntropyRowsKernel: Kernel = {
  name: "cross_entropy_rows",
  code: crossEntropyRows,
};

/** The scaled sum of per-row losses into one value: a single workgroup. */
export const lossMeanKernel: Kernel = { name: "loss_mean", code: lossMean };

/** MoCo's InfoNCE against a queue, loss and gradients of one query per workgroup. */
export const infoNceRowsKernel: Kernel = { name: "info_nce_rows", code: infoNceRows };

/** BYOL's 2 − 2·cos loss and gradient of unit rows: one invocation per row, 64 a group. */
export const cosineLossRowsKernel: Kernel = { name: "cosine_loss_rows", code: cosineLossRows };
/** Adds a one-value loss to a running sum: a single invocation. */
export const lossAccumulateKernel: Kernel = { name: "loss_accumulate", code: lossAccumulate };

/**
 * MAE's loss on masked patches against per-patch normalised pixels, one invocation per patch
 * (64 a group); its gradient, one invocation per row of the prediction. Both start with
 * patch_target.wgsl, their shared declarations and target.
 */
export const maskedMseForwardKernel: Kernel = {
  name: "masked_mse_forward",
  code: patchTarget + maskedMseForward,
};
export const maskedMseBackwardKernel: Kernel = {
  name: "masked_mse_backward",
  code: patchTarget + maskedMseBackward,
};
