import assert from "node:assert/strict";
import {
  adjustBrightness,
  adjustContrast,
  adjustHue,
  adjustSaturation,
  type AugmentConfig,
  Augmenter,
  augmentPreset,
  CIFAR_MEAN,
  CIFAR_STD,
  colorJitterParams,
  gaussianBlur,
  gaussianKernel,
  normalize,
  randomResizedCropParams,
  solarize,
  toGrayscale,
} from "../src/data/augment.ts";
import { Random } from "../src/data/random.ts";

const IDENTITY: AugmentConfig = {
  ...augmentPreset("eval", 32),
  mean: [0, 0, 0],
  std: [1, 1, 1],
};

function randomImage(rng: Random, pixels: number): Float32Array {
  const img = new Float32Array(3 * pixels);
  for (let k = 0; k < img.length; k++) img[k] = rng.float();
  return img;
}

function randomBytes(rng: Random, n: number): Uint8Array {
  const bytes = new Uint8Array(n);
  for (let k = 0; k < n; k++) bytes[k] = rng.int(256);
  return bytes;
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, atol: number) {
  assert.equal(actual.length, expected.length);
  let worst = 0, at = -1;
  for (let k = 0; k < actual.length; k++) {
    const err = Math.abs(actual[k] - expected[k]);
    if (!(err <= worst)) worst = err, at = k;
  }
  assert.ok(worst <= atol, `worst |a-b| = ${worst} at ${at}: ${actual[at]} vs ${expected[at]}`);
}

Deno.test("RandomResizedCrop boxes have area and aspect within range", () => {
  const rng = new Random(1);
  const scale: [number, number] = [0.08, 1], ratio: [number, number] = [3 / 4, 4 / 3];
  let minArea = 1, maxArea = 0, logRatioSum = 0;
  const draws = 20000;
  for (let n = 0; n < draws; n++) {
    const { top, left, height: h, width: w } = randomResizedCropParams(rng, 32, 32, scale, ratio);
    assert.ok(top >= 0 && left >= 0 && top + h <= 32 && left + w <= 32, "box inside the image");
    // w and h are rounded from real values whose product and ratio were in range.
    const areaLow = (w - 0.5) * (h - 0.5) / 1024, areaHigh = (w + 0.5) * (h + 0.5) / 1024;
    assert.ok(areaHigh >= scale[0] && areaLow <= scale[1], `area of ${w}×${h}`);
    const ratioLow = (w - 0.5) / (h + 0.5), ratioHigh = (w + 0.5) / (h - 0.5);
    assert.ok(ratioHigh >= ratio[0] && ratioLow <= ratio[1], `aspect of ${w}×${h}`);
    minArea = Math.min(minArea, (w * h) / 1024);
    maxArea = Math.max(maxArea, (w * h) / 1024);
    logRatioSum += Math.log(w / h);
  }
  // The draws span the whole area range, and the log-uniform ratio is symmetric about 0.
  assert.ok(minArea < 0.09 && maxArea === 1, `areas span ${minArea}..${maxArea}`);
  assert.ok(Math.abs(logRatioSum / draws) < 0.01, `mean log ratio ${logRatioSum / draws}`);
});

Deno.test("RandomResizedCrop falls back to the ratio-clamped central crop", () => {
  const rng = new Random(2);
  // An area of 2–3× the image never fits, so all ten tries fail.
  assert.deepEqual(randomResizedCropParams(rng, 10, 40, [2, 3], [3 / 4, 4 / 3]), {
    top: 0,
    left: 13,
    height: 10,
    width: 13,
  });
  assert.deepEqual(randomResizedCropParams(rng, 40, 10, [2, 3], [3 / 4, 4 / 3]), {
    top: 13,
    left: 0,
    height: 13,
    width: 10,
  });
  assert.deepEqual(randomResizedCropParams(rng, 30, 32, [2, 3], [3 / 4, 4 / 3]), {
    top: 0,
    left: 0,
    height: 30,
    width: 32,
  });
});

Deno.test("bilinear resize matches torch interpolate(align_corners=False)", () => {
  // torch.nn.functional.interpolate([[0, 1], [2, 3]], size=4, mode="bilinear")
  const expected = [
    [0, 0.25, 0.75, 1],
    [0.5, 0.75, 1.25, 1.5],
    [1.5, 1.75, 2.25, 2.5],
    [2, 2.25, 2.75, 3],
  ].flat();
  const aug = new Augmenter({ ...IDENTITY, height: 4, width: 4 }, 2, 2);
  // The same 2×2 ramp in each channel, scaled by 50 to stay in bytes.
  const image = new Uint8Array([0, 1, 2, 3].flatMap((v) => [50 * v, 50 * v, 50 * v]));
  const out = new Float32Array(48);
  aug.apply(image, new Random(0), out, 0);
  for (let c = 0; c < 3; c++) {
    assertClose(out.subarray(16 * c, 16 * (c + 1)), expected.map((v) => (50 * v) / 255), 1e-6);
  }
});

