import { saveCheckpoint } from "../src/checkpoint.ts";
import { datasetNormalization, loadImages } from "../src/data/load.ts";
import { SelfsupError } from "../src/errors.ts";
import { evaluateBackbone } from "../src/evaluate.ts";
import { finetune, type FinetuneConfig } from "../src/finetune.ts";
import { Gpu } from "../src/gpu/gpu.ts";
import { loadBackbone, randomBackbone } from "../src/model.ts";
import { learningRate } from "../src/optim/schedule.ts";
import { presetConfig } from "../src/presets.ts";
import { pretrain, type PretrainConfig } from "../src/train.ts";
import { assertEquals, assertRejects } from "./_assert.ts";
import {
  assertResumesBitIdentical,
  checkpointOf,
  interruptedRun,
  quiet,
  resume,
  wholeRun,
} from "./_resume.ts";
import { assertSameState, testGpu } from "./_util.ts";

// 64 images in batches of 16: 4 steps an epoch.
const tiny: PretrainConfig = {
  ...presetConfig("default"),
  method: { name: "simclr", temperature: 0.2, projectionDim: 8 },
  dataset: { name: "synthetic", limit: 64 },
  backbone: { name: "resnet18", stem: "imagenet", width: 4 },
  batchSize: 16,
  epochs: 2,
  workers: 1,
  evaluation: null,
  baseline: false,
};
const cosine: PretrainConfig = { ...tiny, schedule: "cosine", warmupEpochs: 1 };

/** Runs `change`, which must reject with `message`, and asserts the checkpoint was kept. */
async function assertRefusedKeepingCheckpoint(
  run: string,
  message: string,
  change: () => Promise<unknown>,
): Promise<void> {
  const before = await Deno.readFile(`${run}/checkpoint.safetensors`);
  await assertRejects(change, SelfsupError, message);
  const after = await Deno.readFile(`${run}/checkpoint.safetensors`);
  assertEquals(after.join(), before.join(), "the checkpoint");
}

Deno.test("a run resumed from its epoch-1 checkpoint ends bit-identical to an uninterrupted one", async () => {
  const gpu = await testGpu();
  const dir = await Deno.makeTempDir();
  await pretrain({ ...tiny, epochs: 1 }, { out: `${dir}/split`, gpu, log: quiet });
  const summary = await resume(gpu, tiny, `${dir}/split`);
  assertEquals([summary.status, summary.steps], ["done", 8], "resumed run");
  assertSameState(await checkpointOf(`${dir}/split`), await wholeRun(gpu, tiny));
});

Deno.test("a run interrupted mid-epoch resumes bit-identical to an uninterrupted one", async () => {
  await assertResumesBitIdentical(tiny, 2, { epoch: 0, batch: 2 });
});

Deno.test("an Adam checkpoint from before Adam kept its step count resumes bit-identical", async () => {
  const gpu = await testGpu();
  const dir = await Deno.makeTempDir();
  await interruptedRun(gpu, tiny, `${dir}/split`, 3);
  const older = await checkpointOf(`${dir}/split`);
  assertEquals([older.meta.optimizer, older.optimizerState.delete("step")], ["adam", true], "");
  await saveCheckpoint(`${dir}/split/checkpoint.safetensors`, older);
  const summary = await resume(gpu, tiny, `${dir}/split`);
  assertEquals([summary.status, summary.steps], ["done", 8], "resumed run");
  assertSameState(await checkpointOf(`${dir}/split`), await wholeRun(gpu, tiny));
});

Deno.test("a run interrupted on an epoch's last batch resumes at the next epoch, bit-identical", async () => {
  await assertResumesBitIdentical(tiny, 4, { epoch: 1, batch: 0 });
});

Deno.test("a cosine schedule with warm-up resumes where it stopped, bit-identical", async () => {
  // Mid-epoch and mid-warm-up, and mid-epoch after it.
  await assertResumesBitIdentical(cosine, 3, { epoch: 0, batch: 3 });
  await assertResumesBitIdentical(cosine, 6, { epoch: 1, batch: 2 });
});

