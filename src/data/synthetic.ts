/**
 * A built-in, deterministic 10-class image set in which a class is a shape or a texture, never
 * a colour: every image draws its own foreground and background colours, position, scale,
 * rotation and noise. Telling classes apart needs spatial structure, which crops and colour
 * jitter leave intact, so it is a small offline stand-in for a real dataset.
 *
 * @module
 */

import { PackedImageDataset, type Split } from "./dataset.ts";
import { Random } from "./random.ts";
import { ListTextDataset } from "./text.ts";

/** Class names of the synthetic set, by label. */
export const SYNTHETIC_CLASSES: readonly string[] = [
  "circle",
  "square",
  "triangle",
  "cross",
  "ring",
  "horizontal stripes",
  "vertical stripes",
  "diagonal stripes",
  "checkerboard",
  "dot grid",
];

/** Options of {@linkcode syntheticDataset}. */
export interface SyntheticOptions {
  /** "train" (default) or "test"; the splits draw from different streams of the seed. */
  split?: Split;
  /** Number of images (default 5,000 for train, 1,000 for test); classes alternate 0..9. */
  count?: number;
  /** Seed (default 0). */
  seed?: number;
  /** Side of the square images in pixels (default 32). */
  size?: number;
}

/**
 * Signed distance (in pixels, negative inside) from a point in the shape's own frame to the
 * foreground of each class; `a`, `b` are the class's two size parameters.
 */
type Sdf = (u: number, v: number, a: number, b: number) => number;

function box(u: number, v: number, halfU: number, halfV: number): number {
  return Math.max(Math.abs(u) - halfU, Math.abs(v) - halfV);
}

/** Distance to the edge of alternating bands of width period/2 across v (inside < 0). */
function bands(v: number, period: number): number {
  const t = v - period * Math.floor(v / period); // in [0, period)
  return Math.abs(t - period / 2) - period / 4;
}

const SQRT3 = Math.sqrt(3);

const SDFS: readonly Sdf[] = [
  (u, v, r) => Math.sqrt(u * u + v * v) - r,
  (u, v, r) => box(u, v, 0.85 * r, 0.85 * r),
  (u, v, r) => {
    // Equilateral triangle of half-side s (Inigo Quilez's exact distance).
    const s = 1.2 * r;
    let x = Math.abs(u) - s, y = v + s / SQRT3;
    if (x + SQRT3 * y > 0) {
      const fx = (x - SQRT3 * y) / 2;
      y = (-SQRT3 * x - y) / 2;
      x = fx;
    }
    x -= Math.min(Math.max(x, -2 * s), 0);
    return -Math.sqrt(x * x + y * y) * Math.sign(y);
  },
  (u, v, r, t) => Math.min(box(u, v, r, t), box(u, v, t, r)),
  (u, v, r, t) => Math.abs(Math.sqrt(u * u + v * v) - r) - t,
  (_u, v, period) => bands(v, period),
  (u, _v, period) => bands(u, period),
  (_u, v, period) => bands(v, period),
  (u, v, period) => {
    const su = u - period * Math.floor(u / period) - period / 2;
    const sv = v - period * Math.floor(v / period) - period / 2;
    const edge = Math.min(
      Math.abs(su),
      period / 2 - Math.abs(su),
      Math.abs(sv),
      period / 2 - Math.abs(sv),
    );
    return su * sv > 0 ? -edge : edge;
  },
  (u, v, period, r) => {
    const su = u - period * Math.floor(u / period) - period / 2;
    const sv = v - period * Math.floor(v / period) - period / 2;
    return Math.sqrt(su * su + sv * sv) - r;
  },
];

const luma = (c: Float64Array) => 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2];

/**
 * Generates the synthetic set: label i mod 10 for image i, so classes are balanced (exactly,
 * when the count is a multiple of 10). Deterministic for a given seed, split, count and size.
 *
 * @example
 * ```ts
 * import { syntheticDataset } from "./synthetic.ts";
 * const train = syntheticDataset({ split: "train", count: 100, seed: 1 });
 * train.classNames[train.label(3)]; // "cross"
 * ```
 */
export function syntheticDataset(options: SyntheticOptions = {}): PackedImageDataset {
  return generate(options).images;
}

/** A set of images with a caption each, paired by index: CLIP's data. */
export interface CaptionedImages {
  readonly images: PackedImageDataset;
  /** Caption i (one sentence, labelled with image i's class) describes image i. */
  readonly captions: ListTextDataset;
}

/**
 * The synthetic set with each image described in words: its class, colours, and for a shape
 * its size and place — "a small red circle on a blue background, top left", "vertical
 * stripes of green and white" — so that a caption says more than the class.
 *
 * @example
 * ```ts
 * import { syntheticCaptions } from "./synthetic.ts";
 * const { images, captions } = syntheticCaptions({ count: 10 });
 * captions.sentences(0)[0]; // e.g. "a large red circle on a blue background, top left"
 * ```
 */
export function syntheticCaptions(options: SyntheticOptions = {}): CaptionedImages {
  const { images, captions } = generate(options, true);
  return {
    images,
    captions: new ListTextDataset(captions.map((c) => [c]), images.labels, SYNTHETIC_CLASSES),
  };
}

