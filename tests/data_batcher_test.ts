import assert from "node:assert/strict";
import { SelfsupError } from "../src/errors.ts";
import { type AugmentConfig, Augmenter, augmentPreset } from "../src/data/augment.ts";
import {
  epochPermutation,
  evalBatches,
  type MultiViewBatch,
  MultiViewLoader,
} from "../src/data/batcher.ts";
import { syntheticDataset } from "../src/data/synthetic.ts";
import { Random } from "../src/data/random.ts";
import { multiCropGroups, type ViewGroup } from "../src/data/views.ts";

const dataset = syntheticDataset({ count: 300, seed: 4 });
const VIEW = 3 * 32 * 32;
const seedRecipe = augmentPreset("simclr-seed", 32);
/** SimCLR's views: two of the seed recipe. */
const twoViews: ViewGroup[] = [{ count: 2, augment: seedRecipe }];

/** A copy of a batch that outlives the loader's buffer reuse. */
function copy(batch: MultiViewBatch) {
  return {
    groups: batch.groups.map((g) => g.slice()),
    labels: batch.labels.slice(),
    indices: batch.indices.slice(),
    step: batch.step,
  };
}

async function collect(
  workers: number,
  epochs: number[],
  groups: readonly ViewGroup[] = twoViews,
  first = 0,
) {
  using loader = new MultiViewLoader(dataset, {
    batchSize: 64,
    seed: 11,
    groups,
    workers,
    prefetch: 2,
  });
  const out = [];
  for (const epoch of epochs) {
    for await (const batch of loader.epoch(epoch, first)) out.push(copy(batch));
  }
  return out;
}

type Batches = Awaited<ReturnType<typeof collect>>;

/**
 * Asserts two runs gave the same batches, bit for bit, naming the first difference (a plain
 * deepEqual of whole batches would build a diff too large to print).
 */
function assertSameBatches(actual: Batches, expected: Batches): void {
  assert.equal(actual.length, expected.length, "number of batches");
  actual.forEach((batch, n) => {
    const other = expected[n];
    assert.equal(batch.step, other.step, `step of batch ${n}`);
    assert.deepEqual(batch.indices, other.indices, `indices of batch ${n}`);
    assert.deepEqual(batch.labels, other.labels, `labels of batch ${n}`);
    assert.equal(batch.groups.length, other.groups.length, `groups of batch ${n}`);
    batch.groups.forEach((group, g) => {
      const a = new Uint32Array(group.buffer, group.byteOffset, group.length);
      const b = new Uint32Array(other.groups[g].buffer, other.groups[g].byteOffset, a.length);
      const at = a.length === b.length ? a.findIndex((bits, k) => bits !== b[k]) : 0;
      assert.ok(
        at === -1,
        `batch ${n}, group ${g}: element ${at} is ${group[at]}, expected ${other.groups[g][at]}`,
      );
    });
  });
}

/** SHA-256 of every batch's views (groups in order) and indices, in hex. */
async function digest(batches: Batches): Promise<string> {
  const parts = batches.flatMap((b) => [...b.groups, b.indices]);
  const bytes = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let offset = 0;
  for (const p of parts) {
    bytes.set(new Uint8Array(p.buffer, p.byteOffset, p.byteLength), offset);
    offset += p.byteLength;
  }
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(hash, (x) => x.toString(16).padStart(2, "0")).join("");
}

Deno.test("epoch permutations depend only on seed and epoch", () => {
  const a = epochPermutation(1000, 3, 0);
  assert.deepEqual([...a].sort((x, y) => x - y), Array.from({ length: 1000 }, (_, i) => i));
  assert.deepEqual(epochPermutation(1000, 3, 0), a);
  assert.notDeepEqual(epochPermutation(1000, 3, 1), a);
  assert.notDeepEqual(epochPermutation(1000, 4, 0), a);
});

