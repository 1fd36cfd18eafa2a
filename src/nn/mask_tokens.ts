// MAE's decoder input: the tokens the encoder saw put back at their places, mask tokens at the
// places of the masked patches.
import type { Program } from "../gpu/gpu.ts";
import { maskTokensBackwardKernel, maskTokensForwardKernel } from "../gpu/kernels/transformer.ts";
import type { Tensor } from "../gpu/tensor.ts";
import type { Forward, Parameter } from "./module.ts";
import { gatherTokens } from "./tokens.ts";

/** The value of a `source` index that stands for the mask token. */
export const maskTokenSource = 0xffffffff;

/** Where each token goes, as u32 index tensors a method writes before each step. */
export interface MaskTokenIndex {
  /**
   * [N, T]: for each place t of the output, the row of the input it copies, or
   * {@link maskTokenSource} for the mask token.
   */
  readonly source: Tensor;
  /** [N, K]: the place in the output of each row of the input (the inverse of `source`). */
  readonly place: Tensor;
}

/**
 * Records y [N, T, D] from tokens x [N, K, D]: y[n, t] = x[n, source[n, t]], or the mask
 * token [1, 1, D] where source is {@link maskTokenSource} — MAE's `cat` with the mask tokens
 * and the unshuffle by `ids_restore`, the class token kept in front, in one pass. Backward
 * adds the batch sum of the mask token's places into its gradient and returns x's gradient
 * (the rows of y's gradient at x's places), when the forward was asked for one.
 */
export function insertMaskTokens(
  program: Program,
  x: Tensor,
  maskToken: Parameter,
  index: MaskTokenIndex,
  inputGrad: boolean,
): Forward {
  if (x.shape.length !== 3) throw new Error(`Mask tokens need tokens [N, K, D], got [${x.shape}]`);
  const [n, k, d] = x.shape;
  const [sn, t] = index.source.shape;
  if (
    sn !== n || index.source.shape.length !== 2 || index.place.shape.join() !== `${n},${k}` ||
    maskToken.value.size !== d
  ) {
    throw new Error(
      `Mask tokens: tokens [${x.shape}], mask token [${maskToken.shape}], source ` +
        `[${index.source.shape}], places [${index.place.shape}]`,
    );
  }
  const y = program.temp([n, t, d], "tokens with mask tokens");
  program.dispatch(
    maskTokensForwardKernel,
    [x, index.source, maskToken.value, y],
    Math.ceil(y.size / 256),
    [y.size, t, k, d],
  );
  return {
    output: y,
    backward: (p, gradY) => {
      p.dispatch(maskTokensBackwardKernel, [gradY, index.source, maskToken.grad], d, [n * t, d]);
      return inputGrad ? gatherTokens(p, gradY, index.place) : undefined;
    },
  };
}
