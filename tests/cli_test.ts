// The command-line tasks through their CLI: bad input (one clear line, a non-zero exit,
// nothing overwritten); Ctrl-C, which saves a checkpoint that --resume continues from
// bit-identically; every flag the README lists, --help, and bench.
// deno-lint-ignore no-import-prefix
import { Image } from "npm:imagescript@1.3.1";
import { loadCheckpoint, saveCheckpoint } from "../src/checkpoint.ts";
import { type ImageDataset, limit } from "../src/data/dataset.ts";
import { defaultCacheDir } from "../src/data/download.ts";
import type { RGB } from "../src/checkpoint.ts";
import { type DatasetConfig, datasetNormalization, loadImages } from "../src/data/load.ts";
import { backboneFeatures, evaluateBackbone } from "../src/evaluate.ts";
import { parseSafetensors } from "../src/io/safetensors.ts";
import { loadBackbone, randomBackbone } from "../src/model.ts";
import type { Backbone } from "../src/nn/backbone.ts";
import type { ProbeFeatures } from "../src/probe.ts";
import { learningRate } from "../src/optim/schedule.ts";
import { presetConfig } from "../src/presets.ts";
import { assertEquals } from "./_assert.ts";
import { assertOneLineError, exists, flagsGiven, root, task, taskCommand, tiny } from "./_cli.ts";
import { assertClose, assertSameState, testGpu } from "./_util.ts";

/** A task that must succeed; its stdout parsed as JSON. */
async function json(name: string, args: string[]) {
  const result = await task(name, [...args, "--json"]);
  assertEquals(result.code, 0, `${name} ${args.join(" ")}: ${result.stderr}`);
  return JSON.parse(result.stdout);
}

Deno.test("unknown flags and bad values are refused with one line", async () => {
  assertOneLineError(await task("pretrain", ["--bogus"]), "unknown option '--bogus'");
  assertOneLineError(await task("pretrain", ["--batch-size", "-3"]), "whole number ≥ 1");
  assertOneLineError(await task("pretrain", ["--temperature", "0"]), "number > 0");
  assertOneLineError(await task("pretrain", ["--epochs", "abc"]), "whole number ≥ 1");
  assertOneLineError(await task("pretrain", ["--dataset", "mnist"]), "Allowed choices");
  // Two seeds above 2^53 could be one number.
  assertOneLineError(await task("pretrain", ["--seed", "1e20"]), "whole number ≥ 0 below 2^53");
  assertOneLineError(await task("finetune", ["--crop-min", "0"]), "a number in (0, 1]");
  assertOneLineError(await task("probe", []), "--checkpoint PATH or --random-init");
  assertOneLineError(await task("embed", ["--out", "x.safetensors"]), "--checkpoint");
});

Deno.test("missing or corrupt data and checkpoints are one-line errors", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.mkdir(`${dir}/cifar-10-batches-bin`);
  for (
    const name of [
      "data_batch_1",
      "data_batch_2",
      "data_batch_3",
      "data_batch_4",
      "data_batch_5",
      "test_batch",
    ]
  ) {
    await Deno.writeFile(`${dir}/cifar-10-batches-bin/${name}.bin`, new Uint8Array(3073 * 3));
  }
  assertOneLineError(
    await task("pretrain", [
      "--dataset",
      "cifar10",
      "--data",
      `${dir}/cifar-10-batches-bin`,
      "--out",
      `${dir}/run`,
    ]),
    "data_batch_1.bin",
  );
  assertOneLineError(
    await task("pretrain", [
      "--dataset",
      "folder",
      "--data",
      `${dir}/no-such-folder`,
      "--out",
      `${dir}/run`,
    ]),
    "no-such-folder",
  );
  await Deno.writeTextFile(`${dir}/garbage.safetensors`, "not a checkpoint at all");
  assertOneLineError(
    await task("probe", ["--checkpoint", `${dir}/garbage.safetensors`]),
    "garbage.safetensors",
  );
  assertOneLineError(
    await task("probe", ["--checkpoint", `${dir}/absent.safetensors`]),
    "no such file",
  );
  // Text that is not text: one line each, naming the file.
  await Deno.writeFile(`${dir}/binary.txt`, Uint8Array.of(0x7f, 0x45, 0x4c, 0x46, 0, 1));
  assertOneLineError(
    await task("pretrain", [
      ...["--method", "mlm", "--dataset", "text", "--data", `${dir}/binary.txt`],
      ...["--out", `${dir}/run`],
    ]),
    "binary.txt as text: it holds NUL bytes",
  );
  await Deno.writeTextFile(`${dir}/empty.txt`, " \n");
  await Deno.writeFile(`${dir}/latin1.txt`, Uint8Array.of(0x63, 0x61, 0x66, 0xe9, 0x0a));
  for (
    const [file, what] of [["empty", "it is empty"], [
      "latin1",
      "it is not valid UTF-8 (at byte 3)",
    ]]
  ) {
    assertOneLineError(
      await task("pretrain", [
        ...["--method", "mlm", "--dataset", "text", "--data", `${dir}/${file}.txt`],
        ...["--out", `${dir}/run`],
      ]),
      `${file}.txt as text: ${what}`,
    );
  }
  // A caption without its image, and an image without its caption.
  const png = await new Image(4, 4).fill(Image.rgbaToColor(90, 20, 200, 255)).encode();
  for (const split of ["train", "test"]) {
    for (const c of ["cats", "dogs"]) {
      await Deno.mkdir(`${dir}/photos/${split}/${c}`, { recursive: true });
      await Deno.writeFile(`${dir}/photos/${split}/${c}/1.png`, png);
      await Deno.writeTextFile(`${dir}/photos/${split}/${c}/1.txt`, `a photo of ${c}`);
    }
  }
  const clip = ["--method", "clip", "--dataset", "captions", "--data", `${dir}/photos`];
  await Deno.writeTextFile(`${dir}/photos/train/dogs/2.txt`, "an orphan caption");
  assertOneLineError(
    await task("pretrain", [...clip, "--out", `${dir}/run`]),
    "dogs/2.txt has no image beside it",
  );
  await Deno.remove(`${dir}/photos/train/dogs/2.txt`);
  await Deno.remove(`${dir}/photos/train/cats/1.txt`);
  assertOneLineError(await task("pretrain", [...clip, "--out", `${dir}/run`]), "has no caption");
  // A failed start leaves no run behind to block the next one.
  assertEquals(await exists(`${dir}/run/checkpoint.safetensors`), false, "no checkpoint");
});

