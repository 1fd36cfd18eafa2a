// Evaluation against tests/fixtures/evaluation.safetensors (made by make_evaluation.py, a
// float64 numpy reference): the weighted kNN monitor, the linear probe and its
// standardisation; then feature extraction and evaluateBackbone on a small ResNet-18.
import { augmentPreset } from "../src/data/augment.ts";
import { subset } from "../src/data/dataset.ts";
import { syntheticDataset } from "../src/data/synthetic.ts";
import { evaluateBackbone } from "../src/evaluate.ts";
import { randomBackbone } from "../src/model.ts";
import type { BackboneConfig } from "../src/nn/backbone.ts";
import {
  extractFeatures,
  type Features,
  knnAccuracy,
  linearProbe,
  type ProbeResult,
} from "../src/probe.ts";
import { assertEquals } from "./_assert.ts";
import { assertClose, loadFixtureFile, testGpu } from "./_util.ts";

const reference = await loadFixtureFile(
  new URL("./fixtures/evaluation.safetensors", import.meta.url).pathname,
);

/** Features of the fixture, with `labels` in place of its own when given. */
function features(name: string, labels?: Int32Array): Features {
  const values = reference.get(name);
  const [rows, dim] = reference.shape(name);
  const own = reference.has(`${name}_labels`)
    ? Int32Array.from(reference.get(`${name}_labels`))
    : new Int32Array(rows);
  return { features: values, labels: labels ?? own, dim };
}

const prediction = (name: string) => Int32Array.from(reference.get(name));

/**
 * The probe on a fixture case's standardised splits, `transform`ed: Adam at 1e-2 on batches of
 * 64, for `epochs` (30) epochs.
 */
async function probeCase(
  name: string,
  { transform = (f: Features) => f, epochs = 30 } = {},
): Promise<ProbeResult> {
  const train = transform(features(`${name}.train`));
  const test = transform(features(`${name}.test`));
  const numClasses = reference.meta[`${name}.classes`] as number;
  return await linearProbe(await testGpu(), train, test, {
    epochs,
    learningRate: 1e-2,
    batchSize: 64,
    features: "standardized",
    seed: 0,
    numClasses,
  });
}

Deno.test("kNN accuracy matches the numpy reference: votes weighted by exp(s/T), k past N", async () => {
  const gpu = await testGpu();
  const train = features("knn.train");
  const test = features("knn.test");
  const numClasses = reference.meta["knn.classes"] as number;
  const configs = reference.meta["knn.configs"] as [number, number][];
  assertEquals(configs.some(([k]) => k > train.labels.length), true, "a k larger than N");
  for (const [k, temperature] of configs) {
    const key = `k${k}_t${temperature}`;
    // Queries in chunks of 7 for one setting: 30 test features cross chunk edges.
    const options = { k, temperature, numClasses, chunk: k === 5 ? 7 : undefined };
    // Labelled with the reference's predictions, every test feature must be "right".
    const agreement = await knnAccuracy(
      gpu,
      train,
      features("knn.test", prediction(`knn.prediction.${key}`)),
      options,
    );
    assertEquals(agreement, 1, `share of the reference's predictions made, ${key}`);
    assertEquals(
      await knnAccuracy(gpu, train, test, options),
      reference.meta[`knn.top1.${key}`],
      `top-1, ${key}`,
    );
  }
});

Deno.test("kNN ties: equal similarities keep the earlier training image, equal votes the lower class", async () => {
  const gpu = await testGpu();
  const train = features("ties.train");
  for (const [k, temperature] of [[1, 0.1], [2, 0.1], [3, 0.1], [3, 1], [200, 0.1]]) {
    const key = `k${k}_t${temperature}`;
    const expected = prediction(`ties.prediction.${key}`);
    const agreement = await knnAccuracy(gpu, train, features("ties.test", expected), {
      k,
      temperature,
      numClasses: 2,
    });
    assertEquals(agreement, 1, `share of the reference's predictions [${expected}] made, ${key}`);
  }
});

Deno.test("linear probe standardises with the training split's statistics: tiny, offset features are separable", async () => {
  const result = await probeCase("separable");
  assertEquals(
    [result.trainTop1, result.top1],
    [reference.meta["separable.train_top1"], reference.meta["separable.top1"]],
    "train and test top-1",
  );
  if (!Number.isFinite(result.loss)) throw new Error(`loss ${result.loss}`);
});

Deno.test("linear probe reaches the reference logistic regression's accuracy on overlapping classes", async () => {
  const result = await probeCase("overlap");
  // Adam on batches of 64 and full-batch gradient descent stop at different minima of a
  // convex loss; on 512 test features they disagree on a few. Chance is 1/3.
  assertClose([result.trainTop1, result.top1], [
    reference.meta["overlap.train_top1"] as number,
    reference.meta["overlap.top1"] as number,
  ], { atol: 0.02, rtol: 0, label: "train and test top-1" });
});

