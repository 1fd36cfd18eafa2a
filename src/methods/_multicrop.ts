// What DINO and SwAV share: the backbone's passes over the crops of a multi-crop batch, and
// the refusal of local crops on a backbone of one image size.
import type { Program } from "../gpu/gpu.ts";
import type { Tensor } from "../gpu/tensor.ts";
import type { Backbone, BackboneConfig } from "../nn/backbone.ts";
import { concatRows, sliceRows } from "../nn/concat.ts";
import type { Forward } from "../nn/module.ts";
import { SelfsupError } from "../errors.ts";
import type { MethodOption } from "./method.ts";

/** The options of the local crops, which DINO and SwAV both take. */
export const localCropOptions: readonly MethodOption[] = [
  {
    key: "localCrops",
    flag: "--local-crops",
    kind: "nonNegativeInteger",
    description: "local crops of each image besides the two global ones",
  },
  {
    key: "localSize",
    flag: "--local-size",
    kind: "positiveInteger",
    description: "side of the local crops (default: half the image's)",
    optional: true,
  },
];

/** The backbone's passes over a multi-crop batch. */
export interface MulticropPasses {
  /** Both global crops of every image, [2N, 3, H, W] (the first crop's N rows first). */
  readonly globals: Tensor;
  /** Features of every crop in crop order, [V·N, F]: crop v of image r at row v·N + r. */
  readonly features: Tensor;
  /** Images N and crops per image V. */
  readonly images: number;
  readonly crops: number;
  /** Records the backbone's backward passes from the features' gradient, in reverse order. */
  backward(program: Program, gradFeatures: Tensor): void;
}

/**
 * Records the backbone's forward passes over the view groups of a multi-crop batch: the two
 * global crops (groups 0 and 1, one view each) stacked into one pass, so that they share one
 * batch for batch norm, then the local crops (group 2, if any) in a second — as DINO's
 * MultiCropWrapper and SwAV's multi-resolution forward run consecutive crops of one size
 * together. Global average pooling makes the ResNet indifferent to the crop size. The
 * features of all crops are stacked for the head.
 */
export function multicropPasses(
  program: Program,
  backbone: Backbone,
  views: readonly Tensor[],
): MulticropPasses {
  const images = views[0].shape[0];
  if (views.length < 2 || views.length > 3 || views[1].shape[0] !== images) {
    throw new Error(
      `A multi-crop step takes two global crops and a group of local ones, got ` +
        `${views.map((v) => `[${v.shape}]`).join(", ")}`,
    );
  }
  const globals = concatRows(program, [views[0], views[1]]);
  const inputs = views.length === 3 ? [globals, views[2]] : [globals];
  const passes: Forward[] = inputs.map((x) =>
    backbone.forward(program, x, { train: true, inputGrad: false })
  );
  const features = concatRows(program, passes.map((p) => p.output));
  return {
    globals,
    features,
    images,
    crops: features.shape[0] / images,
    backward(p, gradFeatures) {
      let end = gradFeatures.shape[0];
      for (let i = passes.length - 1; i >= 0; i--) {
        const rows = passes[i].output.shape[0];
        end -= rows;
        passes[i].backward(p, sliceRows(p, gradFeatures, end, rows));
      }
    },
  };
}

/**
 * Refuses local crops on a backbone built for one image size (the ViT's position embeddings
 * are for its `imageSize`): such a run must train on the global crops alone.
 */
export function assertLocalCropsFit(
  backbone: BackboneConfig,
  localCrops: number,
  title: string,
): void {
  if (backbone.name === "vit" && localCrops > 0) {
    throw new SelfsupError(
      `${title}'s local crops need a backbone that takes any image size (the ResNet); the ` +
        `ViT takes ${backbone.imageSize}×${backbone.imageSize} only: use --local-crops 0`,
    );
  }
}
