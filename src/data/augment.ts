/**
 * Image augmentations with torchvision's semantics, written as plain loops over byte and float
 * buffers: imagescript's colour operations are HSL-based (not torchvision's) and far slower.
 *
 * Images enter as interleaved RGB (or RGBA) bytes and leave as one normalised planar float
 * view (C×H×W), the layout the GPU consumes. Colour operations work in place on a planar
 * float image with values in [0, 1], clamping after each one as torchvision does on float
 * tensors.
 *
 * @module
 */

import type { Random } from "./random.ts";

/** Per-channel mean of CIFAR-10's training images (RGB, in [0, 1]). */
export const CIFAR_MEAN: readonly [number, number, number] = [0.4914, 0.4822, 0.4465];
/** Per-channel standard deviation of CIFAR-10's training images (RGB, in [0, 1]). */
export const CIFAR_STD: readonly [number, number, number] = [0.2470, 0.2435, 0.2616];

/** Luma weights of ITU-R 601, as PIL's `convert("L")` and torchvision's grayscale use them. */
const LUMA_R = 0.299;
const LUMA_G = 0.587;
const LUMA_B = 0.114;

/** `RandomResizedCrop`'s parameters: area fraction and aspect-ratio (w/h) ranges. */
export interface CropConfig {
  readonly scale: readonly [number, number];
  readonly ratio: readonly [number, number];
}

/**
 * `RandomApply([ColorJitter(brightness, contrast, saturation, hue)], p)`. Each strength x
 * draws a factor from [max(0, 1 - x), 1 + x] (hue: a shift in [-x, x] turns); 0 disables it.
 */
export interface JitterConfig {
  readonly brightness: number;
  readonly contrast: number;
  readonly saturation: number;
  readonly hue: number;
  readonly p: number;
}

/** `RandomApply([GaussianBlur(kernelSize, sigma)], p)`: sigma is drawn uniformly from the range. */
export interface BlurConfig {
  readonly kernelSize: number;
  readonly sigma: readonly [number, number];
  readonly p: number;
}

/** `RandomSolarize(threshold, p)` with the threshold on the [0, 1] scale. */
export interface SolarizeConfig {
  readonly threshold: number;
  readonly p: number;
}

/**
 * A view recipe, applied in torchvision's usual order: crop and resize, horizontal flip,
 * colour jitter, grayscale, blur, solarize, normalise. It is plain data, so it can be sent to
 * workers.
 */
export interface AugmentConfig {
  /** Output height in pixels. */
  readonly height: number;
  /** Output width in pixels. */
  readonly width: number;
  /** RandomResizedCrop, or null to resize the whole image (a copy when the sizes match). */
  readonly crop: CropConfig | null;
  /** Probability of a horizontal flip. */
  readonly flip: number;
  readonly jitter: JitterConfig | null;
  /** Probability of converting to grayscale (kept as three equal channels). */
  readonly grayscale: number;
  readonly blur: BlurConfig | null;
  readonly solarize: SolarizeConfig | null;
  readonly mean: readonly [number, number, number];
  readonly std: readonly [number, number, number];
}

/** Names of the built-in recipes of training views. */
export type TrainingRecipe =
  | "simclr-seed"
  | "seed"
  | "solo-symmetric"
  | "solo-symmetric-weak"
  | "solo-asymmetric";

/** Every name {@link TrainingRecipe} takes, for flags and checks. */
export const trainingRecipes: readonly TrainingRecipe[] = [
  "simclr-seed",
  "seed",
  "solo-symmetric",
  "solo-symmetric-weak",
  "solo-asymmetric",
];

/** Names of the built-in recipes accepted by {@linkcode augmentPreset}. */
export type AugmentPreset = TrainingRecipe | "eval";