Deno.test("SimCLR's batches are bit-identical to those of the two-view loader", async () => {
  // Digests of epochs 0 and 1 as TwoViewLoader (commit ca6ad33) made them, with the seed recipe
  // and with an asymmetric pair, one view each with blur or solarize.
  const symmetric = await digest(await collect(0, [0, 1]));
  assert.equal(symmetric, "7d2c8ea785c79e729b47a8a554df2dd24815a8b2a1b3428433e07b42bb212150");
  const asymmetric = await digest(
    await collect(0, [0, 1], [
      { count: 1, augment: { ...seedRecipe, blur: { kernelSize: 3, sigma: [0.1, 2], p: 1 } } },
      { count: 1, augment: { ...seedRecipe, solarize: { threshold: 0.5, p: 0.2 } } },
    ]),
  );
  assert.equal(asymmetric, "f428e5e135811b3b900affd849dd9e35f1dc0811512b07b014cf41b465fa2207");
});

Deno.test("batches are identical with 0, 1 and 2 workers", async () => {
  const inline = await collect(0, [0, 1]);
  const one = await collect(1, [0, 1]);
  const two = await collect(2, [0, 1]);
  assert.equal(inline.length, 2 * 4); // ⌊300 / 64⌋ per epoch, last partial batch dropped
  assertSameBatches(one, inline);
  assertSameBatches(two, inline);
  // Epoch 1 is a new shuffle with new augmentations.
  assert.notDeepEqual(inline[4].indices, inline[0].indices);
  const seen = new Set(inline.slice(0, 4).flatMap((b) => [...b.indices]));
  assert.equal(seen.size, 256);
});

Deno.test("epochs may run out of order; batches started ahead are then discarded", async () => {
  const skipping = await collect(2, [0, 2]);
  const direct = await collect(0, [2]);
  assertSameBatches(skipping.slice(4), direct);
});

Deno.test("rows i and i+B are two views of image i, and labels follow indices", async () => {
  // With the deterministic eval recipe both views must equal the plain image.
  const recipe = augmentPreset("eval", 32);
  using loader = new MultiViewLoader(dataset, {
    batchSize: 32,
    seed: 1,
    workers: 1,
    groups: [{ count: 2, augment: recipe }],
  });
  const plain = new Augmenter(recipe, 32, 32);
  const expected = new Float32Array(VIEW);
  for await (const batch of loader.epoch(3)) {
    const [views] = batch.groups;
    assert.equal(views.length, 2 * 32 * VIEW);
    for (let k = 0; k < 32; k++) {
      const i = batch.indices[k];
      assert.equal(batch.labels[k], dataset.label(i));
      plain.apply(dataset.image(i), new Random(0), expected, 0);
      assert.deepEqual(views.subarray(k * VIEW, (k + 1) * VIEW), expected);
      assert.deepEqual(views.subarray((32 + k) * VIEW, (33 + k) * VIEW), expected);
    }
    if (batch.step === 2) break; // stopping early must leave the loader usable
  }
  let count = 0;
  for await (const _ of loader.epoch(4)) count++;
  assert.equal(count, 9);
});

Deno.test("the two views of an image differ under the seed recipe", async () => {
  using loader = new MultiViewLoader(dataset, {
    batchSize: 16,
    seed: 2,
    workers: 0,
    groups: twoViews,
  });
  for await (const batch of loader.epoch(0)) {
    const [views] = batch.groups;
    for (let k = 0; k < 16; k++) {
      const a = views.subarray(k * VIEW, (k + 1) * VIEW);
      const b = views.subarray((16 + k) * VIEW, (17 + k) * VIEW);
      assert.notDeepEqual(a, b);
    }
    break;
  }
});

Deno.test("asymmetric recipes apply one per group", async () => {
  const eval32 = augmentPreset("eval", 32);
  const flipped = { ...eval32, flip: 1 };
  using loader = new MultiViewLoader(dataset, {
    batchSize: 8,
    seed: 0,
    workers: 0,
    groups: [{ count: 1, augment: eval32 }, { count: 1, augment: flipped }],
  });
  for await (const batch of loader.epoch(0)) {
    const [a, b] = batch.groups;
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
    () => new MultiViewLoader(dataset, { batchSize: 301, seed: 0, workers: 0, groups: twoViews }),
    (e) => e instanceof SelfsupError && /batch of 301 from a dataset of 300 images/.test(e.message),
  );
  assert.throws(() => [...evalBatches(dataset, { batchSize: 0 })], SelfsupError);
});