Deno.test("a batch too large for the adapter is refused before training", async () => {
  const dir = await Deno.makeTempDir();
  const result = await task("pretrain", [
    "--stem",
    "cifar",
    "--width",
    "64",
    "--batch-size",
    "4096",
    "--out",
    `${dir}/run`,
  ]);
  assertOneLineError(result, "smaller batch");
  assertEquals(await exists(`${dir}/run/checkpoint.safetensors`), false, "no checkpoint");
});

Deno.test("probe and embed of a run give the library's results; the run is not overwritten; a checkpoint of another architecture is refused", async () => {
  const dir = await Deno.makeTempDir();
  const first = await task("pretrain", [
    ...tiny,
    "--epochs",
    "1",
    "--no-probe",
    "--out",
    `${dir}/run`,
  ]);
  assertEquals(first.code, 0, `first run: ${first.stderr}`);
  const before = await Deno.readFile(`${dir}/run/checkpoint.safetensors`);
  await assertProbeAndEmbed(`${dir}/run/checkpoint.safetensors`, dir);
  assertOneLineError(
    await task("pretrain", [...tiny, "--out", `${dir}/run`]),
    "already holds a run",
  );
  assertOneLineError(
    await task("pretrain", ["--resume", `${dir}/run`]),
    "has finished its 1 epochs",
  );
  assertOneLineError(
    await task("embed", [
      "--checkpoint",
      `${dir}/run/checkpoint.safetensors`,
      "--out",
      `${dir}/no/f.safetensors`,
    ]),
    "no folder",
  );
  assertOneLineError(
    await task("pretrain", ["--resume", `${dir}/run`, "--width", "8"]),
    "drop --width",
  );
  const config = JSON.parse(await Deno.readTextFile(`${dir}/run/config.json`));
  await Deno.writeTextFile(
    `${dir}/run/config.json`,
    JSON.stringify({ ...config, backbone: { ...config.backbone, width: 8 } }),
  );
  assertOneLineError(
    await task("pretrain", ["--resume", `${dir}/run`, "--epochs", "2"]),
    '"width":4',
  );
  assertEquals(
    Array.from(await Deno.readFile(`${dir}/run/checkpoint.safetensors`)).join(),
    Array.from(before).join(),
    "checkpoint untouched",
  );
});

/**
 * What `probe --json` should say of `backbone` with these flags: the library's own evaluation,
 * in this process, as the task reports it.
 */
async function libraryProbe(
  backbone: Backbone,
  normalization: { readonly mean: RGB; readonly std: RGB },
  dataset: DatasetConfig,
  { epochs, lr, batchSize, features = "standardized", k, seed }:
    & Record<"epochs" | "lr" | "batchSize" | "k" | "seed", number>
    & { features?: ProbeFeatures },
) {
  const result = await evaluateBackbone(await testGpu(), backbone, {
    train: await loadImages(dataset, "train"),
    test: await loadImages(dataset, "test"),
    ...normalization,
  }, {
    probe: { epochs, learningRate: lr, batchSize, features },
    knn: { k, temperature: 0.1 },
    batchSize,
    seed,
  }, "expected");
  return {
    probe: {
      top1: result.probe!.top1,
      train_top1: result.probe!.trainTop1,
      loss: result.probe!.loss,
    },
    knn: result.knn,
  };
}

/**
 * `probe` and `embed` on a checkpoint of the tiny run give what the library gives for it
 * in this process: the same accuracies for the same settings, the same features.
 */
async function assertProbeAndEmbed(checkpoint: string, dir: string): Promise<void> {
  const probe = await json("probe", ["--checkpoint", checkpoint, "--epochs", "1", "--k", "5"]);
  const gpu = await testGpu();
  const { backbone, meta, block } = await loadBackbone(gpu, checkpoint);
  const normalization = meta!.normalization;
  const dataset = meta!.config.dataset as DatasetConfig;
  const expected = await libraryProbe(backbone, normalization, dataset, {
    ...{ epochs: 1, lr: 1e-3, batchSize: 256, k: 5, seed: 0 },
  });
  assertEquals(
    [probe.train_images, probe.test_images, probe.probe, probe.knn],
    [64, 1000, expected.probe, expected.knn],
    "probe",
  );
  for (const top1 of [probe.probe.top1, probe.probe.train_top1, probe.knn.top1]) {
    if (!(top1 >= 0 && top1 <= 1)) throw new Error(`accuracy ${top1}`);
  }
  // --force replaces an earlier output.
  const out = `${dir}/features.safetensors`;
  await Deno.writeTextFile(out, "an earlier output");
  const firstTen = limit(await loadImages(dataset, "train"), 10);
  await assertEmbeds(checkpoint, out, ["--limit", "10", "--force"], "train", firstTen);
  block.destroy();
}

/**
 * `embed --checkpoint checkpoint --out out --split split flags…` writes what the library
 * computes in this process for `images`: the features of the width-4 backbone and the labels.
 */
async function assertEmbeds(
  checkpoint: string,
  out: string,
  flags: string[],
  split: "train" | "test",
  images: ImageDataset,
): Promise<void> {
  const embed = await task("embed", [
    ...["--checkpoint", checkpoint, "--out", out, "--split", split, ...flags],
  ]);
  assertEquals(embed.code, 0, `embed: ${embed.stderr}`);
  const file = parseSafetensors(await Deno.readFile(out), "features");
  const features = file.tensors.get("features")!;
  const labels = file.tensors.get("labels")!;
  const n = images.length;
  assertEquals([features.shape, labels.shape], [[n, 32], [n]], "[N, 8·width] and [N]");
  const gpu = await testGpu();
  const { backbone, meta, block } = await loadBackbone(gpu, checkpoint);
  const own = await backboneFeatures(gpu, backbone, images, meta!.normalization, 256, "x");
  assertClose(features.data as Float32Array, own.features, { atol: 1e-5, label: "features" });
  if (!own.features.some((v) => v > 0)) throw new Error("the features are all zero");
  assertEquals(Array.from(labels.data, Number), Array.from(own.labels), "labels");
  assertEquals(file.metadata.split, split, "split");
  block.destroy();
}

