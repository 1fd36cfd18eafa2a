/**
 * The views of a training batch: groups of views of every image, each group with its own size
 * and augmentation recipe (two views of one recipe for SimCLR; global and local crops for
 * multi-crop methods), how a batch lays them out, and which random stream each view draws from.
 *
 * @module
 */

import { SelfsupError } from "../errors.ts";
import { type AugmentConfig, Augmenter, CIFAR_MEAN, CIFAR_STD } from "./augment.ts";
import { Random } from "./random.ts";

/** `count` views of every image, all made with `augment` (whose height/width set the size). */
export interface ViewGroup {
  readonly count: number;
  readonly augment: AugmentConfig;
}

/** Views per image over all groups (V). */
export function viewsPerImage(groups: readonly ViewGroup[]): number {
  return groups.reduce((sum, g) => sum + g.count, 0);
}

/**
 * Checks groups against a dataset of `images` images: at least one group, whole counts and
 * sizes, and few enough views that every view's stream number fits in 32 bits.
 */
export function assertViewGroups(groups: readonly ViewGroup[], images: number): void {
  if (groups.length === 0) throw new SelfsupError("Cannot make views: no view groups given");
  groups.forEach(({ count, augment }, g) => {
    if (!Number.isInteger(count) || count < 1) {
      throw new SelfsupError(
        `Cannot make views: group ${g} has count ${count}, expected a whole number ≥ 1`,
      );
    }
    for (const side of [augment.height, augment.width]) {
      if (!Number.isInteger(side) || side < 1) {
        throw new SelfsupError(
          `Cannot make views: group ${g} is ${augment.height}×${augment.width}, expected whole ` +
            `numbers ≥ 1`,
        );
      }
    }
  });
  const views = viewsPerImage(groups);
  // Stream 1 + V·i + j of the last view of the last image must stay below 2^32.
  if (views * images >= 2 ** 32) {
    throw new SelfsupError(
      `Cannot make ${views} views of each of ${images} images: at most ${
        Math.floor((2 ** 32 - 1) / images)
      } views per image`,
    );
  }
}

/**
 * Makes the views of a batch in one thread: one {@linkcode Augmenter} per group, built once.
 *
 * A batch of B images is one buffer holding the groups one after another; group g is
 * (count_g · B, 3, h_g, w_g), its row v·B + k being view v of group g for image k. Numbering
 * the views of an image across all groups j = 0..V−1 (groups in order, views in order within
 * a group), view j of image i in epoch e draws from the stream (seed, e, 1 + V·i + j); stream
 * 0 of an epoch is its shuffle. So each view depends only on (seed, epoch, image, j), whatever
 * thread makes it, and one group of two views draws from 1 + 2i + v as the two-view loader
 * before it did.
 *
 * @example
 * ```ts
 * import { augmentPreset } from "./augment.ts";
 * import { ViewWriter } from "./views.ts";
 * const writer = new ViewWriter([{ count: 2, augment: augmentPreset("simclr-seed", 32) }], 32, 32);
 * const indices = Int32Array.of(4, 1);
 * const [views] = writer.split(new ArrayBuffer(4 * writer.batchLength(2)), 2);
 * writer.write(() => new Uint8Array(32 * 32 * 3), 0, 0, indices, [views]); // (4, 3, 32, 32)
 * ```
 */
export class ViewWriter {
  /** Views per image over all groups (V). */
  readonly viewsPerImage: number;
  readonly #counts: readonly number[];
  readonly #augmenters: readonly Augmenter[];
  readonly #rng = new Random(0);

  /** Builds the groups' augmenters for input images of the given size. */
  constructor(groups: readonly ViewGroup[], inputHeight: number, inputWidth: number) {
    this.#counts = groups.map((g) => g.count);
    this.#augmenters = groups.map((g) => new Augmenter(g.augment, inputHeight, inputWidth));
    this.viewsPerImage = viewsPerImage(groups);
  }

  /** Floats in a batch of `images` images, all groups together. */
  batchLength(images: number): number {
    return this.#counts.reduce((sum, count, g) => sum + count * images * this.#viewSize(g), 0);
  }

  /**
   * Each group's array over a batch buffer of `images` images (at least
   * {@linkcode ViewWriter.batchLength} floats), in order and back to back.
   */
  split(buffer: ArrayBuffer, images: number): Float32Array<ArrayBuffer>[] {
    let offset = 0;
    return this.#counts.map((count, g) => {
      const length = count * images * this.#viewSize(g);
      const group = new Float32Array(buffer, 4 * offset, length);
      offset += length;
      return group;
    });
  }

  /**
   * Writes every view of each image in `indices` (B images, `image(i)` giving image i's bytes)
   * into `out`, one array per group as {@linkcode ViewWriter.split} makes them.
   */
  write(
    image: (i: number) => Uint8Array,
    seed: number,
    epoch: number,
    indices: Int32Array,
    out: readonly Float32Array[],
  ): void {
    const rng = this.#rng;
    const views = this.viewsPerImage;
    const b = indices.length;
    for (let k = 0; k < b; k++) {
      const i = indices[k];
      const pixels = image(i);
      let j = 0;
      for (let g = 0; g < this.#augmenters.length; g++) {
        const augmenter = this.#augmenters[g];
        const size = augmenter.viewSize;
        for (let v = 0; v < this.#counts[g]; v++, j++) {
          augmenter.apply(
            pixels,
            rng.reseed(seed, epoch, 1 + views * i + j),
            out[g],
            (v * b + k) * size,
          );
        }
      }
    }
  }

  #viewSize(g: number): number {
    return this.#augmenters[g].viewSize;
  }
}