Deno.test("a crop of the whole image at the same size is a plain copy, RGBA input too", () => {
  const rng = new Random(3);
  const rgba = randomBytes(rng, 8 * 8 * 4);
  const aug = new Augmenter({ ...IDENTITY, height: 8, width: 8 }, 8, 8, 4);
  const out = new Float32Array(3 * 64);
  aug.apply(rgba, rng, out, 0);
  for (let p = 0; p < 64; p++) {
    for (let c = 0; c < 3; c++) assert.ok(Math.abs(out[c * 64 + p] - rgba[4 * p + c] / 255) < 1e-6);
  }
});

Deno.test("horizontal flip happens at rate p and mirrors the view", () => {
  const rng = new Random(4);
  const image = randomBytes(rng, 32 * 32 * 3);
  const plain = new Float32Array(3072), out = new Float32Array(3072);
  new Augmenter(IDENTITY, 32, 32).apply(image, rng, plain, 0);
  const mirrored = plain.map((_, k) => plain[k - (k % 32) + 31 - (k % 32)]);
  const aug = new Augmenter({ ...IDENTITY, flip: 0.5 }, 32, 32);
  let flips = 0;
  const draws = 4000;
  for (let n = 0; n < draws; n++) {
    aug.apply(image, rng, out, 0);
    if (out.every((v, k) => v === mirrored[k])) flips++;
    else assert.deepEqual(out, plain);
  }
  assert.ok(Math.abs(flips / draws - 0.5) < 0.03, `flip rate ${flips / draws}`);
});

Deno.test("grayscale sets every channel to 0.299 R + 0.587 G + 0.114 B", () => {
  const img = randomImage(new Random(5), 100);
  const before = img.slice();
  toGrayscale(img);
  for (let k = 0; k < 100; k++) {
    const luma = 0.299 * before[k] + 0.587 * before[100 + k] + 0.114 * before[200 + k];
    assert.ok(Math.abs(img[k] - luma) < 1e-6);
    assert.equal(img[100 + k], img[k]);
    assert.equal(img[200 + k], img[k]);
  }
});

Deno.test("RandomGrayscale and RandomApply(ColorJitter) fire at their probabilities", () => {
  const rng = new Random(6);
  const image = randomBytes(rng, 32 * 32 * 3);
  const out = new Float32Array(3072);
  const draws = 3000;
  const gray = new Augmenter({ ...IDENTITY, grayscale: 0.2 }, 32, 32);
  let grays = 0;
  for (let n = 0; n < draws; n++) {
    gray.apply(image, rng, out, 0);
    if (out.subarray(0, 1024).every((v, k) => v === out[1024 + k])) grays++;
  }
  assert.ok(Math.abs(grays / draws - 0.2) < 0.025, `grayscale rate ${grays / draws}`);
  const plain = new Float32Array(3072);
  new Augmenter(IDENTITY, 32, 32).apply(image, rng, plain, 0);
  const jitter = new Augmenter(
    {
      ...IDENTITY,
      jitter: { brightness: 0.5, contrast: 0, saturation: 0, hue: 0, p: 0.8 },
    },
    32,
    32,
  );
  let jittered = 0;
  for (let n = 0; n < draws; n++) {
    jitter.apply(image, rng, out, 0);
    if (out.some((v, k) => v !== plain[k])) jittered++;
  }
  assert.ok(Math.abs(jittered / draws - 0.8) < 0.025, `jitter rate ${jittered / draws}`);
});

Deno.test("ColorJitter draws factors within bounds and the order as a permutation", () => {
  const rng = new Random(7);
  const cfg = { brightness: 0.8, contrast: 0.8, saturation: 0.8, hue: 0.2, p: 1 };
  const firsts = [0, 0, 0, 0];
  const draws = 8000;
  for (let n = 0; n < draws; n++) {
    const p = colorJitterParams(rng, cfg);
    assert.deepEqual([...p.order].sort(), [0, 1, 2, 3]);
    firsts[p.order[0]]++;
    for (const f of [p.brightness!, p.contrast!, p.saturation!]) assert.ok(f >= 0.2 && f <= 1.8);
    assert.ok(p.hue! >= -0.2 && p.hue! <= 0.2);
  }
  for (const count of firsts) assert.ok(Math.abs(count / draws - 0.25) < 0.025);
  const strong = colorJitterParams(rng, { ...cfg, brightness: 1.5 });
  assert.ok(strong.brightness! >= 0 && strong.brightness! <= 2.5);
  const off = colorJitterParams(rng, { brightness: 0, contrast: 0, saturation: 0.5, hue: 0, p: 1 });
  assert.equal(off.brightness, null);
  assert.equal(off.contrast, null);
  assert.equal(off.hue, null);
  assert.ok(off.saturation! >= 0.5 && off.saturation! <= 1.5);
});

