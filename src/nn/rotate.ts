import type { Program } from "../gpu/gpu.ts";
import { rotateImagesKernel } from "../gpu/kernels/multicrop.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { SelfsupError } from "../errors.ts";

/**
 * Records the four rotations of square images x [N, C, S, S] (rotation prediction, Gidaris
 * et al. 2018): [4N, C, S, S], row r·N + n being image n turned by r·90° counter-clockwise,
 * as `torch.rot90(x, r, dims=(2, 3))`. No gradient: the images get none.
 */
export function rotateImages(program: Program, x: Tensor): Tensor {
  if (x.shape.length !== 4) {
    throw new Error(`Rotation expects images [N, C, H, W], got [${x.shape}]`);
  }
  const [n, c, h, w] = x.shape;
  if (h !== w) {
    throw new SelfsupError(`Rotation prediction needs square views, got ${h}×${w}`);
  }
  const out = program.temp([4 * n, c, h, w], "rotated images");
  program.dispatch(rotateImagesKernel, [x, out], Math.ceil(out.size / 256), [n, c, h]);
  return out;
}
