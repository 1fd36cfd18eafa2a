/**
 * `deno task probe`: linear-probe and kNN accuracy of a checkpoint's frozen backbone, or of a
 * randomly initialised one as the baseline.
 *
 * @module
 */
import {
  dataFlagHelp,
  datasetFor,
  nonNegativeInteger,
  positiveInteger,
  positiveNumber,
  refuseOtherBackboneFlags,
  runTask,
} from "../src/cli.ts";
import {
  type DatasetConfig,
  datasetLabel,
  datasetNames,
  datasetNormalization,
  loadDataset,
} from "../src/data/load.ts";
import { Command, Option } from "../src/deps.ts";
import { SelfsupError } from "../src/errors.ts";
import { checkEvaluationData, evaluateBackbone, type EvaluationConfig } from "../src/evaluate.ts";
import { createGpu } from "../src/gpu/device.ts";
import { textEncoderConfig, textSmallDefault } from "../src/methods/_text.ts";
import { loadBackbone, randomBackbone } from "../src/model.ts";
import type { BackboneConfig } from "../src/nn/backbone.ts";
import { poolings } from "../src/nn/sequence_pool.ts";
import { vitSmallDefault } from "../src/nn/vit.ts";

const command = new Command()
  .name("probe")
  .description(
    "Train a linear classifier on frozen, un-augmented features (top-1 on the test split) and " +
      "run the weighted kNN monitor (k 200, temperature 0.1, cosine).",
  )
  .option("--checkpoint <path>", "a selfsup checkpoint (checkpoint.safetensors of a run)")
  .option("--random-init", "probe a randomly initialised network instead (the baseline)")
  .addOption(
    new Option("--dataset <name>", "data (default: the checkpoint's training data)")
      .choices(datasetNames),
  )
  .option("--data <path>", dataFlagHelp)
  .option("--limit <n>", "use the first N training images", positiveInteger)
  .addOption(
    new Option(
      "--backbone <name>",
      "with --random-init: a ResNet-18, the small default ViT, or the default text encoder",
    ).choices(["resnet18", "vit", "text"] as const).default("resnet18" as const),
  )
  .addOption(
    new Option("--stem <stem>", "with --random-init (a checkpoint has its own)")
      .choices(["imagenet", "cifar"] as const).default("cifar" as const),
  )
  .option("--width <n>", "with --random-init (a checkpoint has its own)", positiveInteger, 64)
  .addOption(
    new Option(
      "--pooling <kind>",
      "text: features by the mean, first or last token (default: the checkpoint's; mean)",
    ).choices(poolings),
  )
  .option("--epochs <n>", "epochs of the linear probe", positiveInteger, 5)
  .option("--lr <x>", "learning rate of the linear probe (Adam)", positiveNumber, 1e-3)
  .option("--batch-size <n>", "images per forward pass and probe step", positiveInteger, 256)
  .addOption(
    new Option("--features <kind>", "train the probe on standardized or raw features")
      .choices(["standardized", "raw"] as const).default("standardized" as const),
  )
  .option("--k <n>", "neighbours of the kNN monitor", positiveInteger, 200)
  .option("--seed <n>", "seed of the probe and of --random-init", nonNegativeInteger, 0)
  .option("--json", "print the result as JSON on stdout");

await runTask("probe", async () => {
  command.parse(Deno.args, { from: "user" });
  const flags = command.opts();
  if (Boolean(flags.checkpoint) === Boolean(flags.randomInit)) {
    throw new SelfsupError("Give either --checkpoint PATH or --random-init");
  }
  const gpu = await createGpu();
  // Pooling is no parameter: a text encoder may be probed with another than it trained with.
  const pooled = (config: BackboneConfig): BackboneConfig => {
    if (!flags.pooling) return config;
    if (config.name !== "text") throw new SelfsupError("--pooling is for a text encoder");
    return { ...config, pooling: flags.pooling };
  };
  const loaded = flags.checkpoint ? await loadBackbone(gpu, flags.checkpoint, pooled) : undefined;
  const trained = loaded?.meta?.architecture.backbone;
  for (const key of ["backbone", "stem", "width"] as const) {
    const value = key === "backbone" ? trained?.name : (trained as Record<string, unknown>)?.[key];
    if (trained && command.getOptionValueSource(key) === "cli" && flags[key] !== value) {
      throw new SelfsupError(
        `--${key} ${flags[key]} contradicts ${flags.checkpoint}, whose ${key} is ${value}: ` +
          `drop --${key}`,
      );
    }
  }
  if (!loaded) {
    const given = (name: string) => command.getOptionValueSource(name) === "cli";
    refuseOtherBackboneFlags(given, flags.backbone, { resnet18: ["stem", "width"] });
  }
  const text = (trained?.name ?? flags.backbone) === "text";
  const dataset = datasetFor(loaded?.meta?.config.dataset as DatasetConfig | undefined, {
    ...flags,
    dataset: flags.dataset ?? (text && !loaded ? "synthetic-text" : undefined),
  });
  const train = await loadDataset(dataset, "train");
  const test = await loadDataset(dataset, "test");
  const evaluation: EvaluationConfig = {
    probe: {
      epochs: flags.epochs,
      learningRate: flags.lr,
      batchSize: flags.batchSize,
      features: flags.features,
    },
    knn: { k: flags.k, temperature: 0.1 },
    batchSize: flags.batchSize,
    seed: flags.seed,
  };
  for (const note of checkEvaluationData({ train, test }, evaluation, datasetLabel(dataset))) {
    console.error(note);
  }
  const randomConfig = (): BackboneConfig =>
    pooled(
      flags.backbone === "text"
        ? textEncoderConfig("bytes", textSmallDefault)
        : flags.backbone === "vit"
        ? { ...vitSmallDefault, name: "vit", imageSize: "height" in train ? train.height : 32 }
        : { name: "resnet18", stem: flags.stem, width: flags.width },
    );
  const model = loaded ?? randomBackbone(gpu, randomConfig(), flags.seed);
  const normalization = loaded?.meta?.normalization ?? datasetNormalization(dataset);
  const result = await evaluateBackbone(
    gpu,
    model.backbone,
    { train, test, ...normalization },
    evaluation,
    flags.randomInit ? "random init" : "checkpoint",
  );
  const summary = {
    model: flags.checkpoint ?? "random init",
    dataset: dataset.name,
    train_images: train.length,
    test_images: test.length,
    probe: result.probe && {
      top1: result.probe.top1,
      train_top1: result.probe.trainTop1,
      loss: result.probe.loss,
    },
    knn: result.knn,
    adapter: gpu.adapterName,
  };
  if (flags.json) {
    console.log(JSON.stringify(summary, null, 2));
  } else {
    console.log(`linear probe top-1: ${(100 * result.probe!.top1).toFixed(2)}%`);
    console.log(`kNN top-1:          ${(100 * result.knn!.top1).toFixed(2)}%`);
  }
});
