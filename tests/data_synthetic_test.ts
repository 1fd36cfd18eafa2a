import assert from "node:assert/strict";
import { SYNTHETIC_CLASSES, syntheticDataset } from "../src/data/synthetic.ts";

Deno.test("the synthetic set is deterministic by seed and split", () => {
  const a = syntheticDataset({ count: 200, seed: 5 });
  const b = syntheticDataset({ count: 200, seed: 5 });
  assert.deepEqual(a.pixels, b.pixels);
  assert.deepEqual(a.labels, b.labels);
  assert.notDeepEqual(syntheticDataset({ count: 200, seed: 6 }).pixels, a.pixels);
  assert.notDeepEqual(syntheticDataset({ count: 200, seed: 5, split: "test" }).pixels, a.pixels);
  // A prefix does not depend on the count.
  const longer = syntheticDataset({ count: 300, seed: 5 });
  assert.deepEqual(longer.pixels.subarray(0, a.pixels.length), a.pixels);
});

Deno.test("the synthetic set has 10 balanced classes and the default sizes", () => {
  const train = syntheticDataset();
  const test = syntheticDataset({ split: "test" });
  assert.equal(train.length, 5000);
  assert.equal(test.length, 1000);
  assert.deepEqual(train.classNames, SYNTHETIC_CLASSES);
  assert.equal(train.classNames.length, 10);
  for (const ds of [train, test]) {
    const counts = new Array(10).fill(0);
    for (let i = 0; i < ds.length; i++) counts[ds.label(i)]++;
    assert.deepEqual(counts, new Array(10).fill(ds.length / 10));
  }
  const big = syntheticDataset({ count: 20, size: 64 });
  assert.equal(big.height, 64);
  assert.equal(big.image(19).length, 64 * 64 * 3);
});

Deno.test("colour says nothing about the class: per-class mean colours agree", () => {
  const ds = syntheticDataset({ count: 3000, seed: 1 });
  const means = Array.from({ length: 10 }, () => [0, 0, 0]);
  for (let i = 0; i < ds.length; i++) {
    const img = ds.image(i);
    for (let p = 0; p < img.length; p++) means[ds.label(i)][p % 3] += img[p] / 255 / 1024 / 300;
  }
  for (const m of means) {
    for (const v of m) assert.ok(Math.abs(v - 0.5) < 0.06, `class mean colour ${m}`);
  }
});

Deno.test("images have visible structure: foreground and background both present", () => {
  const ds = syntheticDataset({ count: 100, seed: 2 });
  for (let i = 0; i < ds.length; i++) {
    const img = ds.image(i);
    // Luma spread across the image is well above the noise level.
    const luma = (p: number) =>
      0.299 * img[3 * p] + 0.587 * img[3 * p + 1] + 0.114 * img[3 * p + 2];
    let lo = 255, hi = 0;
    for (let p = 0; p < 1024; p++) lo = Math.min(lo, luma(p)), hi = Math.max(hi, luma(p));
    assert.ok(hi - lo > 50, `image ${i} (${ds.classNames[ds.label(i)]}) spans ${lo}..${hi}`);
  }
});
