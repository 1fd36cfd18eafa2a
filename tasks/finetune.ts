/**
 * `deno task finetune`: a checkpoint's backbone (or a random one, the supervised baseline)
 * with a new linear classifier, trained on labels with crop-and-flip augmentation, then its
 * top-1 accuracy on the test split.
 *
 * @module
 */
import {
  dataFlagHelp,
  datasetFor,
  kebab,
  nonNegativeInteger,
  nonNegativeNumber,
  positiveFraction,
  positiveInteger,
  positiveNumber,
  refuseOtherBackboneFlags,
  runTask,
  stoppable,
  timestamp,
} from "../src/cli.ts";
import type { DatasetConfig } from "../src/data/load.ts";
import { Command, Option } from "../src/deps.ts";
import { SelfsupError } from "../src/errors.ts";
import { finetune, type FinetuneConfig, finetuneDefaults, finetuneStart } from "../src/finetune.ts";
import { loadCheckpoint } from "../src/checkpoint.ts";
import type { BackboneConfig } from "../src/nn/backbone.ts";
import { vitSmallDefault } from "../src/nn/vit.ts";
import { RunFolder } from "../src/run_folder.ts";

const d = finetuneDefaults;
const command = new Command()
  .name("finetune")
  .description(
    "Fine-tune a checkpoint's backbone with a new linear classifier on the labels (or train " +
      "one from random init, the supervised baseline), then measure top-1 on the test split.",
  )
  .option("--checkpoint <path>", "a selfsup checkpoint of any method")
  .option("--random-init", "start from a random backbone instead (the supervised baseline)")
  .addOption(
    new Option("--dataset <name>", "data (default: the checkpoint's training data)")
      .choices(["synthetic", "cifar10", "cifar100", "folder"] as const),
  )
  .option("--data <path>", dataFlagHelp)
  .option("--limit <n>", "use the first N training images", positiveInteger)
  .addOption(
    new Option("--backbone <name>", "with --random-init: resnet18 or the small default ViT")
      .choices(["resnet18", "vit"] as const).default("resnet18" as const),
  )
  .addOption(
    new Option("--stem <stem>", "with --random-init").choices(["imagenet", "cifar"] as const)
      .default("imagenet" as const),
  )
  .option("--width <n>", "with --random-init", positiveInteger, 16)
  .addOption(
    new Option(
      "--vit-positions <kind>",
      "with --random-init --backbone vit: position embeddings (MAE's encoder: sincos)",
    ).choices(["learned", "sincos"] as const).default("learned" as const),
  )
  .option("--epochs <n>", "training epochs", positiveInteger, d.epochs)
  .option("--batch-size <n>", "images per step", positiveInteger, d.batchSize)
  .addOption(
    new Option("--optimizer <name>", "optimizer").choices(
      ["adam", "adamw", "sgd", "lars"] as const,
    ).default(d.optimizer),
  )
  .option("--lr <x>", "peak learning rate", positiveNumber, d.learningRate)
  .option("--weight-decay <x>", "weight decay", nonNegativeNumber, d.weightDecay)
  .option("--no-exclude-bias-norm", "weight decay on biases and norms too")
  .option("--warmup-epochs <x>", "epochs of linear warm-up", nonNegativeNumber, d.warmupEpochs)
  .addOption(
    new Option("--schedule <name>", "learning-rate schedule after warm-up")
      .choices(["cosine", "constant"] as const).default(d.schedule),
  )
  .option("--crop-min <x>", "smallest area of RandomResizedCrop", positiveFraction, d.cropScale[0])
  .option("--layer-decay <x>", "ViT: layer-wise learning-rate decay (MAE: 0.65)", positiveFraction)
  .option("--seed <n>", "seed of the classifier, shuffling and augmentation", nonNegativeInteger, 0)
  .option("--workers <n>", "augmentation workers (default: CPU cores − 1)", nonNegativeInteger)
  .option("--out <dir>", "run folder (default: runs/finetune-<dataset>-<time>)")
  .option("--resume <dir>", "continue the run in this folder from its last checkpoint")
  .option("--json", "print the summary as JSON on stdout");

