import type { Program } from "../gpu/gpu.ts";
import { f32 } from "../gpu/kernel.ts";
import {
  lossMeanKernel,
  maskedMseBackwardKernel,
  maskedMseForwardKernel,
} from "../gpu/kernels/loss.ts";
import type { Tensor } from "../gpu/tensor.ts";
import type { LossOutput } from "./nt_xent.ts";

/** How MAE's loss reads its targets. */
export interface MaskedMseOptions {
  /** Side of the square patches of the images. */
  readonly patchSize: number;
  /** Normalise each target patch by its mean and standard deviation (MAE's norm_pix_loss). */
  readonly normalize: boolean;
  /** Added to the patch's variance before the square root (MAE: 1e-6). */
  readonly eps: number;
}

/**
 * Records MAE's reconstruction loss (He et al. 2021, models_mae.py `forward_loss`), forward
 * and backward together: the mean squared error between the decoder's prediction of each
 * masked patch and that patch's pixels, averaged over the masked patches,
 * Σ_{n,l} mask[n, l] · mean_i (pred[n, 1 + l, i] − target[n, l, i])² / Σ mask.
 *
 * `prediction` is [N, 1 + L, 3·p²], the decoder's output with the class token in row 0 (its
 * gradient is zero); `images` [N, 3, S, S] are the encoder's input, read straight into
 * MAE's patch order (ky, kx, c); `mask` [N, L] is 1 for masked patches and 0 for visible
 * ones, with `maskedCount` ones in all. With `normalize` each target patch is
 * (x − mean) / √(var + eps), var unbiased, as MAE's norm_pix_loss.
 */
export function maskedMse(
  program: Program,
  prediction: Tensor,
  images: Tensor,
  mask: Tensor,
  maskedCount: number,
  options: MaskedMseOptions,
): LossOutput {
  const p = options.patchSize;
  const [n, c, side, width] = images.shape;
  const grid = side / p;
  const perImage = grid * grid;
  if (
    images.shape.length !== 4 || c !== 3 || width !== side || !Number.isInteger(grid) ||
    prediction.shape.join() !== `${n},${perImage + 1},${3 * p * p}` ||
    mask.shape.join() !== `${n},${perImage}`
  ) {
    throw new Error(
      `MAE loss: images [${images.shape}] in ${p}×${p} patches, prediction ` +
        `[${prediction.shape}], mask [${mask.shape}]`,
    );
  }
  if (!Number.isInteger(maskedCount) || maskedCount < 1) {
    throw new Error(`MAE loss needs at least one masked patch, got ${maskedCount}`);
  }
  const patches = n * perImage;
  const params = [
    patches,
    perImage,
    grid,
    p,
    side,
    options.normalize ? 1 : 0,
    f32(options.eps),
    f32(1 / maskedCount),
  ];
  const rowLoss = program.temp([patches], "MAE patch losses");
  program.dispatch(
    maskedMseForwardKernel,
    [images, prediction, mask, rowLoss],
    Math.ceil(patches / 64),
    params,
  );
  const loss = program.temp([1], "MAE loss");
  program.dispatch(lossMeanKernel, [rowLoss, loss], 1, [patches, f32(1)]);
  const gradInput = program.temp(prediction.shape, "MAE prediction gradient");
  program.dispatch(
    maskedMseBackwardKernel,
    [images, prediction, mask, gradInput],
    Math.ceil((n * (perImage + 1)) / 64),
    params,
  );
  return { loss, gradInput };
}