/** Writes `count` PNGs of distinct colours into `dir`/c0 … c3, round robin. */
async function writeImageFolder(dir: string, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const image = new Image(8, 8);
    image.fill(Image.rgbaToColor((37 * i) % 256, (91 * i + 40) % 256, (53 * i + 80) % 256, 255));
    image.drawBox(1 + (i % 5), 2, 3, 4, Image.rgbaToColor(255 - 6 * i, 30, 200, 255));
    await Deno.mkdir(`${dir}/c${i % 4}`, { recursive: true });
    await Deno.writeFile(`${dir}/c${i % 4}/${i}.png`, await image.encode());
  }
}

/**
 * Runs `fn`, then removes the image-folder caches the tasks it ran left in the user's cache
 * folder (the tasks keep their own environment, whose cache also holds Deno's and Mesa's).
 */
async function removingFolderCaches(fn: () => Promise<void>): Promise<void> {
  const folder = `${defaultCacheDir()}/image-folders`;
  const list = async () => {
    try {
      return (await Array.fromAsync(Deno.readDir(folder))).map((entry) => entry.name);
    } catch {
      return [];
    }
  };
  const before = new Set(await list());
  try {
    await fn();
  } finally {
    for (const name of await list()) if (!before.has(name)) await Deno.remove(`${folder}/${name}`);
  }
}

Deno.test("Ctrl-C saves a checkpoint mid-epoch; --resume with moved --data and other --workers ends bit-identical to an uninterrupted run", () =>
  removingFolderCaches(async () => {
    const dir = await Deno.makeTempDir();
    // 40 images, a fifth held out: 32 training images, 4 batches an epoch.
    await writeImageFolder(`${dir}/photos`, 40);
    const run = [
      ...["--dataset", "folder", "--image-size", "32", "--stem", "imagenet", "--width", "4"],
      ...["--projection-dim", "8", "--batch-size", "8", "--epochs", "2", "--lr", "0.003"],
      ...["--weight-decay", "0.0001", "--temperature", "0.3", "--no-probe"],
    ];
    const child = taskCommand("pretrain", [
      ...run,
      ...["--data", `${dir}/photos`, "--workers", "1", "--out", `${dir}/run`],
    ]).spawn();
    // Ctrl-C as soon as the task listens for it, while it loads its data and compiles its
    // kernels: it stops after its first step, inside the first epoch.
    const stderr = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
    let message = "";
    let interrupted = false;
    for (;;) {
      const { value, done } = await stderr.read();
      if (done) break;
      message += value;
      if (!interrupted && message.includes("pretrain: run folder")) {
        child.kill("SIGINT");
        interrupted = true;
      }
    }
    await child.stdout.cancel();
    assertEquals((await child.status).code, 130, `exit status (${message})`);
    if (!message.includes(`deno task pretrain --resume ${dir}/run`)) {
      throw new Error(`no hint to resume in: ${message}`);
    }
    const checkpoint = `${dir}/run/checkpoint.safetensors`;
    const { progress } = (await loadCheckpoint(checkpoint)).meta;
    if (progress.epoch !== 0 || !(progress.batch > 0 && progress.batch < 4) || progress.done) {
      throw new Error(`not mid-epoch: ${JSON.stringify(progress)}`);
    }
    const saved = await Deno.readFile(checkpoint);

    // The data moves; a copy with fewer images is refused.
    await Deno.rename(`${dir}/photos`, `${dir}/moved`);
    await writeImageFolder(`${dir}/fewer`, 30);
    assertOneLineError(
      await task("pretrain", ["--resume", `${dir}/run`, "--data", `${dir}/fewer`]),
      "was the dataset changed?",
    );
    assertEquals((await Deno.readFile(checkpoint)).join(), saved.join(), "checkpoint kept");
    const resumed = await json("pretrain", [
      ...["--resume", `${dir}/run`, "--data", `${dir}/moved`, "--workers", "0"],
    ]);
    assertEquals([resumed.status, resumed.steps], ["done", 8], "the resumed run");
    const whole = await json("pretrain", [
      ...run,
      ...["--data", `${dir}/moved`, "--workers", "2", "--out", `${dir}/whole`],
    ]);
    assertEquals([whole.status, whole.steps], ["done", 8], "the uninterrupted run");
    assertSameState(
      await loadCheckpoint(checkpoint),
      await loadCheckpoint(`${dir}/whole/checkpoint.safetensors`),
    );

    // Extending a finished run trains on, and the run folder remembers the new length.
    const extended = await json("pretrain", ["--resume", `${dir}/run`, "--epochs", "3"]);
    assertEquals(extended.steps, 12, "steps after extending");
    assertEquals(JSON.parse(await Deno.readTextFile(`${dir}/run/config.json`)).epochs, 3, "config");
    // probe finds the folder where --data says, not where the run left it.
    await Deno.rename(`${dir}/moved`, `${dir}/moved-again`);
    const probe = await json("probe", [
      ...["--checkpoint", checkpoint, "--data", `${dir}/moved-again`, "--epochs", "1", "--k", "3"],
    ]);
    assertEquals(
      [probe.dataset, probe.train_images, probe.test_images],
      ["folder", 32, 8],
      "probe",
    );
    // So does embed, with --dataset given, in batches that leave a partial one.
    const trainedOn = (await loadCheckpoint(checkpoint)).meta.config.dataset as DatasetConfig;
    const test = await loadImages({ ...trainedOn, path: `${dir}/moved-again` }, "test");
    await assertEmbeds(
      checkpoint,
      `${dir}/test.safetensors`,
      [
        ...["--dataset", "folder", "--data", `${dir}/moved-again`, "--batch-size", "3"],
      ],
      "test",
      test,
    );
  }));

