import assert from "node:assert/strict";
import { SelfsupError } from "../src/errors.ts";
import { Augmenter, augmentPreset } from "../src/data/augment.ts";
import { epochPermutation, evalBatches, TwoViewLoader } from "../src/data/batcher.ts";
import { syntheticDataset } from "../src/data/synthetic.ts";
import { Random } from "../src/data/random.ts";

const dataset = syntheticDataset({ count: 300, seed: 4 });
const VIEW = 3 * 32 * 32;

async function collect(workers: number, epochs: number[]) {
  using loader = new TwoViewLoader(dataset, { batchSize: 64, seed: 11, workers, prefetch: 2 });
  const out = [];
  for (const epoch of epochs) {
    for await (const batch of loader.epoch(epoch)) {
      out.push({
        views: batch.views.slice(),
        labels: batch.labels.slice(),
        indices: batch.indices.slice(),
        step: batch.step,
      });
    }
  }
  return out;
}

Deno.test("epoch permutations depend only on seed and epoch", () => {
  const a = epochPermutation(1000, 3, 0);
  assert.deepEqual([...a].sort((x, y) => x - y), Array.from({ length: 1000 }, (_, i) => i));
  assert.deepEqual(epochPermutation(1000, 3, 0), a);
  assert.notDeepEqual(epochPermutation(1000, 3, 1), a);
  assert.notDeepEqual(epochPermutation(1000, 4, 0), a);
});

Deno.test("batches are identical with 0, 1 and 2 workers", async () => {
  const inline = await collect(0, [0, 1]);
  const one = await collect(1, [0, 1]);
  const two = await collect(2, [0, 1]);
  assert.equal(inline.length, 2 * 4); // ⌊300 / 64⌋ per epoch, last partial batch dropped
  assert.deepEqual(one, inline);
  assert.deepEqual(two, inline);
  // Epoch 1 is a new shuffle with new augmentations.
  assert.notDeepEqual(inline[4].indices, inline[0].indices);
  const seen = new Set(inline.slice(0, 4).flatMap((b) => [...b.indices]));
  assert.equal(seen.size, 256);
});

Deno.test("epochs may run out of order; batches started ahead are then discarded", async () => {
  const skipping = await collect(2, [0, 2]);
  const direct = await collect(0, [2]);
  assert.deepEqual(skipping.slice(4), direct);
});

Deno.test("rows i and i+B are two views of image i, and labels follow indices", async () => {
  // With the deterministic eval recipe both views must equal the plain image.
  const recipe = augmentPreset("eval", 32);
  using loader = new TwoViewLoader(dataset, {
    batchSize: 32,
    seed: 1,
    workers: 1,
    augment: recipe,
  });
  const plain = new Augmenter(recipe, 32, 32);
  const expected = new Float32Array(VIEW);
  for await (const batch of loader.epoch(3)) {
    assert.equal(batch.views.length, 2 * 32 * VIEW);
    for (let k = 0; k < 32; k++) {
      const i = batch.indices[k];
      assert.equal(batch.labels[k], dataset.label(i));
      plain.apply(dataset.image(i), new Random(0), expected, 0);
      assert.deepEqual(batch.views.subarray(k * VIEW, (k + 1) * VIEW), expected);
      assert.deepEqual(batch.views.subarray((32 + k) * VIEW, (33 + k) * VIEW), expected);
    }
    if (batch.step === 2) break; // stopping early must leave the loader usable
  }
  let count = 0;
  for await (const _ of loader.epoch(4)) count++;
  assert.equal(count, 9);
});

Deno.test("the two views of an image differ under the seed recipe", async () => {
  using loader = new TwoViewLoader(dataset, { batchSize: 16, seed: 2, workers: 0 });
  for await (const batch of loader.epoch(0)) {
    for (let k = 0; k < 16; k++) {
      const a = batch.views.subarray(k * VIEW, (k + 1) * VIEW);
      const b = batch.views.subarray((16 + k) * VIEW, (17 + k) * VIEW);
      assert.notDeepEqual(a, b);
    }
    break;
  }
});

Deno.test("asymmetric recipes apply one per view", async () => {
  const eval32 = augmentPreset("eval", 32);
  const flipped = { ...eval32, flip: 1 };
  using loader = new TwoViewLoader(dataset, {
    batchSize: 8,
    seed: 0,
    workers: 0,
    augment: [eval32, flipped],
  });
  for await (const batch of loader.epoch(0)) {
    const a = batch.views.subarray(0, VIEW), b = batch.views.subarray(8 * VIEW, 9 * VIEW);
    for (let p = 0; p < VIEW; p++) assert.equal(b[p], a[p - (p % 32) + 31 - (p % 32)]);
    break;
  }
});

Deno.test("evaluation batches keep dataset order and the last partial batch", () => {
  const plain = new Augmenter(augmentPreset("eval", 32), 32, 32);
  const expected = new Float32Array(VIEW);
  const sizes: number[] = [];
  let next = 0;
  for (const batch of evalBatches(dataset, { batchSize: 128 })) {
    sizes.push(batch.size);
    assert.equal(batch.images.length, batch.size * VIEW);
    for (let k = 0; k < batch.size; k++, next++) {
      assert.equal(batch.indices[k], next);
      assert.equal(batch.labels[k], dataset.label(next));
    }
    plain.apply(dataset.image(batch.indices[0]), new Random(0), expected, 0);
    assert.deepEqual(batch.images.subarray(0, VIEW), expected);
  }
  assert.deepEqual(sizes, [128, 128, 44]);
});

Deno.test("bad batch sizes are clear errors", () => {
  assert.throws(
    () => new TwoViewLoader(dataset, { batchSize: 301, seed: 0, workers: 0 }),
    (e) => e instanceof SelfsupError && /batch of 301 from a dataset of 300 images/.test(e.message),
  );
  assert.throws(() => [...evalBatches(dataset, { batchSize: 0 })], SelfsupError);
});

Deno.test("an epoch resumed at batch k yields the batches it would have had from k on", async () => {
  const whole = await collect(1, [1]);
  using loader = new TwoViewLoader(dataset, { batchSize: 64, seed: 11, workers: 2 });
  const resumed = [];
  for await (const batch of loader.epoch(1, 2)) {
    resumed.push({
      views: batch.views.slice(),
      labels: batch.labels.slice(),
      indices: batch.indices.slice(),
      step: batch.step,
    });
  }
  assert.deepEqual(resumed, whole.slice(2));
});
