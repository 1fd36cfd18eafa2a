import assert from "node:assert/strict";
import { CIFAR_MEAN, CIFAR_STD } from "../src/data/augment.ts";
import { multiCropGroups } from "../src/data/views.ts";

Deno.test("the multi-crop recipe is DINO's: two global crops and local crops", () => {
  const groups = multiCropGroups({ height: 32 });
  assert.deepEqual(groups.map((g) => g.count), [1, 1, 6]);
  assert.deepEqual(groups.map((g) => [g.augment.height, g.augment.width]), [
    [32, 32],
    [32, 32],
    [16, 16],
  ]);
  assert.deepEqual(groups.map((g) => g.augment.crop?.scale), [[0.4, 1], [0.4, 1], [0.05, 0.4]]);
  for (const { augment } of groups) {
    assert.deepEqual(augment.crop?.ratio, [3 / 4, 4 / 3]);
    assert.equal(augment.flip, 0.5);
    assert.deepEqual(augment.jitter, {
      brightness: 0.4,
      contrast: 0.4,
      saturation: 0.2,
      hue: 0.1,
      p: 0.8,
    });
    assert.equal(augment.grayscale, 0.2);
    assert.deepEqual([augment.mean, augment.std], [CIFAR_MEAN, CIFAR_STD]);
  }
  assert.deepEqual(
    groups.map((g) => g.augment.blur),
    [1, 0.1, 0.5].map((p) => ({
      kernelSize: 3,
      sigma: [0.1, 2],
      p,
    })),
  );
  assert.deepEqual(groups.map((g) => g.augment.solarize), [
    null,
    { threshold: 128 / 255, p: 0.2 },
    null,
  ]);
});

Deno.test("multi-crop options: sizes, counts, scales and normalisation", () => {
  const mean = [0.5, 0.5, 0.5] as const, std = [0.25, 0.25, 0.25] as const;
  const groups = multiCropGroups({
    height: 224,
    width: 160,
    localCount: 8,
    localHeight: 96,
    localScale: [0.05, 0.25],
    globalScale: [0.14, 1],
    mean,
    std,
  });
  assert.deepEqual(groups.map((g) => [g.count, g.augment.height, g.augment.width]), [
    [1, 224, 160],
    [1, 224, 160],
    [8, 96, 80],
  ]);
  assert.deepEqual(groups.map((g) => g.augment.crop?.scale), [[0.14, 1], [0.14, 1], [
    0.05,
    0.25,
  ]]);
  // About a tenth of the shorter side, odd: SimCLR's 23 taps at 224.
  assert.deepEqual(groups.map((g) => g.augment.blur?.kernelSize), [17, 17, 9]);
  assert.deepEqual(multiCropGroups({ height: 224 })[0].augment.blur?.kernelSize, 23);
  assert.ok(groups.every((g) => g.augment.mean === mean && g.augment.std === std));
  assert.equal(multiCropGroups({ height: 32, localCount: 0 }).length, 2);
});