Deno.test("pretrain's flags: --preset seed with its recipe and normalisation, --optimizer, --schedule cosine --warmup-epochs, --no-baseline, --probe-*", async () => {
  const dir = await Deno.makeTempDir();
  const summary = await json("pretrain", [
    ...["--preset", "seed", "--method", "simclr", "--dataset", "synthetic", ...tiny],
    ...["--epochs", "2", "--optimizer", "lars", "--schedule", "cosine", "--warmup-epochs", "1"],
    ...["--seed", "3", "--no-baseline", "--probe-epochs", "2", "--probe-lr", "0.01"],
    ...["--probe-batch-size", "32", "--probe-features", "standardized", "--out", `${dir}/run`],
  ]);
  const config = JSON.parse(await Deno.readTextFile(`${dir}/run/config.json`));
  // From the seed preset, where it differs from the default one: temperature, learning rate,
  // augmentation and normalisation (and the kNN monitor); from the flags, the rest.
  const seed = presetConfig("seed");
  const fromSeed = (preset: typeof seed) => [
    preset.method.temperature,
    preset.learningRate,
    preset.augmentation,
    preset.normalization,
  ];
  const expected = fromSeed(seed);
  for (const [i, value] of fromSeed(presetConfig("default")).entries()) {
    if (JSON.stringify(value) === JSON.stringify(expected[i])) throw new Error("presets alike");
  }
  assertEquals(
    [...fromSeed(config), config.evaluation.knn],
    [...expected, seed.evaluation!.knn],
    "from the seed preset",
  );
  assertEquals(
    [config.optimizer, config.schedule, config.warmupEpochs, config.seed, config.baseline],
    ["lars", "cosine", 1, 3, false],
    "from the flags",
  );
  assertEquals(
    config.evaluation.probe,
    { epochs: 2, learningRate: 0.01, batchSize: 32, features: "standardized" },
    "probe",
  );
  if (seed.evaluation!.probe!.features !== "raw") throw new Error("the seed probes raw features");
  assertEquals(config.dataset, { name: "synthetic", limit: 64, seed: 3 }, "dataset");
  const checkpoint = await loadCheckpoint(`${dir}/run/checkpoint.safetensors`);
  assertEquals(
    [checkpoint.meta.optimizer, [...checkpoint.optimizerState.keys()]],
    ["lars", ["momentum"]],
    "optimizer state",
  );
  // What probe, embed and torchvision users read to normalise their images.
  assertEquals(checkpoint.meta.normalization, seed.normalization, "checkpoint normalisation");
  // Warm-up over the first epoch's 4 steps, then cosine decay to 0 at step 8.
  const records = (await Deno.readTextFile(`${dir}/run/metrics.jsonl`)).trim().split("\n")
    .map((line) => JSON.parse(line));
  const steps = records.filter((r) => r.type === "step");
  if (!steps.some((r) => r.step === 4)) throw new Error("the end of epoch 1 is not logged");
  for (const { step, learning_rate } of steps) {
    const expected = learningRate(step - 1, {
      base: seed.learningRate,
      warmupSteps: 4,
      totalSteps: 8,
    });
    assertEquals(learning_rate, expected, `learning rate of step ${step}`);
  }
  // Evaluated with a probe and kNN, without the random-init baseline.
  assertEquals(
    records.filter((r) => r.type === "probe" || r.type === "knn").map((r) => [r.type, r.model]),
    [["probe", "trained"], ["knn", "trained"]],
    "evaluations",
  );
  assertEquals(
    [summary.status, summary.steps, summary.baseline],
    ["done", 8, undefined],
    "summary",
  );
  for (const top1 of [summary.probe.top1, summary.probe.train_top1, summary.knn.top1]) {
    if (!(top1 >= 0 && top1 <= 1)) throw new Error(`accuracy ${top1}`);
  }
});

Deno.test("probe --random-init --features raw evaluates the seed's randomly initialised network", async () => {
  const result = await json("probe", [
    ...["--random-init", "--backbone", "resnet18", "--stem", "imagenet", "--width", "4"],
    ...["--dataset", "synthetic"],
    ...["--limit", "64", "--epochs", "2", "--lr", "0.01", "--batch-size", "32", "--k", "5"],
    ...["--seed", "2", "--features", "raw"],
  ]);
  const gpu = await testGpu();
  const dataset = { name: "synthetic", limit: 64 } as const;
  const normalization = datasetNormalization(dataset);
  const { backbone, block } = randomBackbone(
    gpu,
    { name: "resnet18", stem: "imagenet", width: 4 },
    2,
  );
  const expected = await libraryProbe(backbone, normalization, dataset, {
    epochs: 2,
    lr: 0.01,
    batchSize: 32,
    features: "raw",
    k: 5,
    seed: 2,
  });
  assertEquals(
    [result.model, result.train_images, result.probe, result.knn],
    ["random init", 64, expected.probe, expected.knn],
    "probe",
  );
  block.destroy();
});