Deno.test("linear probe is unchanged by rescaling and shifting each feature", async () => {
  const scale = [1e-3, 50, 2, 0.1, 7];
  const shift = [100, -3, 0, 1e3, 5];
  const affine = (f: Features): Features => ({
    ...f,
    features: f.features.map((v, i) => scale[i % f.dim] * v + shift[i % f.dim]),
  });
  const plain = await probeCase("overlap", { epochs: 5 });
  const moved = await probeCase("overlap", { transform: affine, epochs: 5 });
  // Standardised, both are the same features up to float32 rounding.
  assertClose(
    [moved.loss, moved.trainTop1, moved.top1],
    [plain.loss, plain.trainTop1, plain.top1],
    {
      atol: 2 / 512,
      rtol: 1e-3,
      label: "loss, train and test top-1",
    },
  );
});

const architecture: BackboneConfig & { width: number } = {
  name: "resnet18",
  stem: "imagenet",
  width: 4,
};
// Deliberately unlike CIFAR's statistics, so that normalising with others shows.
const normalization = { mean: [0.9, 0.1, 0.5], std: [0.05, 1, 0.3] } as const;

Deno.test("extractFeatures runs the backbone in eval mode over the dataset in order, padding the last batch", async () => {
  const gpu = await testGpu();
  const { backbone, block } = randomBackbone(gpu, architecture, 4);
  const model = { backbone };
  // Running statistics unlike a fresh network's, so eval mode is seen to use them.
  const values = await block.read();
  for (const [name] of block.runningStats) {
    values.set(
      name,
      values.get(name)!.map((_, k) => name.endsWith("var") ? 0.5 + (k % 3) / 4 : (k % 5 - 2) / 10),
    );
  }
  block.load(values, "test");
  const dataset = syntheticDataset({ split: "test", count: 10 });
  const transform = { ...augmentPreset("eval", 32), ...normalization };
  const done: number[] = [];
  const batched = await extractFeatures(gpu, model.backbone, dataset, {
    batchSize: 4,
    transform,
    onProgress: (n) => done.push(n),
  });
  assertEquals(done, [4, 8, 10], "progress");
  assertEquals(batched.dim, 8 * architecture.width, "feature size");
  assertEquals(
    Array.from(batched.labels),
    Array.from({ length: 10 }, (_, i) => dataset.label(i)),
    "labels",
  );
  // One image at a time, from the last: each row is its own image's features.
  for (const i of [9, 0, 5]) {
    const alone = await extractFeatures(gpu, model.backbone, subset(dataset, Int32Array.of(i)), {
      batchSize: 4,
      transform,
    });
    assertClose(batched.features.subarray(i * batched.dim, (i + 1) * batched.dim), alone.features, {
      atol: 1e-5,
      rtol: 1e-4,
      label: `features of image ${i}`,
    });
  }
  // Features past the last ReLU: most must be alive for the comparisons above to see rows.
  const alive = batched.features.filter((v) => v > 1e-3).length / batched.features.length;
  if (!(alive > 0.5)) throw new Error(`only ${alive} of the features are positive`);
  block.destroy();
});

Deno.test("evaluateBackbone probes and kNN-classifies the features of both splits, normalised as given", async () => {
  const gpu = await testGpu();
  const { backbone, block } = randomBackbone(gpu, architecture, 5);
  const model = { backbone };
  const data = {
    train: syntheticDataset({ split: "train", count: 64 }),
    test: syntheticDataset({ split: "test", count: 40 }),
    ...normalization,
  };
  const config = {
    probe: { epochs: 3, learningRate: 1e-2, batchSize: 16, features: "standardized" as const },
    knn: { k: 5, temperature: 0.1 },
    batchSize: 16,
    seed: 3,
  };
  const result = await evaluateBackbone(gpu, model.backbone, data, config, "test");
  const transform = { ...augmentPreset("eval", 32), ...normalization };
  const extract = (dataset: typeof data.train) =>
    extractFeatures(gpu, model.backbone, dataset, { batchSize: 16, transform });
  const [train, test] = [await extract(data.train), await extract(data.test)];
  const numClasses = data.train.classNames.length;
  const probe = await linearProbe(gpu, train, test, { ...config.probe, seed: 3, numClasses });
  const knn = await knnAccuracy(gpu, train, test, { ...config.knn, numClasses });
  assertEquals(result, { probe, knn: { top1: knn, k: 5 } }, "evaluation");
  for (const value of [probe.top1, probe.trainTop1, knn]) {
    if (!(value >= 0 && value <= 1)) throw new Error(`accuracy ${value}`);
  }
  const knnOnly = await evaluateBackbone(gpu, model.backbone, data, {
    ...config,
    probe: null,
  }, "test");
  assertEquals(knnOnly, { probe: undefined, knn: { top1: knn, k: 5 } }, "without the probe");
  const probeOnly = await evaluateBackbone(gpu, model.backbone, data, {
    ...config,
    knn: null,
  }, "test");
  assertEquals(probeOnly.knn, undefined, "without kNN");
  block.destroy();
});
