import type { Kernel } from "../kernel.ts";
import layerNormForward from "../../../shaders/layer_norm_forward.wgsl" with { type: "text" };
import layerNormBackwardInput from "../../../shaders/layer_norm_backward_input.wgsl" with {
  type: "text",
};
import layerNormBackwardWeight from "../../../shaders/layer_norm_backward_weight.wgsl" with {
  type: "text",
};
import linearBackwardWeightReduce from "../../../shaders/linear_backward_weight_reduce.wgsl" with {
  type: "text",
};
import erfc from "../../../shaders/erfc.wgsl" with { type: "text" };
import geluForward from "../../../shaders/gelu_forward.wgsl" with { type: "text" };
import geluBackward from "../../../shaders/gelu_backward.wgsl" with { type: "text" };
import batchedMatmul from "../../../shaders/batched_matmul.wgsl" with { type: "text" };
import batchedMatmulVec4 from "../../../shaders/batched_matmul_vec4.wgsl" with { type: "text" };
import softmaxForward from "../../../shaders/softmax_forward.wgsl" with { type: "text" };
import softmaxBackward from "../../../shaders/softmax_backward.wgsl" with { type: "text" };
import posEmbedForward from "../../../shaders/pos_embed_forward.wgsl" with { type: "text" };
import posEmbedBackward from "../../../shaders/pos_embed_backward.wgsl" with { type: "text" };
import classTokenForward from "../../../shaders/class_token_forward.wgsl" with { type: "text" };
import classTokenBackward from "../../../shaders/class_token_backward.wgsl" with { type: "text" };
import tokenGather from "../../../shaders/token_gather.wgsl" with { type: "text" };
import tokenScatter from "../../../shaders/token_scatter.wgsl" with { type: "text" };
import patchifyForward from "../../../shaders/patchify_forward.wgsl" with { type: "text" };
import patchifyBackward from "../../../shaders/patchify_backward.wgsl" with { type: "text" };
import maskTokensForward from "../../../shaders/mask_tokens_forward.wgsl" with { type: "text" };
import maskTokensBackward from "../../../shaders/mask_tokens_backward.wgsl" with { type: "text" };

// The kernels of a vision transformer besides its linear layers; each WGSL file documents
// its parameters and grid. One family serves every adapter: at ViT sizes the linear layers
// do most of a step's work, attention's products a few percent.

/** LayerNorm over the last dimension, saving (mean, rstd) per row. */
export const layerNormForwardKernel: Kernel = {
  name: "layer_norm_forward",
  code: layerNormForward,
};
export const layerNormBackwardInputKernel: Kernel = {
  name: "layer_norm_backward_input",
  code: layerNormBackwardInput,
};
/** γ and β gradients, accumulated directly or as per-chunk partial sums. */
export const layerNormBackwardWeightKernel: Kernel = {
  name: "layer_norm_backward_weight",
  code: layerNormBackwardWeight,
};
/** Adds the per-chunk partial sums into the γ and β gradients (the linear layer's reduction). */
export const layerNormBackwardWeightReduceKernel: Kernel = {
  name: "layer_norm_backward_weight_reduce",
  code: linearBackwardWeightReduce,
};

/** GELU, erf form, elementwise; dispatch ceil(n / 256) workgroups. */
export const geluForwardKernel: Kernel = { name: "gelu_forward", code: erfc + geluForward };
export const geluBackwardKernel: Kernel = { name: "gelu_backward", code: erfc + geluBackward };

/** The batched products of attention, forward and backward. */
export type AttentionProduct = "scores" | "values" | "scores_backward" | "values_backward";

/**
 * How a batched product reads its operands: `strided`, any strides, scalar loads; `nt`, `nn`,
 * `tn`, vec4 loads along the contiguous dimension of A (k, k, i) and of B (k, j, j).
 */
export type MatmulForm = "strided" | "nt" | "nn" | "tn";

/**
 * A batched matrix product kernel, named by its use in attention so that profiles tell them
 * apart: scores q·kᵀ, values P·v, and backward gq = gS·k, gk = gSᵀ·q (scores_backward),
 * gP = gO·vᵀ, gv = Pᵀ·gO (values_backward).
 */
export function attentionProductKernel(use: AttentionProduct, form: MatmulForm): Kernel {
  return form === "strided"
    ? { name: `attention_${use}`, code: batchedMatmul }
    : { name: `attention_${use}`, code: batchedMatmulVec4, entryPoint: form };
}

/** Row softmax of scale·x, and its input gradient from the output. */
export const softmaxForwardKernel: Kernel = { name: "softmax_forward", code: softmaxForward };
export const softmaxBackwardKernel: Kernel = { name: "softmax_backward", code: softmaxBackward };

/** Broadcast add of position embeddings, and its gradient summed over the batch. */
export const posEmbedForwardKernel: Kernel = { name: "pos_embed_forward", code: posEmbedForward };
export const posEmbedBackwardKernel: Kernel = {
  name: "pos_embed_backward",
  code: posEmbedBackward,
};

/** Prepends the class token (plus its position) and takes it off again in backward. */
export const classTokenForwardKernel: Kernel = {
  name: "class_token_forward",
  code: classTokenForward,
};
export const classTokenBackwardKernel: Kernel = {
  name: "class_token_backward",
  code: classTokenBackward,
};
/** {@link classTokenBackwardKernel} for fixed position embeddings: no position gradient. */
export const classTokenBackwardFixedKernel: Kernel = {
  name: "class_token_backward",
  code: classTokenBackward,
  entryPoint: "fixed_positions",
};

/** Tokens by index per sample, and its gradient (a scatter into zeros). */
export const tokenGatherKernel: Kernel = { name: "token_gather", code: tokenGather };
export const tokenScatterKernel: Kernel = { name: "token_scatter", code: tokenScatter };

/** Images into flattened p×p patches, and the patches' gradient back into the images. */
export const patchifyForwardKernel: Kernel = { name: "patchify_forward", code: patchifyForward };
export const patchifyBackwardKernel: Kernel = {
  name: "patchify_backward",
  code: patchifyBackward,
};

/** MAE's decoder input: the encoder's tokens at their places among mask tokens, and the mask token's gradient. */
export const maskTokensForwardKernel: Kernel = {
  name: "mask_tokens_forward",
  code: maskTokensForward,
};
export const maskTokensBackwardKernel: Kernel = {
  name: "mask_tokens_backward",
  code: maskTokensBackward,
};