/** Options of {@linkcode multiCropGroups}. */
export interface MultiCropOptions {
  /** Height of the images and of the global crops. */
  height: number;
  /** Width of the images and of the global crops (default: `height`). */
  width?: number;
  /** Local crops per image (default 6, SwAV's 2×224 + 6×96; DINO's default is 8); 0 for none. */
  localCount?: number;
  /** Height of the local crops (default: half the image's, rounded). */
  localHeight?: number;
  /** Width of the local crops (default: half the image's, rounded). */
  localWidth?: number;
  /** RandomResizedCrop's area range of the global crops (default [0.4, 1]). */
  globalScale?: readonly [number, number];
  /** RandomResizedCrop's area range of the local crops (default [0.05, 0.4]). */
  localScale?: readonly [number, number];
  /** Normalisation (default: CIFAR-10's statistics). */
  mean?: readonly [number, number, number];
  std?: readonly [number, number, number];
}

/**
 * DINO's multi-crop recipe (facebookresearch/dino, `main_dino.py`, `DataAugmentationDINO`, and
 * its defaults `--global_crops_scale 0.4 1 --local_crops_scale 0.05 0.4`): every crop is a
 * RandomResizedCrop (ratio 3/4–4/3), horizontal flip 0.5, ColorJitter(0.4, 0.4, 0.2, 0.1) with
 * p = 0.8 and RandomGrayscale(0.2); then
 * - group 0, the first global crop, at the image's size: Gaussian blur always;
 * - group 1, the second global crop, at the image's size: blur with p = 0.1, solarize with
 *   p = 0.2 (PIL's threshold, 128/255);
 * - group 2, `localCount` local crops at the local size: blur with p = 0.5.
 *
 * The blur's sigma is uniform in [0.1, 2] as DINO's; its kernel spans about a tenth of the
 * crop's side (SimCLR's rule), odd and at least 3 taps: 3 at 32 and 16 pixels, 23 at 224.
 * (solo-learn's CIFAR recipes turn blur off; set `blur: null` on the groups to do so.) The two
 * global groups are separate because their recipes differ; a loader lays them back to back, so
 * together they are one (2B, 3, H, W) array for a single forward pass.
 *
 * @example
 * ```ts
 * import { multiCropGroups } from "./views.ts";
 * const groups = multiCropGroups({ height: 32 }); // 1 + 1 crops of 32×32, 6 of 16×16
 * ```
 */
export function multiCropGroups(options: MultiCropOptions): ViewGroup[] {
  const { height, width = height, localCount = 6 } = options;
  const localHeight = options.localHeight ?? Math.max(1, Math.round(height / 2));
  const localWidth = options.localWidth ?? Math.max(1, Math.round(width / 2));
  const crop = (scale: readonly [number, number], h: number, w: number, blur: number) => ({
    height: h,
    width: w,
    crop: { scale, ratio: [3 / 4, 4 / 3] as const },
    flip: 0.5,
    jitter: { brightness: 0.4, contrast: 0.4, saturation: 0.2, hue: 0.1, p: 0.8 },
    grayscale: 0.2,
    blur: { kernelSize: blurKernelSize(Math.min(h, w)), sigma: [0.1, 2] as const, p: blur },
    solarize: null,
    mean: options.mean ?? CIFAR_MEAN,
    std: options.std ?? CIFAR_STD,
  });
  const global = options.globalScale ?? [0.4, 1];
  const groups: ViewGroup[] = [
    { count: 1, augment: crop(global, height, width, 1) },
    {
      count: 1,
      augment: { ...crop(global, height, width, 0.1), solarize: { threshold: 128 / 255, p: 0.2 } },
    },
  ];
  // A bad count is left for the loader's checks to report, not silently dropped.
  if (localCount !== 0) {
    const local = options.localScale ?? [0.05, 0.4];
    groups.push({ count: localCount, augment: crop(local, localHeight, localWidth, 0.5) });
  }
  return groups;
}

/** An odd kernel of about a tenth of `side`, at least 3 taps: 3 at 32, 23 at 224. */
function blurKernelSize(side: number): number {
  return Math.max(3, 2 * Math.floor(side / 20) + 1);
}