await runTask("finetune", async () => {
  command.parse(Deno.args, { from: "user" });
  const flags = command.opts();
  const given = (name: string) => command.getOptionValueSource(name) === "cli";
  let config: FinetuneConfig;
  let out: string;
  if (flags.resume) {
    // Every flag but --data, --epochs, --workers and --json would be ignored.
    const kept = ["data", "epochs", "workers", "json", "resume"];
    const stray = command.options.find((o) =>
      !kept.includes(o.attributeName()) && given(o.attributeName())
    );
    if (stray) {
      throw new SelfsupError(
        `--resume continues a run with its saved configuration; drop ${stray.long}`,
      );
    }
    out = flags.resume;
    const saved = await RunFolder.readConfig<FinetuneConfig>(out, ["dataset", "backbone"]);
    config = {
      ...saved,
      dataset: { ...saved.dataset, path: flags.data ?? saved.dataset.path },
      epochs: given("epochs") ? flags.epochs : saved.epochs,
      workers: flags.workers ?? saved.workers,
    };
  } else {
    if (Boolean(flags.checkpoint) === Boolean(flags.randomInit)) {
      throw new SelfsupError("Give either --checkpoint PATH or --random-init");
    }
    const shapes = { resnet18: ["stem", "width"], vit: ["vitPositions"] };
    if (flags.randomInit) refuseOtherBackboneFlags(given, flags.backbone, shapes);
    const shaping = ["backbone", ...Object.values(shapes).flat()].find(given);
    if (flags.checkpoint && shaping) {
      throw new SelfsupError(
        `--${kebab(shaping)} is for --random-init: ${flags.checkpoint} has its own backbone`,
      );
    }
    const trained = flags.checkpoint
      ? (await loadCheckpoint(flags.checkpoint)).meta.config.dataset as DatasetConfig
      : undefined;
    const dataset = datasetFor(trained, flags);
    const random: BackboneConfig = flags.backbone === "vit"
      ? {
        ...vitSmallDefault,
        name: "vit",
        imageSize: dataset.imageSize ?? 32,
        positions: flags.vitPositions,
      }
      : { name: "resnet18", stem: flags.stem, width: flags.width };
    const start = await finetuneStart(flags.checkpoint ?? null, random, dataset);
    config = {
      checkpoint: flags.checkpoint ?? null,
      ...start,
      dataset,
      epochs: flags.epochs,
      batchSize: flags.batchSize,
      optimizer: flags.optimizer,
      learningRate: flags.lr,
      weightDecay: flags.weightDecay,
      excludeBiasAndNorm: flags.excludeBiasNorm,
      warmupEpochs: flags.warmupEpochs,
      schedule: flags.schedule,
      cropScale: [flags.cropMin, 1],
      layerDecay: flags.layerDecay,
      seed: flags.seed,
      workers: flags.workers,
    };
    out = flags.out ?? `runs/finetune-${dataset.name}-${timestamp()}`;
  }

  const { result: summary, stoppedBy } = await stoppable(
    "finetune",
    out,
    (signal) => finetune(config, { out, resume: Boolean(flags.resume), signal }),
  );
  if (flags.json) {
    console.log(JSON.stringify(summary, null, 2));
  } else {
    const top1 = summary.top1 === undefined ? "–" : `${(100 * summary.top1).toFixed(2)}%`;
    console.log(
      `fine-tuning ${summary.status} on ${summary.adapter} from ${summary.init}: ` +
        `${summary.steps} steps in ${summary.training_seconds.toFixed(0)} s, ` +
        `loss ${summary.loss.toFixed(4)}; test top-1 ${top1}`,
    );
    console.log(`run folder: ${out}`);
  }
  if (summary.status === "interrupted") {
    console.error(`Checkpoint saved; continue with: deno task finetune --resume ${out}`);
  }
  return stoppedBy?.exitCode ?? 0;
});