Deno.test("an epoch resumed at batch k yields the batches it would have had from k on", async () => {
  const whole = await collect(1, [1]);
  assertSameBatches(await collect(2, [1], twoViews, 2), whole.slice(2));
});

// Multi-crop: two 32×32 global crops (one group each) and six 16×16 local crops.
const multiCrop = multiCropGroups({ height: 32 });

Deno.test("multi-crop batches are identical with 0, 1 and 2 workers, and resume mid-epoch", async () => {
  const inline = await collect(0, [0, 1], multiCrop);
  assert.equal(inline.length, 8);
  assertSameBatches(await collect(1, [0, 1], multiCrop), inline);
  assertSameBatches(await collect(2, [0, 1], multiCrop), inline);
  assertSameBatches(await collect(2, [1], multiCrop, 3), inline.slice(7));
});

Deno.test("view j of image i draws from stream 1 + V·i + j, at row v·B + k of its group", async () => {
  const groups: ViewGroup[] = [
    ...multiCrop,
    // A deterministic group after the random ones: its rows are the plain resized image.
    { count: 2, augment: augmentPreset("eval", 8, 12) },
  ];
  const views = 1 + 1 + 6 + 2;
  const b = 5, seed = 3, epoch = 2;
  using loader = new MultiViewLoader(dataset, { batchSize: b, seed, groups, workers: 1 });
  const augmenters = groups.map((g) => new Augmenter(g.augment, 32, 32));
  for await (const batch of loader.epoch(epoch, 7)) {
    assert.deepEqual(
      batch.groups.map((g) => g.length),
      groups.map((g) => g.count * b * 3 * g.augment.height * g.augment.width),
    );
    for (let k = 0; k < b; k++) {
      const i = batch.indices[k];
      let j = 0;
      groups.forEach(({ count }, g) => {
        const size = augmenters[g].viewSize;
        const expected = new Float32Array(size);
        for (let v = 0; v < count; v++, j++) {
          const rng = new Random(seed, epoch, 1 + views * i + j);
          augmenters[g].apply(dataset.image(i), rng, expected, 0);
          const row = batch.groups[g].subarray((v * b + k) * size, (v * b + k + 1) * size);
          assert.deepEqual(row, expected, `image ${i}, group ${g}, view ${v}`);
        }
      });
    }
    break;
  }
});

Deno.test("a batch's groups lie back to back in one buffer", async () => {
  using loader = new MultiViewLoader(dataset, {
    batchSize: 4,
    seed: 0,
    groups: multiCrop,
    workers: 1,
  });
  for await (const batch of loader.epoch(0)) {
    const [global1, global2, local] = batch.groups;
    assert.equal(global2.buffer, global1.buffer);
    assert.equal(local.buffer, global1.buffer);
    assert.equal(global2.byteOffset, global1.byteOffset + global1.byteLength);
    assert.equal(local.byteOffset, global2.byteOffset + global2.byteLength);
    // So the two global groups are one (2B, 3, 32, 32) array.
    const globals = new Float32Array(global1.buffer, global1.byteOffset, 2 * global1.length);
    assert.deepEqual(globals.subarray(global1.length), global2);
    break;
  }
});

Deno.test("bad view groups are clear errors", () => {
  const make = (groups: ViewGroup[]) => () =>
    new MultiViewLoader(dataset, { batchSize: 8, seed: 0, workers: 0, groups });
  const recipe: AugmentConfig = seedRecipe;
  const cases: [ViewGroup[], RegExp][] = [
    [[], /no view groups/],
    [[{ count: 0, augment: recipe }], /group 0 has count 0, expected a whole number ≥ 1/],
    [[...twoViews, { count: 1.5, augment: recipe }], /group 1 has count 1.5/],
    [[{ count: 1, augment: { ...recipe, width: 0 } }], /group 0 is 32×0/],
    [[{ count: 2 ** 24, augment: recipe }], /at most 14316557 views per image/],
  ];
  for (const [groups, message] of cases) {
    assert.throws(make(groups), (e) => e instanceof SelfsupError && message.test(e.message));
  }
});