/**
 * A built-in recipe at the given output size:
 * - `simclr-seed`: RandomResizedCrop(size, scale (0.08, 1), ratio (3/4, 4/3)), flip 0.5,
 *   RandomApply(ColorJitter(0.8, 0.8, 0.8, 0.2), p = 0.8), RandomGrayscale(0.2), Normalize
 *   with the CIFAR-10 statistics: SimCLR's CIFAR recipe (Chen et al. 2020, jitter with
 *   p = 0.8), which the `default` preset trains with.
 * - `seed`: the seed project's own transform, RandomResizedCrop(size) (torchvision's default
 *   scale and ratio), RandomHorizontalFlip(), ColorJitter(0.8, 0.8, 0.8, 0.2) on every view
 *   (not wrapped in RandomApply), RandomGrayscale(0.2), Normalize((0.5, 0.5, 0.5),
 *   (0.5, 0.5, 0.5)).
 * - `solo-symmetric`, `solo-symmetric-weak`, `solo-asymmetric`: solo-learn's CIFAR
 *   augmentations (scripts/pretrain/cifar/augmentations/*.yaml), for the `cifar` presets:
 *   RandomResizedCrop (0.08, 1), flip 0.5, jitter with p 0.8 of (0.8, 0.8, 0.8, 0.2), (0.4,
 *   0.4, 0.4, 0.1) and (0.4, 0.4, 0.2, 0.1), grayscale 0.2, and Gaussian blur with p 0.5 in
 *   the two symmetric ones (σ in [0.1, 2] as solo-learn draws PIL's radius; here a 9-tap
 *   kernel, which covers ±2σ at the largest σ). The asymmetric recipe's solarisation of the
 *   second view is BYOL's to add (it owns the views).
 * - `eval`: no augmentation; resize only if the image is not already that size, then normalise.
 *
 * @example
 * ```ts
 * import { augmentPreset } from "./augment.ts";
 * const recipe = augmentPreset("simclr-seed", 32);
 * ```
 */
export function augmentPreset(name: AugmentPreset, height = 32, width = height): AugmentConfig {
  const base = {
    height,
    width,
    crop: null,
    flip: 0,
    jitter: null,
    grayscale: 0,
    blur: null,
    solarize: null,
    mean: CIFAR_MEAN,
    std: CIFAR_STD,
  };
  const jitter: JitterConfig = {
    brightness: 0.8,
    contrast: 0.8,
    saturation: 0.8,
    hue: 0.2,
    p: 0.8,
  };
  const simclr: AugmentConfig = {
    ...base,
    crop: { scale: [0.08, 1], ratio: [3 / 4, 4 / 3] },
    flip: 0.5,
    jitter,
    grayscale: 0.2,
  };
  switch (name) {
    case "simclr-seed":
      return simclr;
    case "seed":
      return {
        ...simclr,
        jitter: { ...jitter, p: 1 },
        mean: [0.5, 0.5, 0.5],
        std: [0.5, 0.5, 0.5],
      };
    case "solo-symmetric":
      return { ...simclr, blur: soloBlur };
    case "solo-symmetric-weak":
      return {
        ...simclr,
        jitter: { brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.1, p: 0.8 },
        blur: soloBlur,
      };
    case "solo-asymmetric":
      return {
        ...simclr,
        jitter: { brightness: 0.4, contrast: 0.4, saturation: 0.2, hue: 0.1, p: 0.8 },
      };
    case "eval":
      return base;
  }
}

/** solo-learn's CIFAR blur: σ drawn from [0.1, 2], applied with p 0.5. */
const soloBlur: BlurConfig = { kernelSize: 9, sigma: [0.1, 2], p: 0.5 };

/** A crop box in pixels: rows top..top+height, columns left..left+width. */
export interface CropBox {
  top: number;
  left: number;
  height: number;
  width: number;
}

/** Python's `round`: halves go to the even neighbour. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * torchvision's `RandomResizedCrop.get_params`: up to ten tries at a box whose area fraction is
 * uniform in `scale` and whose aspect ratio is log-uniform in `ratio`, then the central crop
 * clamped to the ratio range. The box is written into `into` when given (no allocation).
 */