Deno.test("the learning rate logged follows the warm-up and cosine schedule", async () => {
  const gpu = await testGpu();
  const dir = await Deno.makeTempDir();
  await interruptedRun(gpu, cosine, `${dir}/run`, 6);
  await resume(gpu, cosine, `${dir}/run`);
  const steps = (await Deno.readTextFile(`${dir}/run/metrics.jsonl`)).trim().split("\n")
    .map((line) => JSON.parse(line)).filter((record) => record.type === "step");
  // At least the last step of each epoch and the step of the interrupt are logged.
  const logged = steps.map((record) => record.step);
  for (const step of [4, 6, 8]) {
    if (!logged.includes(step)) throw new Error(`step ${step} not logged: ${logged}`);
  }
  const schedule = { base: cosine.learningRate, warmupSteps: 4, totalSteps: 8 };
  for (const { step, learning_rate } of steps) {
    assertEquals(learning_rate, learningRate(step - 1, schedule), `learning rate of step ${step}`);
  }
});

Deno.test("resuming on fewer images than the run was trained on is refused, keeping the checkpoint", async () => {
  const gpu = await testGpu();
  const dir = await Deno.makeTempDir();
  await interruptedRun(gpu, tiny, `${dir}/run`, 3);
  // 48 images make 3 batches an epoch, so batch 3 of epoch 1 would still exist; 32 make 2.
  for (const limit of [48, 32]) {
    const fewer = { ...tiny, dataset: { ...tiny.dataset, limit } };
    await assertRefusedKeepingCheckpoint(
      `${dir}/run`,
      "was the dataset changed?",
      () => resume(gpu, fewer, `${dir}/run`),
    );
  }
});

Deno.test("a finished run evaluates its trained backbone and a random-init baseline", async () => {
  const gpu = await testGpu();
  const dir = await Deno.makeTempDir();
  const config: PretrainConfig = {
    ...tiny,
    epochs: 1,
    evaluation: {
      probe: { epochs: 2, learningRate: 1e-2, batchSize: 64, features: "standardized" },
      knn: { k: 5, temperature: 0.1 },
      batchSize: 256,
      seed: 0,
    },
    baseline: true,
  };
  const summary = await pretrain(config, { out: `${dir}/run`, gpu, log: quiet });
  // The evaluation of the saved, trained backbone and of the seed's initial one, redone here.
  const { mean, std } = datasetNormalization(config.dataset);
  const data = {
    train: await loadImages(config.dataset, "train"),
    test: await loadImages(config.dataset, "test"),
    mean,
    std,
  };
  const trained = await loadBackbone(gpu, `${dir}/run/checkpoint.safetensors`);
  const expected = await evaluateBackbone(
    gpu,
    trained.backbone,
    data,
    config.evaluation!,
    "x",
  );
  const initial = randomBackbone(gpu, trained.meta!.architecture.backbone, config.seed);
  const baseline = await evaluateBackbone(
    gpu,
    initial.backbone,
    data,
    config.evaluation!,
    "x",
  );
  assertEquals(
    [summary.probe, summary.knn],
    [{ top1: expected.probe!.top1, train_top1: expected.probe!.trainTop1 }, expected.knn],
    "trained",
  );
  assertEquals(
    summary.baseline,
    { probe: { top1: baseline.probe!.top1 }, knn: baseline.knn },
    "random init",
  );
  // Evaluated at all: a trained backbone's features differ from its initial ones.
  if (JSON.stringify(expected) === JSON.stringify(baseline)) {
    throw new Error(`trained and random init evaluate alike: ${JSON.stringify(expected)}`);
  }
  const records = (await Deno.readTextFile(`${dir}/run/metrics.jsonl`)).trim().split("\n")
    .map((line) => JSON.parse(line)).filter((r) => r.type === "probe" || r.type === "knn");
  assertEquals(
    records.map((r) => [r.type, r.model, r.top1]),
    [
      ["probe", "trained", expected.probe!.top1],
      ["knn", "trained", expected.knn!.top1],
      ["probe", "random init", baseline.probe!.top1],
      ["knn", "random init", baseline.knn!.top1],
    ],
    "metrics",
  );
  assertEquals(
    JSON.parse(await Deno.readTextFile(`${dir}/run/summary.json`)),
    JSON.parse(JSON.stringify(summary)),
    "summary.json",
  );
  // plot.svg draws a bar per accuracy, labelled with its value.
  const plot = await Deno.readTextFile(`${dir}/run/plot.svg`);
  for (const value of records.map((r) => r.top1)) {
    if (!plot.includes(`>${(100 * value).toFixed(1)}%<`)) {
      throw new Error(`plot.svg lacks the accuracy ${value}`);
    }
  }
  assertEquals(plot.split(">random init<").length - 1, 2, "bars of the random init");
  for (const b of [trained.block, initial.block]) b.destroy();
});