/** The flags README.md lists for each task, from its section "### `deno task <name>`". */
async function readmeFlags(): Promise<Map<string, string[]>> {
  const readme = await Deno.readTextFile(`${root}README.md`);
  const flags = new Map<string, string[]>();
  for (const section of readme.split(/\n(?=##)/)) {
    const name = /^### `deno task (\w+)`/.exec(section)?.[1];
    if (name) flags.set(name, [...new Set(section.match(/--[a-z][a-z0-9-]*/g))]);
  }
  assertEquals(
    [...flags.keys()],
    ["pretrain", "probe", "embed", "finetune", "bench"],
    "README's tasks",
  );
  return flags;
}

Deno.test("--help and each task's README section list the same flags", async () => {
  for (const [name, documented] of await readmeFlags()) {
    const help = await task(name, ["--help"]);
    assertEquals(help.code, 0, `${name} --help: ${help.stderr}`);
    const listed = new Set(
      help.stdout.match(/^ {2}(?:-\w, )?--[a-z][a-z0-9-]*/gm)
        ?.map((option) => option.replace(/^ {2}(-\w, )?/, "")),
    );
    assertEquals(documented.filter((flag) => !listed.has(flag)), [], `${name} --help lacks`);
    listed.delete("--help");
    assertEquals(
      [...listed].filter((flag) => !documented.includes(flag)),
      [],
      `flags of ${name} missing from its README section`,
    );
  }
});

Deno.test("bench --json at tiny sizes reports every measurement, with finite figures", async () => {
  const result = await json("bench", [
    ...["--stem", "imagenet", "--width", "4", "--batch-size", "2", "--seconds", "0.05"],
  ]);
  assertEquals(
    Object.keys(result),
    [
      ...["adapter", "adapterClass", "method", "precision", "stem", "width", "batch"],
      ...["conv", "step", "augment"],
    ],
    "keys",
  );
  assertEquals([result.stem, result.width, result.batch], ["imagenet", 4, 2], "shape");
  const positive = (value: unknown, what: string) => {
    if (!(typeof value === "number" && Number.isFinite(value) && value > 0)) {
      throw new Error(`${what} is ${value}`);
    }
  };
  // Every distinct convolution of an ImageNet-stem ResNet-18, each pass.
  assertEquals(result.conv.length, 3 * 11, "convolution rows");
  for (const row of result.conv) {
    assertEquals(
      Object.keys(row),
      ["name", "pass", "count", "gflop", "milliseconds", "gflops"],
      "row",
    );
    for (const key of ["count", "gflop", "milliseconds", "gflops"]) positive(row[key], key);
    assertClose([row.gflops], [row.gflop / (row.milliseconds / 1000)], {
      rtol: 1e-9,
      label: row.name,
    });
  }
  const step = result.step;
  for (
    const key of [
      "gflopPerStep",
      "milliseconds",
      "imagesPerSecond",
      "gflops",
      "megabytes",
      "dispatches",
    ]
  ) {
    positive(step[key], `step.${key}`);
  }
  for (const key of ["viewsPerSecondOneCore", "viewsPerSecondAllCores", "cores"]) {
    positive(result.augment[key], `augment.${key}`);
  }
  // One part alone; CIFAR-10 loading is timed where the data set is at hand.
  const cifar = Deno.env.get("CIFAR10_DIR");
  const only = await task("bench", [
    ...["--only", "augment", "--seconds", "0.05", "--json"],
    ...["--cifar", cifar ?? "/nonexistent/cifar-10-batches-bin"],
  ]);
  if (cifar) {
    assertEquals(only.code, 0, `bench --only augment: ${only.stderr}`);
    const augment = JSON.parse(only.stdout);
    assertEquals([augment.conv, augment.step], [undefined, undefined], "only augment");
    positive(augment.augment.loadCifarSeconds, "augment.loadCifarSeconds");
  } else {
    assertOneLineError(only, "/nonexistent/cifar-10-batches-bin");
  }
  // Another method's step, on a ViT: its FLOPs counted by the layers, attention included.
  const vit = await json("bench", [
    ...["--only", "step", "--method", "byol", "--backbone", "vit", "--vit-dim", "16"],
    ...["--vit-depth", "1", "--vit-heads", "2", "--patch-size", "8", "--batch-size", "2"],
    ...["--seconds", "0.05", "--profile"],
  ]);
  assertEquals([vit.method, vit.step.method, vit.step.views, vit.conv], [
    "byol",
    "byol",
    2,
    undefined,
  ], "ViT step");
  for (const key of ["gflopPerStep", "gflops", "imagesPerSecond"]) positive(vit.step[key], key);
  // --profile: every dispatch of the step timed, by kernel.
  const calls = vit.step.profile.reduce((sum: number, k: { calls: number }) => sum + k.calls, 0);
  assertEquals(calls, vit.step.dispatches, "profiled dispatches");
  // Masked language modelling's step, on the default text encoder over BERT's vocabulary.
  const mlm = await json("bench", [
    ...["--only", "step", "--method", "mlm", "--tokenizer", "bert", "--batch-size", "2"],
    ...["--seconds", "0.05"],
  ]);
  assertEquals([mlm.step.method, mlm.step.views, mlm.conv], ["mlm", 0, undefined], "MLM step");
  for (const key of ["gflopPerStep", "gflops", "imagesPerSecond"]) positive(mlm.step[key], key);
  // A ResNet step on f16 activations: the loss scale's passes and the guarded update included.
  const half = await json("bench", [
    ...["--only", "step", "--precision", "f16", "--stem", "imagenet", "--width", "4"],
    ...["--batch-size", "2", "--seconds", "0.05"],
  ]);
  assertEquals([half.precision, half.step.method], ["f16", "simclr"], "f16 step");
  for (const key of ["gflopPerStep", "gflops", "imagesPerSecond"]) positive(half.step[key], key);
  // And a ViT's (MAE's: its encoder in f16, its decoder in f32).
  const halfVit = await json("bench", [
    ...["--only", "step", "--precision", "f16", "--method", "mae", "--backbone", "vit"],
    ...["--vit-dim", "16", "--vit-depth", "1", "--vit-heads", "2", "--patch-size", "8"],
    ...["--batch-size", "2", "--seconds", "0.05", "--profile"],
  ]);
  assertEquals([halfVit.precision, halfVit.step.method], ["f16", "mae"], "f16 ViT step");
  positive(halfVit.step.imagesPerSecond, "f16 ViT step images/s");
  const kernels = halfVit.step.profile.map((k: { name: string }) => k.name);
  for (const name of ["layer_norm_forward", "layer_norm_forward_f16", "softmax_forward_f16"]) {
    if (!kernels.includes(name)) throw new Error(`the f16 ViT step lacks ${name}`);
  }
  // The matrix kernels on one N³ product, as the layers compute it.
  const gemm = await json("bench", ["--only", "gemm", "--gemm-size", "128", "--seconds", "0.05"]);
  // Twelve rows where the adapter has shader-f16 (llvmpipe has): four as the layers compute the
  // product (the fourth on f16 operands), then the four on the tiled kernels with each tile
  // forced, named in the row and in the kernels it ran.
  type GemmRow = { size: number; name: string; tile?: number; kernels: string[]; gflops: number };
  const rows: GemmRow[] = gemm.gemm;
  assertEquals([gemm.conv, gemm.step, rows.map((r) => r.size)], [
    undefined,
    undefined,
    Array(12).fill(128),
  ], "only gemm");
  assertEquals(rows[3].name, "linear forward, f16 operands");
  assertEquals(rows.map((r) => r.tile), [...Array(4), ...Array(4).fill(64), ...Array(4).fill(128)]);
  assertEquals(rows.slice(4).map((r) => r.kernels[0]), [
    "linear_forward_tiled",
    "conv2d_forward_tiled",
    "conv2d_backward_weight_tiled",
    "linear_forward_tiled_f16",
    "linear_forward_tiled128",
    "conv2d_forward_tiled128",
    "conv2d_backward_weight_tiled128",
    "linear_forward_tiled128_f16",
  ], "forced tiles' kernels");
  assertEquals(rows[9].name, "1×1 convolution forward, 128×128 tiles");
  for (const row of rows) positive(row.gflops, `${row.name} GFLOP/s`);
  // A product whose matrices no adapter can bind: one line that says the largest that fits.
  const huge = await task("bench", ["--only", "gemm", "--gemm-size", "65536"]);
  assertOneLineError(huge, "the largest size here is");
  // CLIP's step: a ResNet-18 and its text encoder.
  const clip = await json("bench", [
    ...["--only", "step", "--method", "clip", "--width", "4", "--batch-size", "2"],
    ...["--seconds", "0.05"],
  ]);
  assertEquals([clip.step.method, clip.step.views], ["clip", 1], "CLIP step");
  for (const key of ["gflopPerStep", "gflops", "imagesPerSecond"]) positive(clip.step[key], key);
});

/** Each method's flags, with values unlike its defaults, and what config.json must hold. */
const methodFlags: [string, string[], Record<string, unknown>][] = [
  [
    "simclr",
    ["--temperature", "0.3", "--projection-dim", "8", "--hidden-dim", "24"],
    { temperature: 0.3, projectionDim: 8, hiddenDim: 24 },
  ],
  [
    "moco",
    [
      ...["--temperature", "0.15", "--projection-dim", "8", "--hidden-dim", "16"],
      ...["--queue-size", "32", "--momentum", "0.9", "--final-momentum", "0.95"],
      ...["--bn-splits", "2", "--symmetric", "--exclude-bias-norm"],
    ],
    { temperature: 0.15, queueSize: 32, momentum: 0.9, finalMomentum: 0.95, symmetric: true },
  ],
  [
    "byol",
    [
      ...["--projection-dim", "8", "--hidden-dim", "16", "--predictor-hidden-dim", "12"],
      ...["--momentum", "0.9", "--final-momentum", "0.99", "--solarize", "0.5"],
      ...["--no-exclude-bias-norm", "--optimizer", "sgd", "--optimizer-momentum", "0.8"],
      ...["--predictor-lr-scale", "3"],
    ],
    {
      hiddenDim: 16,
      predictorHiddenDim: 12,
      momentum: 0.9,
      finalMomentum: 0.99,
      solarize: 0.5,
      predictorLrScale: 3,
    },
  ],
  [
    "dino",
    [
      ...["--output-dim", "32", "--hidden-dim", "16", "--bottleneck-dim", "8"],
      ...["--student-temperature", "0.2", "--teacher-temperature", "0.05"],
      ...["--warmup-teacher-temperature", "0.03", "--warmup-teacher-epochs", "1"],
      ...["--center-momentum", "0.8", "--momentum", "0.99", "--final-momentum", "1"],
      ...["--clip-grad", "2", "--freeze-last-layer", "1", "--local-crops", "2"],
      ...["--local-size", "16", "--no-norm-last-layer"],
    ],
    {
      outputDim: 32,
      bottleneckDim: 8,
      studentTemperature: 0.2,
      clipGrad: 2,
      localCrops: 2,
      normLastLayer: false,
    },
  ],
  [
    "swav",
    [
      ...["--projection-dim", "8", "--hidden-dim", "16", "--prototypes", "20"],
      ...["--temperature", "0.2", "--epsilon", "0.1", "--sinkhorn-iterations", "2"],
      ...["--queue-size", "32", "--queue-start-epoch", "0", "--freeze-prototypes", "1"],
      ...["--local-crops", "1", "--local-size", "16"],
    ],
    { prototypes: 20, epsilon: 0.1, queueSize: 32, localCrops: 1, localSize: 16 },
  ],
  ["rotation", [], {}],
  [
    "mae",
    [
      ...["--backbone", "vit", "--vit-dim", "16", "--vit-depth", "1", "--vit-heads", "2"],
      ...["--patch-size", "8", "--vit-positions", "sincos", "--mask-ratio", "0.5"],
      ...["--decoder-dim", "16", "--decoder-depth", "1", "--decoder-heads", "2"],
      "--no-norm-pix-loss",
    ],
    { maskRatio: 0.5, decoderDim: 16, decoderDepth: 1, decoderHeads: 2, normPixLoss: false },
  ],
  [
    "mlm",
    [
      ...["--dataset", "synthetic-text", "--backbone", "text", "--tokenizer", "bytes"],
      ...["--context-length", "32", "--text-dim", "16", "--text-depth", "1", "--text-heads", "2"],
      ...["--pooling", "first", "--mask-ratio", "0.2", "--masking", "static", "--nsp"],
      ...["--init-std", "0.05"],
    ],
    { maskRatio: 0.2, masking: "static", nsp: true, initStd: 0.05 },
  ],
  [
    "clip",
    [
      ...["--dataset", "synthetic-captions", "--projection-dim", "8", "--text-dim", "16"],
      ...["--text-depth", "1", "--text-heads", "2", "--context-length", "64"],
      ...["--text-attention", "bidirectional"],
    ],
    { projectionDim: 8 },
  ],
];

Deno.test("every method trains through the CLI, its flags reaching the run's configuration", async () => {
  const dir = await Deno.makeTempDir();
  const small = ["--limit", "64", "--batch-size", "16", "--workers", "1", "--epochs", "1"];
  for (const [method, flags, expected] of methodFlags) {
    const resnet = ["mae", "mlm"].includes(method) ? [] : ["--stem", "imagenet", "--width", "4"];
    const run = await task("pretrain", [
      ...["--method", method, ...small, ...resnet, ...flags, "--no-probe"],
      ...["--out", `${dir}/${method}`],
    ]);
    assertEquals(run.code, 0, `${method}: ${run.stderr}`);
    const config = JSON.parse(await Deno.readTextFile(`${dir}/${method}/config.json`));
    assertEquals(config.method.name, method, "method");
    for (const [key, value] of Object.entries(expected)) {
      assertEquals(config.method[key], value, `${method} ${key}`);
    }
    const { meta } = await loadCheckpoint(`${dir}/${method}/checkpoint.safetensors`);
    assertEquals(meta.architecture.method, method, `${method} checkpoint`);
  }
  // The ResNet keeps the default preset's optimizer (a ViT's is the next test's).
  const simclr = JSON.parse(await Deno.readTextFile(`${dir}/simclr/config.json`));
  assertEquals(
    [simclr.optimizer, simclr.learningRate, simclr.warmupEpochs, simclr.schedule],
    ["adam", 2e-3, 0, "constant"],
    "simclr on the ResNet",
  );
  const moco = JSON.parse(await Deno.readTextFile(`${dir}/moco/config.json`));
  assertEquals(moco.excludeBiasAndNorm, true, "moco --exclude-bias-norm");
  const byol = JSON.parse(await Deno.readTextFile(`${dir}/byol/config.json`));
  assertEquals(
    [byol.excludeBiasAndNorm, byol.optimizer, byol.optimizerMomentum],
    [false, "sgd", 0.8],
    "byol's optimizer flags",
  );
  assertOneLineError(
    await task("pretrain", [
      ...["--method", "mlm", "--text-attention", "causal", ...small, "--no-probe"],
      ...["--out", `${dir}/x`],
    ]),
    "masked language modelling reads both ways",
  );
  const mae = JSON.parse(await Deno.readTextFile(`${dir}/mae/config.json`));
  assertEquals(
    mae.backbone,
    { name: "vit", imageSize: 32, patchSize: 8, dim: 16, depth: 1, heads: 2, positions: "sincos" },
    "mae's backbone",
  );
  // Another method's flag, and a flag of the other backbone, are one line each.
  assertOneLineError(
    await task("pretrain", ["--method", "simclr", "--no-symmetric", "--out", `${dir}/x`]),
    "--symmetric is an option of moco",
  );
  assertOneLineError(
    await task("pretrain", ["--norm-pix-loss", "--out", `${dir}/x`]),
    "--norm-pix-loss is an option of mae",
  );
  assertOneLineError(
    await task("pretrain", ["--method", "byol", "--norm-last-layer", "--out", `${dir}/x`]),
    "--norm-last-layer is an option of dino",
  );
  assertOneLineError(
    await task("pretrain", ["--backbone", "vit", "--width", "8", "--out", `${dir}/x`]),
    "--width is for --backbone resnet18",
  );
  assertOneLineError(
    await task("pretrain", ["--method", "mae", "--backbone", "resnet18", "--out", `${dir}/x`]),
    "MAE needs a Vision Transformer",
  );
  // MLM's text encoder: its backbone and its pooling, which probe may change; text flags
  // for another backbone and text for an image method are refused.
  const mlm = JSON.parse(await Deno.readTextFile(`${dir}/mlm/config.json`));
  assertEquals(
    [mlm.dataset.name, mlm.backbone.name, mlm.backbone.dim, mlm.backbone.pooling],
    ["synthetic-text", "text", 16, "first"],
    "mlm's data and encoder",
  );
  const probe = await json("probe", [
    ...["--checkpoint", `${dir}/mlm/checkpoint.safetensors`, "--pooling", "mean"],
    ...["--limit", "50", "--epochs", "1", "--k", "5"],
  ]);
  assertEquals([probe.dataset, probe.train_images], ["synthetic-text", 50], "probe of text");
  assertOneLineError(
    await task("pretrain", ["--method", "mlm", "--no-nsp", "--width", "8", "--out", `${dir}/x`]),
    "--width is for --backbone resnet18",
  );
  assertOneLineError(
    await task("pretrain", ["--dataset", "synthetic-text", "--out", `${dir}/x`]),
    "SimCLR trains on images",
  );
  // CLIP's text encoder beside its image encoder, made bidirectional by --text-attention.
  const clip = JSON.parse(await Deno.readTextFile(`${dir}/clip/config.json`));
  assertEquals(
    [clip.backbone.name, clip.text.dim, clip.text.causal, clip.text.pooling],
    ["resnet18", 16, false, "last"],
    "clip's encoders",
  );
});

Deno.test("--backbone vit trains at the preset's transformer recipe, and the optimizer flags given still win", async () => {
  const dir = await Deno.makeTempDir();
  const run = await task("pretrain", [
    ...["--backbone", "vit", "--vit-dim", "16", "--vit-depth", "1", "--vit-heads", "2"],
    ...["--limit", "32", "--batch-size", "16", "--workers", "1", "--epochs", "1", "--no-probe"],
    ...["--projection-dim", "8", "--lr", "1e-3", "--out", `${dir}/vit`],
  ]);
  assertEquals(run.code, 0, run.stderr);
  const config = JSON.parse(await Deno.readTextFile(`${dir}/vit/config.json`));
  assertEquals(
    [config.optimizer, config.learningRate, config.weightDecay],
    ["adamw", 1e-3, 0.05],
    "AdamW at the --lr given, the recipe's weight decay",
  );
  assertEquals([config.warmupEpochs, config.schedule], [0.5, "cosine"], "warm-up, cosine");
  // SimCLR's own options stay the default preset's.
  assertEquals(config.method, { name: "simclr", temperature: 0.2, projectionDim: 8 }, "method");
});

Deno.test("finetune trains a checkpoint's backbone or a random one on labels, resumes, and refuses bad input", async () => {
  const dir = await Deno.makeTempDir();
  const pre = await task("pretrain", [
    ...tiny,
    "--epochs",
    "1",
    "--no-probe",
    "--out",
    `${dir}/pre`,
  ]);
  assertEquals(pre.code, 0, pre.stderr);
  const checkpoint = `${dir}/pre/checkpoint.safetensors`;
  const tuned = await json("finetune", [
    ...["--checkpoint", checkpoint, "--limit", "64", "--epochs", "2", "--batch-size", "16"],
    ...["--optimizer", "sgd", "--lr", "0.05", "--weight-decay", "0.001", "--warmup-epochs", "1"],
    ...["--schedule", "constant", "--crop-min", "0.5", "--seed", "1", "--workers", "1"],
    ...["--out", `${dir}/tuned`],
  ]);
  assertEquals([tuned.status, tuned.steps, tuned.init], ["done", 8, checkpoint], "fine-tuned");
  if (!(tuned.top1 >= 0 && tuned.top1 <= 1)) throw new Error(`top-1 ${tuned.top1}`);
  const config = JSON.parse(await Deno.readTextFile(`${dir}/tuned/config.json`));
  assertEquals(
    [config.optimizer, config.learningRate, config.weightDecay, config.schedule, config.cropScale],
    ["sgd", 0.05, 0.001, "constant", [0.5, 1]],
    "config",
  );
  const { meta } = await loadCheckpoint(`${dir}/tuned/checkpoint.safetensors`);
  assertEquals(meta.architecture.method, "supervised", "a classifier's checkpoint");
  // From random init with another backbone, for one epoch, then resumed to two.
  const random = await json("finetune", [
    ...["--random-init", "--backbone", "resnet18", "--stem", "cifar", "--width", "4"],
    ...["--dataset", "synthetic", "--limit", "64", "--epochs", "1", "--no-exclude-bias-norm"],
    ...["--out", `${dir}/random`],
  ]);
  assertEquals([random.status, random.init], ["done", "random init"], "random init");
  const resumed = await json("finetune", ["--resume", `${dir}/random`, "--epochs", "2"]);
  // 64 images at the default batch of 64: a step an epoch.
  assertEquals([resumed.status, resumed.epochs, resumed.steps], ["done", 2, 2], "resumed");
  // A ViT from random init with layer-wise learning-rate decay.
  const vit = await json("finetune", [
    ...["--random-init", "--backbone", "vit", "--limit", "32", "--batch-size", "16"],
    ...["--epochs", "1", "--layer-decay", "0.7", "--vit-positions", "sincos"],
    ...["--out", `${dir}/vit`],
  ]);
  assertEquals(vit.status, "done", "ViT");
  const vitConfig = JSON.parse(await Deno.readTextFile(`${dir}/vit/config.json`));
  assertEquals(
    [vitConfig.backbone.name, vitConfig.backbone.positions, vitConfig.layerDecay],
    ["vit", "sincos", 0.7],
    "ViT config",
  );
  assertOneLineError(
    await task("finetune", ["--random-init", "--layer-decay", "0.7", "--out", `${dir}/x`]),
    "--layer-decay is for a ViT",
  );
  assertOneLineError(
    await task("finetune", ["--limit", "8"]),
    "--checkpoint PATH or --random-init",
  );
  assertOneLineError(
    await task("finetune", ["--resume", `${dir}/random`, "--checkpoint", checkpoint]),
    "drop --checkpoint",
  );
  assertOneLineError(
    await task("finetune", ["--resume", `${dir}/random`, "--epochs", "3", "--lr", "0.1"]),
    "drop --lr",
  );
  assertOneLineError(
    await task("finetune", ["--random-init", "--dataset", "folder", "--data", `${dir}/none`]),
    `${dir}/none`,
  );
});

// Last: the flags the tests above gave each task.
Deno.test("--precision f16 trains the ResNet with its loss scale checkpointed, and MAE's ViT evaluated in f32; the text encoder refuses it", async () => {
  const dir = await Deno.makeTempDir();
  const small = ["--limit", "64", "--batch-size", "16", "--workers", "1", "--epochs", "1"];
  const run = await task("pretrain", [
    ...["--precision", "f16", "--stem", "imagenet", "--width", "4", ...small, "--no-probe"],
    ...["--out", `${dir}/f16`],
  ]);
  assertEquals(run.code, 0, run.stderr);
  const config = JSON.parse(await Deno.readTextFile(`${dir}/f16/config.json`));
  assertEquals([config.precision, config.backbone.precision], ["f16", undefined], "config");
  const checkpoint = await loadCheckpoint(`${dir}/f16/checkpoint.safetensors`);
  // 4 steps, none overflowing at the first scale: 2¹⁶, 4 good steps.
  assertEquals(
    [...["loss_scale", "loss_scale_good_steps"].map((k) =>
      checkpoint.tensors.get(`method.${k}`)![0]
    )],
    [2 ** 16, 4],
    "loss scale",
  );
  // A run whose every step overflows halves its scale towards 0: it stops, with one line.
  checkpoint.tensors.set("method.loss_scale", Float32Array.of(2 ** -30));
  await saveCheckpoint(`${dir}/f16/checkpoint.safetensors`, checkpoint);
  assertOneLineError(
    await task("pretrain", ["--resume", `${dir}/f16`, "--epochs", "2"]),
    "Every step overflows in f16 (the loss scale fell to",
  );
  // The checkpoint describes the network alone: it loads into evaluation in f32.
  assertEquals(checkpoint.meta.architecture.backbone, {
    name: "resnet18",
    stem: "imagenet",
    width: 4,
  });
  // MAE's encoder in f16: its checkpoint describes the network alone, and its evaluation,
  // run on the f32 network, gives what a probe of the checkpoint gives.
  const vit = ["--backbone", "vit", "--vit-dim", "16", "--vit-depth", "1", "--vit-heads", "2"];
  // A probe of 400 steps at a high rate: a trajectory that small differences of the features
  // (f16's) would move, so that equal accuracies say the features were the same.
  const evaluation = ["--probe-epochs", "50", "--probe-lr", "1", "--probe-batch-size", "8"];
  const mae = await json("pretrain", [
    ...["--method", "mae", "--precision", "f16", ...vit, "--patch-size", "8", ...small],
    ...evaluation,
    ...["--probe-features", "standardized", "--no-baseline", "--out", `${dir}/mae`],
  ]);
  const maeCheckpoint = await loadCheckpoint(`${dir}/mae/checkpoint.safetensors`);
  assertEquals(
    [mae.status, mae.steps, "precision" in maeCheckpoint.meta.architecture.backbone],
    ["done", 4, false],
    "MAE's f16 run",
  );
  // The encoder's loss scale: 4 steps, none overflowing at the first scale.
  assertEquals(
    ["loss_scale", "loss_scale_good_steps"].map((k) =>
      maeCheckpoint.tensors.get(`method.${k}`)![0]
    ),
    [2 ** 16, 4],
    "MAE's loss scale",
  );
  const probe = await json("probe", [
    ...["--checkpoint", `${dir}/mae/checkpoint.safetensors`, "--epochs", "50", "--lr", "1"],
    ...["--batch-size", "8", "--features", "standardized", "--k", "200"],
  ]);
  assertEquals(
    [mae.probe.top1, mae.probe.train_top1, mae.knn.top1],
    [probe.probe.top1, probe.probe.train_top1, probe.knn.top1],
    "the f16 run's evaluation against a probe of its checkpoint",
  );
  // The text encoder is refused, in pretrain and in bench; in pretrain before its data are
  // loaded (a download, for CIFAR): this text file does not exist.
  assertOneLineError(
    await task("pretrain", [
      ...["--method", "mlm", "--precision", "f16", ...small, "--out", `${dir}/mlm`],
      ...["--dataset", "text", "--data", `${dir}/missing.txt`],
    ]),
    "--precision f16 trains the ResNet and the ViT; the text transformer",
  );
  assertOneLineError(
    await task("bench", ["--only", "step", "--method", "mlm", "--precision", "f16"]),
    "--precision f16 trains the ResNet and the ViT",
  );
  // The convolution, GEMM and augmentation figures are f32's: f16 is refused, not ignored.
  assertOneLineError(
    await task("bench", ["--only", "conv", "--precision", "f16"]),
    "--precision f16 times the training step: add --only step",
  );
});

Deno.test("every flag the README lists has been run through the CLI", async () => {
  const missing: string[] = [];
  for (const [name, flags] of await readmeFlags()) {
    for (const flag of flags) if (!flagsGiven.get(name)?.has(flag)) missing.push(`${name} ${flag}`);
  }
  if (missing.length) throw new Error(`never run: ${missing.join(", ")}`);
});