export function randomResizedCropParams(
  rng: Random,
  height: number,
  width: number,
  scale: readonly [number, number],
  ratio: readonly [number, number],
  into: CropBox = { top: 0, left: 0, height: 0, width: 0 },
): CropBox {
  const area = height * width;
  const logLow = Math.log(ratio[0]);
  const logHigh = Math.log(ratio[1]);
  for (let attempt = 0; attempt < 10; attempt++) {
    const targetArea = area * rng.uniform(scale[0], scale[1]);
    const aspect = Math.exp(rng.uniform(logLow, logHigh));
    const w = roundHalfEven(Math.sqrt(targetArea * aspect));
    const h = roundHalfEven(Math.sqrt(targetArea / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      into.top = rng.int(height - h + 1);
      into.left = rng.int(width - w + 1);
      into.height = h;
      into.width = w;
      return into;
    }
  }
  const inRatio = width / height;
  let w = width, h = height;
  if (inRatio < Math.min(ratio[0], ratio[1])) {
    h = roundHalfEven(w / Math.min(ratio[0], ratio[1]));
  } else if (inRatio > Math.max(ratio[0], ratio[1])) {
    w = roundHalfEven(h * Math.max(ratio[0], ratio[1]));
  }
  into.top = Math.floor((height - h) / 2);
  into.left = Math.floor((width - w) / 2);
  into.height = h;
  into.width = w;
  return into;
}

/**
 * The draws of torchvision's `ColorJitter.get_params`: the order in which the four operations
 * run (0 brightness, 1 contrast, 2 saturation, 3 hue) and each factor, null where disabled.
 */
export interface JitterParams {
  order: Int32Array;
  brightness: number | null;
  contrast: number | null;
  saturation: number | null;
  hue: number | null;
}

function factorRange(rng: Random, strength: number): number | null {
  return strength > 0 ? rng.uniform(Math.max(0, 1 - strength), 1 + strength) : null;
}

/**
 * Draws a random order and factors for `ColorJitter`, in torchvision's order of draws; into
 * `into` when given (its `order` must hold 4 entries), without allocating.
 */
export function colorJitterParams(
  rng: Random,
  jitter: JitterConfig,
  into?: JitterParams,
): JitterParams {
  const params = into ??
    { order: new Int32Array(4), brightness: null, contrast: null, saturation: null, hue: null };
  const order = params.order;
  for (let k = 0; k < 4; k++) order[k] = k;
  rng.shuffle(order); // as rng.permutation(4) does
  params.brightness = factorRange(rng, jitter.brightness);
  params.contrast = factorRange(rng, jitter.contrast);
  params.saturation = factorRange(rng, jitter.saturation);
  params.hue = jitter.hue > 0 ? rng.uniform(-jitter.hue, jitter.hue) : null;
  return params;
}

/** Applies the drawn jitter to a planar float image in place, in the drawn order. */
export function applyColorJitter(img: Float32Array, params: JitterParams): void {
  const order = params.order;
  for (let k = 0; k < order.length; k++) {
    const op = order[k];
    if (op === 0 && params.brightness !== null) adjustBrightness(img, params.brightness);
    else if (op === 1 && params.contrast !== null) adjustContrast(img, params.contrast);
    else if (op === 2 && params.saturation !== null) adjustSaturation(img, params.saturation);
    else if (op === 3 && params.hue !== null) adjustHue(img, params.hue);
  }
}

/** Brightness: blend with black, `clamp(x · factor, 0, 1)`, on a planar float RGB image. */
export function adjustBrightness(img: Float32Array, factor: number): void {
  for (let k = 0; k < img.length; k++) {
    const v = img[k] * factor;
    img[k] = v > 1 ? 1 : v;
  }
}

/** Contrast: blend with the mean of the image's grayscale, clamped to [0, 1]. */
export function adjustContrast(img: Float32Array, factor: number): void {
  const n = img.length / 3;
  let sum = 0;
  for (let k = 0; k < n; k++) {
    sum += LUMA_R * img[k] + LUMA_G * img[n + k] + LUMA_B * img[2 * n + k];
  }
  const offset = (1 - factor) * (sum / n);
  for (let k = 0; k < img.length; k++) img[k] = clamp01(factor * img[k] + offset);
}

/** Saturation: blend each pixel with its own grayscale value, clamped to [0, 1]. */
export function adjustSaturation(img: Float32Array, factor: number): void {
  const n = img.length / 3;
  const rest = 1 - factor;
  for (let k = 0; k < n; k++) {
    const r = img[k], g = img[n + k], b = img[2 * n + k];
    const gray = rest * (LUMA_R * r + LUMA_G * g + LUMA_B * b);
    img[k] = clamp01(factor * r + gray);
    img[n + k] = clamp01(factor * g + gray);
    img[2 * n + k] = clamp01(factor * b + gray);
  }
}

/**
 * Hue: rotate the hue by `shift` turns (in [-0.5, 0.5]) in HSV space, exactly as torchvision's
 * `_rgb2hsv` / `_hsv2rgb` pair does on float images.
 */
export function adjustHue(img: Float32Array, shift: number): void {
  const n = img.length / 3;
  for (let k = 0; k < n; k++) {
    const r = img[k], g = img[n + k], b = img[2 * n + k];
    const maxc = r > g ? (r > b ? r : b) : (g > b ? g : b);
    const minc = r < g ? (r < b ? r : b) : (g < b ? g : b);
    // A gray pixel has no hue: torchvision maps it back to itself.
    if (maxc === minc) continue;
    const cr = maxc - minc;
    const s = cr / maxc;
    const rc = (maxc - r) / cr, gc = (maxc - g) / cr, bc = (maxc - b) / cr;
    let h: number;
    if (maxc === r) h = bc - gc;
    else if (maxc === g) h = 2 + rc - bc;
    else h = 4 + gc - rc;
    h = (h / 6 + 1) % 1 + shift;
    h -= Math.floor(h);
    const h6 = h * 6;
    const i = Math.floor(h6);
    const f = h6 - i;
    const v = maxc;
    const p = clamp01(v * (1 - s));
    const q = clamp01(v * (1 - s * f));
    const t = clamp01(v * (1 - s * (1 - f)));
    let ro: number, go: number, bo: number;
    switch (i % 6) {
      case 0:
        ro = v, go = t, bo = p;
        break;
      case 1:
        ro = q, go = v, bo = p;
        break;
      case 2:
        ro = p, go = v, bo = t;
        break;
      case 3:
        ro = p, go = q, bo = v;
        break;
      case 4:
        ro = t, go = p, bo = v;
        break;
      default:
        ro = v, go = p, bo = q;
    }
    img[k] = ro;
    img[n + k] = go;
    img[2 * n + k] = bo;
  }
}

/** Grayscale with the 0.299/0.587/0.114 luma, written to all three channels. */
export function toGrayscale(img: Float32Array): void {
  const n = img.length / 3;
  for (let k = 0; k < n; k++) {
    const gray = LUMA_R * img[k] + LUMA_G * img[n + k] + LUMA_B * img[2 * n + k];
    img[k] = gray;
    img[n + k] = gray;
    img[2 * n + k] = gray;
  }
}

/**
 * torchvision's Gaussian kernel: `exp(-x²/2σ²)` at integer offsets, normalised to sum 1;
 * written into `into` (kernelSize floats) when given.
 */
export function gaussianKernel(
  kernelSize: number,
  sigma: number,
  into: Float32Array = new Float32Array(kernelSize),
): Float32Array {
  const kernel = into;
  const half = (kernelSize - 1) / 2;
  let sum = 0;
  for (let k = 0; k < kernelSize; k++) {
    const x = (k - half) / sigma;
    kernel[k] = Math.exp(-0.5 * x * x);
    sum += kernel[k];
  }
  for (let k = 0; k < kernelSize; k++) kernel[k] /= sum;
  return kernel;
}

/** Index into 0..n-1 with reflect padding (…2 1 | 0 1 2 … n-1 | n-2 …), as torch pads. */
function reflect(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * (n - 1);
  i = ((i % period) + period) % period;
  return i < n ? i : period - i;
}

/**
 * Separable Gaussian blur with reflect padding, in place on a planar float image of the given
 * height and width. `scratch` (at least height·width floats) avoids an allocation per call.
 */
export function gaussianBlur(
  img: Float32Array,
  height: number,
  width: number,
  kernel: Float32Array,
  scratch: Float32Array = new Float32Array(height * width),
): void {
  const n = height * width;
  const taps = kernel.length;
  const half = (taps - 1) >> 1;
  // Reflection is needed only within `half` of an edge; elsewhere the taps are read in place.
  // Both paths add the taps in the same order, so the result does not depend on the path.
  for (let c = 0; c < 3; c++) {
    const plane = c * n;
    for (let y = 0; y < height; y++) {
      const row = y * width;
      for (let x = 0; x < width; x++) {
        let acc = 0;
        if (x >= half && x + half < width) {
          const first = plane + row + x - half;
          for (let k = 0; k < taps; k++) acc += kernel[k] * img[first + k];
        } else {
          for (let k = 0; k < taps; k++) {
            acc += kernel[k] * img[plane + row + reflect(x + k - half, width)];
          }
        }
        scratch[row + x] = acc;
      }
    }
    for (let y = 0; y < height; y++) {
      const interior = y >= half && y + half < height;
      for (let x = 0; x < width; x++) {
        let acc = 0;
        if (interior) {
          const first = (y - half) * width + x;
          for (let k = 0; k < taps; k++) acc += kernel[k] * scratch[first + k * width];
        } else {
          for (let k = 0; k < taps; k++) {
            acc += kernel[k] * scratch[reflect(y + k - half, height) * width + x];
          }
        }
        img[plane + y * width + x] = acc;
      }
    }
  }
}

/** Solarize: every value at or above `threshold` becomes `1 - value`. */
export function solarize(img: Float32Array, threshold: number): void {
  for (let k = 0; k < img.length; k++) if (img[k] >= threshold) img[k] = 1 - img[k];
}

/** Normalize: `(x - mean[c]) / std[c]` per channel, in place. */
export function normalize(
  img: Float32Array,
  mean: readonly [number, number, number],
  std: readonly [number, number, number],
): void {
  const n = img.length / 3;
  for (let c = 0; c < 3; c++) {
    const m = mean[c], inv = 1 / std[c];
    for (let k = c * n; k < (c + 1) * n; k++) img[k] = (img[k] - m) * inv;
  }
}

function clamp01(x: number): number {
  return x < 0 ? 0 : x > 1 ? 1 : x;
}

/**
 * Runs one recipe on images of a fixed input size. Crop, bilinear resize and flip are fused in
 * one pass from bytes to planar floats; the colour operations then run in place on the output,
 * which is normalised last. The crop box, jitter draws, blur kernel and scratch tables are
 * allocated once per augmenter, so a view allocates only the subarray it writes through.
 *
 * @example
 * ```ts
 * import { Augmenter, augmentPreset } from "./augment.ts";
 * import { Random } from "./random.ts";
 * const aug = new Augmenter(augmentPreset("simclr-seed"), 32, 32);
 * const out = new Float32Array(3 * 32 * 32);
 * aug.apply(new Uint8Array(32 * 32 * 3), new Random(0), out, 0);
 * ```
 */
export class Augmenter {
  /** Floats written per view: 3 × height × width of the output. */
  readonly viewSize: number;
  readonly #config: AugmentConfig;
  readonly #inHeight: number;
  readonly #inWidth: number;
  readonly #channels: number;
  readonly #x0: Int32Array;
  readonly #x1: Int32Array;
  readonly #xw: Float64Array;
  readonly #y0: Int32Array;
  readonly #y1: Int32Array;
  readonly #yw: Float64Array;
  readonly #scratch: Float32Array;
  readonly #box: CropBox = { top: 0, left: 0, height: 0, width: 0 };
  readonly #jitter: JitterParams = {
    order: new Int32Array(4),
    brightness: null,
    contrast: null,
    saturation: null,
    hue: null,
  };
  readonly #kernel: Float32Array;

  /**
   * @param config the recipe
   * @param inputHeight height of every input image
   * @param inputWidth width of every input image
   * @param channels bytes per input pixel: 3 (RGB) or 4 (RGBA, alpha ignored)
   */
  constructor(config: AugmentConfig, inputHeight: number, inputWidth: number, channels: 3 | 4 = 3) {
    this.#config = config;
    this.#inHeight = inputHeight;
    this.#inWidth = inputWidth;
    this.#channels = channels;
    this.viewSize = 3 * config.height * config.width;
    this.#x0 = new Int32Array(config.width);
    this.#x1 = new Int32Array(config.width);
    this.#xw = new Float64Array(config.width);
    this.#y0 = new Int32Array(config.height);
    this.#y1 = new Int32Array(config.height);
    this.#yw = new Float64Array(config.height);
    this.#scratch = new Float32Array(config.height * config.width);
    this.#kernel = new Float32Array(config.blur?.kernelSize ?? 0);
  }

  /**
   * Writes one view of `image` (interleaved bytes, inputHeight × inputWidth × channels) into
   * `out[offset, offset + viewSize)` as normalised planar floats, drawing from `rng`.
   */
  apply(image: Uint8Array, rng: Random, out: Float32Array, offset: number): void {
    const cfg = this.#config;
    const box = this.#box;
    if (cfg.crop) {
      const { scale, ratio } = cfg.crop;
      randomResizedCropParams(rng, this.#inHeight, this.#inWidth, scale, ratio, box);
    } else {
      box.top = 0;
      box.left = 0;
      box.height = this.#inHeight;
      box.width = this.#inWidth;
    }
    const flip = cfg.flip > 0 && rng.float() < cfg.flip;
    const view = out.subarray(offset, offset + this.viewSize);
    this.#resizedCrop(image, box, flip, view);
    if (cfg.jitter && rng.float() < cfg.jitter.p) {
      applyColorJitter(view, colorJitterParams(rng, cfg.jitter, this.#jitter));
    }
    if (cfg.grayscale > 0 && rng.float() < cfg.grayscale) toGrayscale(view);
    if (cfg.blur && rng.float() < cfg.blur.p) {
      const sigma = rng.uniform(cfg.blur.sigma[0], cfg.blur.sigma[1]);
      const kernel = gaussianKernel(cfg.blur.kernelSize, sigma, this.#kernel);
      gaussianBlur(view, cfg.height, cfg.width, kernel, this.#scratch);
    }
    if (cfg.solarize && rng.float() < cfg.solarize.p) solarize(view, cfg.solarize.threshold);
    normalize(view, cfg.mean, cfg.std);
  }

  /**
   * Crop + bilinear resize (torch's `interpolate(mode="bilinear", align_corners=False,
   * antialias=False)`) + optional mirror, from bytes to [0, 1] floats.
   */
  #resizedCrop(image: Uint8Array, box: CropBox, flip: boolean, view: Float32Array): void {
    const outH = this.#config.height, outW = this.#config.width;
    const ch = this.#channels, rowStride = this.#inWidth * ch;
    const x0 = this.#x0, x1 = this.#x1, xw = this.#xw;
    const y0 = this.#y0, y1 = this.#y1, yw = this.#yw;
    sourceTaps(box.width, outW, box.left, ch, x0, x1, xw);
    sourceTaps(box.height, outH, box.top, rowStride, y0, y1, yw);
    const n = outH * outW;
    const inv255 = 1 / 255;
    for (let oy = 0; oy < outH; oy++) {
      const rowA = y0[oy], rowB = y1[oy];
      const wb = yw[oy] * inv255, wa = inv255 - wb;
      let o = oy * outW;
      for (let ox = 0; ox < outW; ox++, o++) {
        const sx = flip ? outW - 1 - ox : ox;
        const cA = x0[sx], cB = x1[sx];
        const w1 = xw[sx], w0 = 1 - w1;
        const a = rowA + cA, b = rowA + cB, c = rowB + cA, d = rowB + cB;
        view[o] = wa * (w0 * image[a] + w1 * image[b]) + wb * (w0 * image[c] + w1 * image[d]);
        view[n + o] = wa * (w0 * image[a + 1] + w1 * image[b + 1]) +
          wb * (w0 * image[c + 1] + w1 * image[d + 1]);
        view[2 * n + o] = wa * (w0 * image[a + 2] + w1 * image[b + 2]) +
          wb * (w0 * image[c + 2] + w1 * image[d + 2]);
      }
    }
  }
}

/**
 * For each output coordinate, the two source offsets (already multiplied by `stride`) and the
 * weight of the second, following torch's `area_pixel_compute_source_index` for
 * align_corners=False: src = (dst + 0.5)·in/out − 0.5, clamped at 0.
 */
function sourceTaps(
  inSize: number,
  outSize: number,
  start: number,
  stride: number,
  first: Int32Array,
  second: Int32Array,
  weight: Float64Array,
): void {
  const scale = inSize / outSize;
  for (let o = 0; o < outSize; o++) {
    let src = (o + 0.5) * scale - 0.5;
    if (src < 0) src = 0;
    const i = Math.floor(src);
    const next = i < inSize - 1 ? i + 1 : i;
    first[o] = (start + i) * stride;
    second[o] = (start + next) * stride;
    weight[o] = src - i;
  }
}