Deno.test("brightness, contrast and saturation follow torchvision's blends", () => {
  const base = randomImage(new Random(8), 64);
  const clamp = (x: number) => Math.min(1, Math.max(0, x));
  const gray = (img: Float32Array, k: number) =>
    0.299 * img[k] + 0.587 * img[64 + k] + 0.114 * img[128 + k];

  const bright = base.slice();
  adjustBrightness(bright, 1.7);
  assertClose(bright, base.map((x) => clamp(1.7 * x)), 1e-6);

  let mean = 0;
  for (let k = 0; k < 64; k++) mean += gray(base, k) / 64;
  const contrast = base.slice();
  adjustContrast(contrast, 0.4);
  assertClose(contrast, base.map((x) => clamp(0.4 * x + 0.6 * mean)), 1e-6);

  const saturated = base.slice();
  adjustSaturation(saturated, 1.6);
  assertClose(saturated, base.map((x, k) => clamp(1.6 * x - 0.6 * gray(base, k % 64))), 1e-6);
  const desaturated = base.slice();
  adjustSaturation(desaturated, 0);
  const grayImg = base.slice();
  toGrayscale(grayImg);
  assertClose(desaturated, grayImg, 1e-6);
});

Deno.test("hue shift of 0 is the identity and h then -h round-trips", () => {
  const base = randomImage(new Random(9), 500);
  const same = base.slice();
  adjustHue(same, 0);
  assertClose(same, base, 1 / 255);
  for (const h of [0.05, 0.2, -0.35, 0.5]) {
    const img = base.slice();
    adjustHue(img, h);
    adjustHue(img, -h);
    assertClose(img, base, 1e-5);
  }
  // Pure red turns green after a third of a turn and cyan after half.
  const red = new Float32Array([1, 0, 0]);
  adjustHue(red, 1 / 3);
  assertClose(red, [0, 1, 0], 1e-6);
  const red2 = new Float32Array([1, 0, 0]);
  adjustHue(red2, 0.5);
  assertClose(red2, [0, 1, 1], 1e-6);
});

Deno.test("Gaussian blur uses torchvision's kernel with reflect padding", () => {
  const kernel = gaussianKernel(3, 1);
  const e = Math.exp(-0.5);
  assertClose(kernel, [e / (1 + 2 * e), 1 / (1 + 2 * e), e / (1 + 2 * e)], 1e-7);
  const wide = gaussianKernel(9, 2);
  assert.ok(Math.abs(wide.reduce((a, b) => a + b) - 1) < 1e-6);
  // An impulse in the middle spreads into the outer product of the kernel.
  const img = new Float32Array(3 * 49);
  img[24] = 1;
  gaussianBlur(img, 7, 7, kernel);
  for (let y = 0; y < 7; y++) {
    for (let x = 0; x < 7; x++) {
      const dy = Math.abs(y - 3), dx = Math.abs(x - 3);
      const want = dy <= 1 && dx <= 1 ? kernel[1 + dy] * kernel[1 + dx] : 0;
      assert.ok(Math.abs(img[y * 7 + x] - want) < 1e-6);
    }
  }
  // Reflect padding mirrors row 1 into row -1, so an impulse in row 1 reaches row 0 twice.
  const edge = new Float32Array(3 * 49);
  edge[7 + 3] = 1;
  gaussianBlur(edge, 7, 7, kernel);
  assert.ok(Math.abs(edge[3] - 2 * kernel[0] * kernel[1]) < 1e-6);
  const flat = new Float32Array(3 * 25).fill(0.3);
  gaussianBlur(flat, 5, 5, wide);
  assertClose(flat, new Float32Array(75).fill(0.3), 1e-6);
});

Deno.test("solarize inverts values at or above the threshold; normalize standardises", () => {
  const img = new Float32Array([0.2, 0.5, 0.9, 0.49, 0.5, 1]);
  solarize(img, 0.5);
  assertClose(img, [0.2, 0.5, 0.1, 0.49, 0.5, 0], 1e-7);
  const norm = new Float32Array([0.5, 0.5, 0.5]);
  normalize(norm, CIFAR_MEAN, CIFAR_STD);
  assertClose(norm, [0, 1, 2].map((c) => (0.5 - CIFAR_MEAN[c]) / CIFAR_STD[c]), 1e-6);
});

