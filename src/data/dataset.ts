/**
 * The one interface every image source implements, and a packed implementation whose bytes
 * live in one buffer (shared with augmentation workers without copying).
 *
 * @module
 */

import { SelfsupError } from "../errors.ts";

/** Which part of a dataset: the training or the test images. */
export type Split = "train" | "test";

/** A labelled set of equally sized RGB images. */
export interface ImageDataset {
  /** Number of images. */
  readonly length: number;
  /** Height of every image in pixels. */
  readonly height: number;
  /** Width of every image in pixels. */
  readonly width: number;
  /** Class names; labels index into this list. */
  readonly classNames: readonly string[];
  /** Item i as interleaved RGB bytes, height*width*3, row-major (HWC). May return a view; callers must not mutate. */
  image(i: number): Uint8Array;
  /** Class index of item i. */
  label(i: number): number;
}

/**
 * A dataset held as one contiguous HWC byte array plus a label array. The loaders here
 * allocate `pixels` in a SharedArrayBuffer so workers can read it without a copy.
 *
 * @example
 * ```ts
 * import { PackedImageDataset } from "./dataset.ts";
 * const ds = new PackedImageDataset(new Uint8Array(2 * 4 * 4 * 3), new Int32Array([0, 1]), 4, 4, ["a", "b"]);
 * ds.image(1).length; // 48
 * ```
 */
export class PackedImageDataset implements ImageDataset {
  /** All images back to back, each height*width*3 bytes (HWC). */
  readonly pixels: Uint8Array;
  /** Label of each image. */
  readonly labels: Int32Array;
  readonly height: number;
  readonly width: number;
  readonly classNames: readonly string[];
  readonly #imageSize: number;

  /** Wraps existing arrays; `pixels` must hold exactly labels.length images. */
  constructor(
    pixels: Uint8Array,
    labels: Int32Array,
    height: number,
    width: number,
    classNames: readonly string[],
  ) {
    this.#imageSize = height * width * 3;
    if (pixels.length !== labels.length * this.#imageSize) {
      throw new RangeError(
        `pixels has ${pixels.length} bytes, expected ${labels.length} × ${this.#imageSize}`,
      );
    }
    this.pixels = pixels;
    this.labels = labels;
    this.height = height;
    this.width = width;
    this.classNames = classNames;
  }

  /** Number of images. */
  get length(): number {
    return this.labels.length;
  }

  /** A view of image i's bytes. */
  image(i: number): Uint8Array {
    return this.pixels.subarray(i * this.#imageSize, (i + 1) * this.#imageSize);
  }

  /** Label of image i. */
  label(i: number): number {
    return this.labels[i];
  }
}

/**
 * Copies any dataset into one SharedArrayBuffer-backed {@linkcode PackedImageDataset}; a packed
 * dataset that already lives in shared memory is returned as it is.
 */
export function packDataset(dataset: ImageDataset): PackedImageDataset {
  if (
    dataset instanceof PackedImageDataset && dataset.pixels.buffer instanceof SharedArrayBuffer
  ) {
    return dataset;
  }
  const size = dataset.height * dataset.width * 3;
  const pixels = new Uint8Array(new SharedArrayBuffer(dataset.length * size));
  const labels = new Int32Array(dataset.length);
  for (let i = 0; i < dataset.length; i++) {
    pixels.set(dataset.image(i), i * size);
    labels[i] = dataset.label(i);
  }
  return new PackedImageDataset(pixels, labels, dataset.height, dataset.width, dataset.classNames);
}

/**
 * The items of `dataset` at `indices`, in that order. A packed dataset stays packed (copied
 * into shared memory) so it can still go to workers cheaply.
 */
export function subset(dataset: ImageDataset, indices: ArrayLike<number>): PackedImageDataset {
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k];
    if (!Number.isInteger(i) || i < 0 || i >= dataset.length) {
      throw new SelfsupError(
        `Cannot take a subset: index ${i} is outside a dataset of ${dataset.length} images`,
      );
    }
  }
  const size = dataset.height * dataset.width * 3;
  const pixels = new Uint8Array(new SharedArrayBuffer(indices.length * size));
  const labels = new Int32Array(indices.length);
  for (let k = 0; k < indices.length; k++) {
    pixels.set(dataset.image(indices[k]), k * size);
    labels[k] = dataset.label(indices[k]);
  }
  return new PackedImageDataset(pixels, labels, dataset.height, dataset.width, dataset.classNames);
}

/**
 * The first `n` items (all of them when n ≥ length). On a packed dataset this is a zero-copy
 * view of the same memory.
 *
 * @example
 * ```ts
 * import { limit, PackedImageDataset } from "./dataset.ts";
 * const ds = new PackedImageDataset(new Uint8Array(3 * 12), new Int32Array(3), 2, 2, ["x"]);
 * limit(ds, 2).length; // 2
 * ```
 */
export function limit(dataset: ImageDataset, n: number): ImageDataset {
  if (!Number.isInteger(n) || n < 0) {
    throw new SelfsupError(`Cannot limit a dataset to ${n} images: expected a whole number ≥ 0`);
  }
  if (n >= dataset.length) return dataset;
  if (dataset instanceof PackedImageDataset) {
    const size = dataset.height * dataset.width * 3;
    return new PackedImageDataset(
      dataset.pixels.subarray(0, n * size),
      dataset.labels.subarray(0, n),
      dataset.height,
      dataset.width,
      dataset.classNames,
    );
  }
  return subset(dataset, Array.from({ length: n }, (_, i) => i));
}