Deno.test("a non-finite loss stops the run and keeps the last good checkpoint", async () => {
  const gpu = await testGpu();
  const dir = await Deno.makeTempDir();
  await pretrain({ ...tiny, epochs: 1 }, { out: `${dir}/run`, gpu, log: quiet });
  // An absurd learning rate sends the parameters to infinity within a step or two.
  await assertRefusedKeepingCheckpoint(
    `${dir}/run`,
    "keeps the last good state",
    () => resume(gpu, { ...tiny, learningRate: 1e38 }, `${dir}/run`),
  );
  assertEquals((await checkpointOf(`${dir}/run`)).meta.progress.epoch, 1, "epoch");
});

Deno.test("pretrain gives back every GPU buffer it takes, once", async () => {
  // A buffer given back twice sits in the pool twice and is handed to two tensors at once.
  const gpu = await testGpu();
  const dir = await Deno.makeTempDir();
  const held = new Map<GPUBuffer, string>();
  const twice: string[] = [];
  const { acquire, release } = gpu;
  gpu.acquire = (bytes, label) => {
    const buffer = acquire.call(gpu, bytes, label);
    held.set(buffer, label);
    return buffer;
  };
  gpu.release = (buffer) => {
    if (!held.delete(buffer)) twice.push(buffer.label);
    release.call(gpu, buffer);
  };
  try {
    await interruptedRun(gpu, tiny, `${dir}/run`, 3);
    await resume(gpu, tiny, `${dir}/run`);
  } finally {
    gpu.acquire = acquire;
    gpu.release = release;
  }
  assertEquals(twice, [], "buffers given back twice");
  assertEquals([...held.values()], [], "buffers kept");
});

Deno.test("pretrain called without a device destroys the one it makes, and not a caller's", async () => {
  const destroyed: Gpu[] = [];
  const { destroy } = Gpu.prototype;
  Gpu.prototype.destroy = function (this: Gpu) {
    destroyed.push(this);
    destroy.call(this);
  };
  const dir = await Deno.makeTempDir();
  try {
    await pretrain(tiny, { out: `${dir}/own`, log: () => {} });
    assertEquals(destroyed.length, 1, "the device pretrain made");
    await pretrain(tiny, { out: `${dir}/given`, gpu: await testGpu(), log: () => {} });
    assertEquals(destroyed.length, 1, "the caller's device too");
    const tuning: FinetuneConfig = {
      checkpoint: null,
      backbone: tiny.backbone,
      dataset: tiny.dataset,
      normalization: datasetNormalization(tiny.dataset),
      epochs: 1,
      batchSize: 16,
      optimizer: "adamw",
      learningRate: 1e-3,
      weightDecay: 0,
      warmupEpochs: 0,
      schedule: "constant",
      cropScale: [0.25, 1],
      seed: 0,
      workers: 1,
    };
    await finetune(tuning, { out: `${dir}/tuned`, log: () => {} });
    assertEquals(destroyed.length, 2, "the device finetune made");
  } finally {
    Gpu.prototype.destroy = destroy;
  }
});