Deno.test("the simclr-seed preset is the seed recipe and writes only its own slot", () => {
  const cfg = augmentPreset("simclr-seed", 32);
  assert.deepEqual(cfg.crop, { scale: [0.08, 1], ratio: [3 / 4, 4 / 3] });
  assert.equal(cfg.flip, 0.5);
  assert.deepEqual(cfg.jitter, {
    brightness: 0.8,
    contrast: 0.8,
    saturation: 0.8,
    hue: 0.2,
    p: 0.8,
  });
  assert.equal(cfg.grayscale, 0.2);
  assert.deepEqual([cfg.mean, cfg.std], [CIFAR_MEAN, CIFAR_STD]);
  const rng = new Random(10);
  const image = randomBytes(rng, 3072);
  const aug = new Augmenter(cfg, 32, 32);
  const out = new Float32Array(3 * 3072).fill(NaN);
  aug.apply(image, rng.reseed(5, 0, 1), out, 3072);
  assert.ok(out.subarray(0, 3072).every(Number.isNaN) && out.subarray(6144).every(Number.isNaN));
  const view = out.subarray(3072, 6144);
  for (let c = 0; c < 3; c++) {
    const low = -CIFAR_MEAN[c] / CIFAR_STD[c], high = (1 - CIFAR_MEAN[c]) / CIFAR_STD[c];
    assert.ok(
      view.subarray(c * 1024, (c + 1) * 1024).every((v) => v >= low - 1e-5 && v <= high + 1e-5),
    );
  }
  const again = new Float32Array(3072);
  aug.apply(image, rng.reseed(5, 0, 1), again, 0);
  assert.deepEqual(again, view.slice());
});

Deno.test("blur and solarize run inside a recipe", () => {
  const rng = new Random(11);
  const image = randomBytes(rng, 3072);
  const cfg: AugmentConfig = {
    ...IDENTITY,
    blur: { kernelSize: 3, sigma: [0.1, 2], p: 1 },
    solarize: { threshold: 0.5, p: 1 },
  };
  const out = new Float32Array(3072);
  new Augmenter(cfg, 32, 32).apply(image, rng, out, 0);
  // The same draws by hand: no crop, flip, jitter or grayscale draw; the blur's coin and
  // sigma, then the solarize coin. The planar [0, 1] image, blurred with that sigma's kernel,
  // then solarized.
  const twin = new Random(11);
  randomBytes(twin, 3072);
  twin.float();
  const kernel = gaussianKernel(3, twin.uniform(0.1, 2));
  const planar = Float32Array.from(
    { length: 3072 },
    (_, k) => image[(k % 1024) * 3 + (k >> 10)] / 255,
  );
  const unblurred = planar.slice();
  gaussianBlur(planar, 32, 32, kernel);
  solarize(planar, 0.5);
  solarize(unblurred, 0.5);
  assertClose(out, planar, 1e-6);
  // The blur made a difference the comparison sees.
  assert.ok(out.some((v, k) => Math.abs(v - unblurred[k]) > 0.05), "the view is blurred");
  assert.ok(out.every((v) => v >= 0 && v <= 0.5 + 1e-6), "solarized values stay at or below 0.5");
});

Deno.test("draws into reused objects equal fresh ones; a reused augmenter keeps no state", () => {
  const jitter = { brightness: 0.8, contrast: 0.8, saturation: 0.8, hue: 0.2, p: 1 };
  const box = { top: 0, left: 0, height: 0, width: 0 };
  const params = colorJitterParams(new Random(0), jitter);
  const kernel = new Float32Array(5);
  for (let s = 0; s < 50; s++) {
    const crop = (into?: typeof box) =>
      randomResizedCropParams(new Random(s), 24, 40, [0.08, 1], [3 / 4, 4 / 3], into);
    assert.deepEqual(crop(box), crop());
    assert.deepEqual(
      colorJitterParams(new Random(s), jitter, params),
      colorJitterParams(new Random(s), jitter),
    );
    assert.deepEqual(params.order, new Random(s).permutation(4));
    assert.deepEqual(gaussianKernel(5, 0.1 + s / 20, kernel), gaussianKernel(5, 0.1 + s / 20));
  }
  const recipe: AugmentConfig = {
    ...augmentPreset("simclr-seed", 16),
    blur: { kernelSize: 3, sigma: [0.1, 2], p: 0.5 },
    solarize: { threshold: 0.5, p: 0.5 },
  };
  const image = Uint8Array.from({ length: 32 * 32 * 3 }, (_, k) => (k * 37) & 255);
  const reused = new Augmenter(recipe, 32, 32);
  const size = reused.viewSize;
  const a = new Float32Array(40 * size), b = new Float32Array(40 * size);
  for (let s = 0; s < 40; s++) {
    reused.apply(image, new Random(1, 0, s), a, s * size);
    new Augmenter(recipe, 32, 32).apply(image, new Random(1, 0, s), b, s * size);
  }
  assert.deepEqual(a, b);
});