/** Colour names and their RGB in [0, 1], for captions: the nearest names a colour. */
const COLOURS: readonly [string, number, number, number][] = [
  ["black", 0, 0, 0],
  ["grey", 0.5, 0.5, 0.5],
  ["white", 1, 1, 1],
  ["red", 0.85, 0.1, 0.1],
  ["orange", 1, 0.55, 0.1],
  ["yellow", 0.95, 0.9, 0.15],
  ["green", 0.15, 0.65, 0.2],
  ["cyan", 0.2, 0.85, 0.9],
  ["blue", 0.15, 0.25, 0.85],
  ["purple", 0.55, 0.2, 0.7],
  ["pink", 1, 0.6, 0.75],
  ["brown", 0.5, 0.3, 0.12],
];

function colourName(c: Float64Array): string {
  let best = COLOURS[0], distance = Infinity;
  for (const entry of COLOURS) {
    const d = (c[0] - entry[1]) ** 2 + (c[1] - entry[2]) ** 2 + (c[2] - entry[3]) ** 2;
    if (d < distance) [best, distance] = [entry, d];
  }
  return best[0];
}

/** The words of an image's draw: its class and colours, and a shape's size and place. */
function describe(
  label: number,
  fg: Float64Array,
  bg: Float64Array,
  place: { cx: number; cy: number; a: number; size: number },
): string {
  const name = SYNTHETIC_CLASSES[label];
  const [front, back] = [colourName(fg), colourName(bg)];
  const article = (word: string) => (/^[aeiou]/.test(word) ? "an" : "a");
  if (label > 7) return `a ${name} of ${front} and ${back}`;
  if (label > 4) return `${name} of ${front} and ${back}`;
  const third = (v: number, words: string[]) =>
    words[Math.min(2, Math.floor((3 * v) / place.size))];
  const where = `${third(place.cy, ["top", "middle", "bottom"])} ${
    third(place.cx, ["left", "centre", "right"])
  }`;
  const big = place.a >= (8 * place.size) / 32 ? "large" : "small";
  const on = `on ${article(back)} ${back} background`;
  return `a ${big} ${front} ${name} ${on}, ${where.replace("middle centre", "centre")}`;
}

function generate(options: SyntheticOptions, captions = false): {
  images: PackedImageDataset;
  captions: string[];
} {
  const described: string[] = [];
  const split = options.split ?? "train";
  const count = options.count ?? (split === "train" ? 5000 : 1000);
  const size = options.size ?? 32;
  const seed = options.seed ?? 0;
  const pixels = new Uint8Array(new SharedArrayBuffer(count * size * size * 3));
  const labels = new Int32Array(count);
  const rng = new Random(0);
  const fg = new Float64Array(3), bg = new Float64Array(3);
  const unit = size / 32; // sizes below are for 32×32 and scale with the image
  for (let i = 0; i < count; i++) {
    const label = i % SYNTHETIC_CLASSES.length;
    labels[i] = label;
    rng.reseed(seed, split === "train" ? 1 : 2, i);
    // Colours carry no class information, but must differ in brightness to stay visible in
    // grayscale views.
    do {
      for (let c = 0; c < 3; c++) fg[c] = rng.float(), bg[c] = rng.float();
    } while (Math.abs(luma(fg) - luma(bg)) < 0.3);
    let angle = rng.uniform(0, 2 * Math.PI);
    let a: number, b = 0;
    let cx = size / 2, cy = size / 2;
    if (label <= 4) {
      a = rng.uniform(5, 11) * unit;
      b = a * rng.uniform(0.2, 0.35);
      const margin = 0.7 * a;
      cx = rng.uniform(margin, size - margin);
      cy = rng.uniform(margin, size - margin);
    } else if (label <= 7) {
      a = rng.uniform(5, 9) * unit;
      // Stripes keep their orientation (it is the class), up to a small tilt.
      const tilt = rng.uniform(-0.2, 0.2);
      angle = label === 7 ? (rng.float() < 0.5 ? 1 : -1) * Math.PI / 4 + tilt : tilt;
    } else {
      a = rng.uniform(6, 11) * unit;
      b = a * rng.uniform(0.18, 0.3);
    }
    // A random phase for the textures; harmless for the centred shapes.
    const shiftU = label > 4 ? rng.uniform(0, a) : 0, shiftV = label > 4 ? rng.uniform(0, a) : 0;
    if (captions) described.push(describe(label, fg, bg, { cx, cy, a, size }));
    const noise = rng.uniform(0, 0.1);
    const cos = Math.cos(angle), sin = Math.sin(angle);
    const sdf = SDFS[label];
    let p = i * size * size * 3;
    for (let y = 0; y < size; y++) {
      const dy = y + 0.5 - cy;
      for (let x = 0; x < size; x++) {
        const dx = x + 0.5 - cx;
        const d = sdf(cos * dx + sin * dy + shiftU, -sin * dx + cos * dy + shiftV, a, b);
        // Coverage of a pixel by the shape, from its distance to the edge: cheap antialiasing.
        const cover = d <= -0.5 ? 1 : d >= 0.5 ? 0 : 0.5 - d;
        for (let c = 0; c < 3; c++) {
          const value = bg[c] + cover * (fg[c] - bg[c]) + noise * (2 * rng.float() - 1);
          pixels[p++] = value <= 0 ? 0 : value >= 1 ? 255 : (255 * value + 0.5) | 0;
        }
      }
    }
  }
  return {
    images: new PackedImageDataset(pixels, labels, size, size, SYNTHETIC_CLASSES),
    captions: described,
  };
}
