/**
 * `deno task pretrain`: self-supervised pre-training (SimCLR) of a ResNet-18, then a linear
 * probe and kNN monitor of its features against a random-init baseline.
 *
 * @module
 */
import {
  dataFlagHelp,
  nonNegativeInteger,
  nonNegativeNumber,
  onStopSignals,
  positiveInteger,
  positiveNumber,
  runTask,
  type StopSignal,
} from "../src/cli.ts";
import { Command, Option } from "../src/deps.ts";
import { SelfsupError } from "../src/errors.ts";
import { presets } from "../src/presets.ts";
import { RunFolder } from "../src/run_folder.ts";
import type { EvaluationConfig } from "../src/evaluate.ts";
import { pretrain, type PretrainConfig } from "../src/train.ts";

const command = new Command()
  .name("pretrain")
  .description(
    "Pre-train a ResNet-18 with SimCLR, save checkpoints to a run folder, then measure a " +
      "linear probe and kNN accuracy against a randomly initialised network.",
  )
  .addOption(
    new Option("--preset <name>", "starting configuration; flags override it")
      .choices(["default", "seed"] as const).default("default" as const),
  )
  .addOption(new Option("--method <name>", "self-supervised method").choices(["simclr"] as const))
  .addOption(
    new Option("--dataset <name>", "training data")
      .choices(["synthetic", "cifar10", "cifar100", "folder"] as const),
  )
  .option("--data <path>", dataFlagHelp)
  .option("--limit <n>", "use the first N training images", positiveInteger)
  .option("--image-size <n>", "side of the square images for --dataset folder", positiveInteger)
  .addOption(new Option("--stem <stem>", "ResNet stem").choices(["imagenet", "cifar"] as const))
  .option("--width <n>", "channels of ResNet layer1 (torchvision: 64)", positiveInteger)
  .option("--epochs <n>", "training epochs", positiveInteger)
  .option("--batch-size <n>", "images per step (two views each)", positiveInteger)
  .addOption(
    new Option("--optimizer <name>", "optimizer").choices(
      ["adam", "adamw", "sgd", "lars"] as const,
    ),
  )
  .option("--lr <x>", "peak learning rate", positiveNumber)
  .option("--weight-decay <x>", "weight decay", nonNegativeNumber)
  .option("--warmup-epochs <x>", "epochs of linear learning-rate warm-up", nonNegativeNumber)
  .addOption(
    new Option("--schedule <name>", "learning-rate schedule after warm-up")
      .choices(["cosine", "constant"] as const),
  )
  .option("--temperature <x>", "NT-Xent temperature", positiveNumber)
  .option("--projection-dim <n>", "output size of the projection head", positiveInteger)
  .option("--seed <n>", "seed of initialisation, shuffling and augmentation", nonNegativeInteger)
  .option("--workers <n>", "augmentation workers (default: CPU cores − 1)", nonNegativeInteger)
  .option("--out <dir>", "run folder (default: runs/<preset>-<dataset>-<time>)")
  .option("--resume <dir>", "continue the run in this folder from its last checkpoint")
  .option("--no-probe", "skip the linear probe and kNN evaluation after training")
  .option("--no-baseline", "skip evaluating a randomly initialised network")
  .option("--probe-epochs <n>", "epochs of the linear probe", positiveInteger)
  .option("--probe-lr <x>", "learning rate of the linear probe (Adam)", positiveNumber)
  .option("--probe-batch-size <n>", "features per step of the linear probe", positiveInteger)
  .addOption(
    new Option("--probe-features <kind>", "train the probe on standardized or raw features")
      .choices(["standardized", "raw"] as const),
  )
  .option("--json", "print the summary as JSON on stdout");

// Flags that define the run: a resumed run keeps its own, so they may not be given again.
// Where the data lives (--data), how many workers make batches, how long to train and how to
// evaluate may change.
const runDefining = [
  "preset",
  "method",
  "dataset",
  "limit",
  "imageSize",
  "stem",
  "width",
  "batchSize",
  "optimizer",
  "lr",
  "weightDecay",
  "warmupEpochs",
  "schedule",
  "temperature",
  "projectionDim",
  "seed",
] as const;

await runTask("pretrain", async () => {
  command.parse(Deno.args, { from: "user" });
  const flags = command.opts();
  let config: PretrainConfig;
  let out: string;
  if (flags.resume) {
    for (const name of [...runDefining, "out"] as const) {
      if (command.getOptionValueSource(name) === "cli") {
        throw new SelfsupError(
          `--resume continues a run with its saved configuration; drop --${kebab(name)}`,
        );
      }
    }
    out = flags.resume;
    const saved = await RunFolder.readConfig<PretrainConfig>(out);
    config = {
      ...saved,
      dataset: { ...saved.dataset, path: flags.data ?? saved.dataset.path },
      epochs: flags.epochs ?? saved.epochs,
      workers: flags.workers ?? saved.workers,
      evaluation: evaluationFlags(saved.evaluation),
      baseline: flags.baseline && saved.baseline,
    };
  } else {
    const preset = presets[flags.preset];
    config = {
      ...preset,
      method: flags.method ?? preset.method,
      dataset: {
        name: flags.dataset ?? preset.dataset.name,
        path: flags.data ?? preset.dataset.path,
        limit: flags.limit ?? preset.dataset.limit,
        imageSize: flags.imageSize ?? preset.dataset.imageSize,
        seed: flags.seed ?? preset.dataset.seed,
      },
      stem: flags.stem ?? preset.stem,
      width: flags.width ?? preset.width,
      epochs: flags.epochs ?? preset.epochs,
      batchSize: flags.batchSize ?? preset.batchSize,
      optimizer: flags.optimizer ?? preset.optimizer,
      learningRate: flags.lr ?? preset.learningRate,
      weightDecay: flags.weightDecay ?? preset.weightDecay,
      warmupEpochs: flags.warmupEpochs ?? preset.warmupEpochs,
      schedule: flags.schedule ?? preset.schedule,
      temperature: flags.temperature ?? preset.temperature,
      projectionDim: flags.projectionDim ?? preset.projectionDim,
      seed: flags.seed ?? preset.seed,
      workers: flags.workers,
      evaluation: evaluationFlags(preset.evaluation),
      baseline: flags.baseline && preset.baseline,
    };
    out = flags.out ?? `runs/${flags.preset}-${config.dataset.name}-${timestamp()}`;
  }

  // Ctrl-C and SIGTERM stop training at the next step, with a checkpoint saved there.
  const interrupt = new AbortController();
  let stoppedBy: StopSignal | undefined;
  const summary = await (async () => {
    using _ = onStopSignals((signal) => {
      if (stoppedBy) Deno.exit(signal.exitCode);
      stoppedBy = signal;
      console.error(
        `\n${signal.name === "SIGINT" ? "Interrupted" : "Terminated"}: stopping at the next ` +
          `safe point (${signal.name === "SIGINT" ? "Ctrl-C" : "SIGTERM"} again to quit now)`,
      );
      interrupt.abort();
    });
    console.error(`pretrain: run folder ${out}`);
    return await pretrain(config, {
      out,
      resume: Boolean(flags.resume),
      signal: interrupt.signal,
    });
  })();

  if (flags.json) {
    console.log(JSON.stringify(summary, null, 2));
  } else {
    const pct = (x: number | undefined) => x === undefined ? "–" : `${(100 * x).toFixed(2)}%`;
    const resumedSteps = summary.trained_steps < summary.steps ? ` (to step ${summary.steps})` : "";
    const evaluationSeconds = summary.seconds - summary.training_seconds;
    console.log(
      `SimCLR ${summary.status} on ${summary.adapter}: ${summary.trained_steps} steps` +
        `${resumedSteps} in ${summary.training_seconds.toFixed(0)} s, ` +
        `loss ${summary.loss.toFixed(4)}, ${summary.images_per_second.toFixed(1)} images/s` +
        (summary.probe || summary.knn ? `; evaluation ${evaluationSeconds.toFixed(0)} s` : ""),
    );
    if (summary.probe || summary.knn) {
      console.log(`                 trained   random init`);
      console.log(
        `linear probe    ${pct(summary.probe?.top1).padStart(8)}   ${
          pct(summary.baseline?.probe?.top1).padStart(8)
        }`,
      );
      console.log(
        `${`kNN (k=${summary.knn?.k ?? config.evaluation?.knn?.k})`.padEnd(16)}${
          pct(summary.knn?.top1).padStart(8)
        }   ${pct(summary.baseline?.knn?.top1).padStart(8)}`,
      );
    }
    console.log(`run folder: ${out}`);
  }
  if (summary.status === "interrupted") {
    console.error(`Checkpoint saved; continue with: deno task pretrain --resume ${out}`);
  }
  return stoppedBy?.exitCode ?? 0;
});

/** The evaluation the flags ask for, starting from a preset's or a saved run's. */
function evaluationFlags(base: EvaluationConfig | null): EvaluationConfig | null {
  const flags = command.opts();
  if (!flags.probe || !base) return null;
  return {
    ...base,
    probe: base.probe && {
      ...base.probe,
      epochs: flags.probeEpochs ?? base.probe.epochs,
      learningRate: flags.probeLr ?? base.probe.learningRate,
      batchSize: flags.probeBatchSize ?? base.probe.batchSize,
      features: flags.probeFeatures ?? base.probe.features,
    },
  };
}

function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

function timestamp(): string {
  return new Date().toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
}
