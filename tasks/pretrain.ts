/**
 * `deno task pretrain`: self-supervised pre-training of a backbone with the method of your
 * choice, then a linear probe and kNN monitor of its features against a random-init baseline.
 *
 * @module
 */
import {
  dataFlagHelp,
  fraction,
  kebab,
  nonNegativeInteger,
  nonNegativeNumber,
  positiveInteger,
  positiveNumber,
  runTask,
  stoppable,
  timestamp,
} from "../src/cli.ts";
import { Command, Option } from "../src/deps.ts";
import { SelfsupError } from "../src/errors.ts";
import type { EvaluationConfig } from "../src/evaluate.ts";
import { datasetNames } from "../src/data/load.ts";
import { tokenizerNames } from "../src/data/tokenizer.ts";
import { textEncoderConfig, textSmallDefault } from "../src/methods/_text.ts";
import type { MethodOption, OptionKind } from "../src/methods/method.ts";
import { methodNamed, methodNames, methods } from "../src/methods/registry.ts";
import type { BackboneConfig } from "../src/nn/backbone.ts";
import { poolings } from "../src/nn/sequence_pool.ts";
import type { TextEncoderConfig } from "../src/nn/text_encoder.ts";
import { vitSmallDefault } from "../src/nn/vit.ts";
import { presetConfig, presetNames } from "../src/presets.ts";
import { RunFolder } from "../src/run_folder.ts";
import { pretrain, type PretrainConfig } from "../src/train.ts";

const command = new Command()
  .name("pretrain")
  .description(
    "Pre-train a backbone with a self-supervised method, save checkpoints to a run folder, " +
      "then measure a linear probe and kNN accuracy against a randomly initialised network.",
  )
  .addOption(
    new Option("--preset <name>", "starting configuration; flags override it")
      .choices(presetNames).default("default"),
  )
  .addOption(
    new Option("--method <name>", "self-supervised method (default: simclr)").choices(methodNames),
  )
  .addOption(new Option("--dataset <name>", "training data").choices(datasetNames))
  .option("--data <path>", dataFlagHelp)
  .option("--limit <n>", "use the first N training images", positiveInteger)
  .option("--image-size <n>", "side of the square images for --dataset folder", positiveInteger)
  .addOption(
    new Option(
      "--backbone <name>",
      "the encoder (default: resnet18; mlm: text); vit trains at the preset's transformer " +
        "recipe (AdamW 5e-4, weight decay 0.05, warm-up, cosine) unless the method's names its own",
    ).choices(
      ["resnet18", "vit", "text"] as const,
    ),
  )
  .addOption(new Option("--stem <stem>", "ResNet stem").choices(["imagenet", "cifar"] as const))
  .option("--width <n>", "channels of ResNet layer1 (torchvision: 64)", positiveInteger)
  .option("--vit-dim <n>", "ViT token width (default 128; ViT-Tiny: 192)", positiveInteger)
  .option("--vit-depth <n>", "ViT blocks (default 4; ViT-Tiny: 12)", positiveInteger)
  .option("--vit-heads <n>", "ViT attention heads (default 4; ViT-Tiny: 3)", positiveInteger)
  .option(
    "--patch-size <n>",
    "ViT patch side, dividing the image side (default 4)",
    positiveInteger,
  )
  .addOption(
    new Option("--vit-positions <kind>", "ViT position embeddings (default learned)")
      .choices(["learned", "sincos"] as const),
  )
  .addOption(
    new Option("--tokenizer <name>", "text: bytes (256 + 4 special) or BERT's WordPiece (bert)")
      .choices(tokenizerNames),
  )
  .option("--context-length <n>", "text: tokens per sequence (default 128)", positiveInteger)
  .option("--text-dim <n>", "text encoder width (default 64)", positiveInteger)
  .option("--text-depth <n>", "text encoder blocks (default 2)", positiveInteger)
  .option("--text-heads <n>", "text encoder attention heads (default 2)", positiveInteger)
  .addOption(
    new Option("--pooling <kind>", "text features: mean of the tokens, first ([CLS]) or last")
      .choices(poolings),
  )
  .addOption(
    new Option(
      "--text-attention <kind>",
      "text: each token attends to all (bidirectional; mlm) or to those before it (causal; clip)",
    ).choices(["bidirectional", "causal"] as const),
  )
  .addOption(
    new Option(
      "--precision <type>",
      "the ResNet's or ViT's activations and gradients: f32, or f16 (needs shader-f16; loss-scaled)",
    ).choices(["f32", "f16"] as const),
  )
  .option("--epochs <n>", "training epochs", positiveInteger)
  .option("--batch-size <n>", "images per step (each with the method's views)", positiveInteger)
  .addOption(
    new Option("--optimizer <name>", "optimizer").choices(
      ["adam", "adamw", "sgd", "lars"] as const,
    ),
  )
  .option("--lr <x>", "peak learning rate", positiveNumber)
  .option("--weight-decay <x>", "weight decay", nonNegativeNumber)
  .option(
    "--optimizer-momentum <x>",
    "SGD's or LARS's momentum (SGD: 0, LARS: 0.9)",
    nonNegativeNumber,
  )
  .option("--exclude-bias-norm", "no weight decay (or LARS adaptation) on biases and norms")
  .option("--no-exclude-bias-norm", "weight decay on every parameter")
  .option("--warmup-epochs <x>", "epochs of linear learning-rate warm-up", nonNegativeNumber)
  .addOption(
    new Option("--schedule <name>", "learning-rate schedule after warm-up")
      .choices(["cosine", "constant"] as const),
  )
  .option("--seed <n>", "seed of initialisation, shuffling and augmentation", nonNegativeInteger)
  .option("--workers <n>", "augmentation workers (default: CPU cores − 1)", nonNegativeInteger)
  .option("--out <dir>", "run folder (default: runs/<preset>-<method>-<dataset>-<time>)")
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

/**
 * Every method's options as flags: one flag for the methods that share it, each with its own
 * key. Where methods bound a value differently (MoCo's queue must hold keys, SwAV's may be
 * 0), the flag parses the looser kind and each method's validation checks its own bound.
 */
const methodFlags = new Map<
  string,
  { option: MethodOption; attribute: string; keys: Map<string, string> }
>();
for (const method of Object.values(methods)) {
  for (const option of method.options) {
    const known = methodFlags.get(option.flag);
    if (!known) {
      const attribute = camel(option.flag.slice(2));
      methodFlags.set(option.flag, {
        option,
        attribute,
        keys: new Map([[method.name, option.key]]),
      });
      continue;
    }
    known.keys.set(method.name, option.key);
    known.option = { ...known.option, kind: looser(known.option.kind, option.kind) };
  }
}
const parsers = {
  positiveInteger,
  nonNegativeInteger,
  positiveNumber,
  nonNegativeNumber,
  fraction,
};
for (const [flag, { option, keys }] of methodFlags) {
  const description = `${option.description} (${[...keys.keys()].join(", ")})`;
  if (option.kind === "boolean") {
    command.option(flag, description);
    command.option(`--no-${flag.slice(2)}`, `not: ${option.description}`);
  } else if (option.kind === "choice") {
    command.addOption(new Option(`${flag} <x>`, description).choices(option.choices ?? []));
  } else {
    command.option(`${flag} <x>`, description, parsers[option.kind]);
  }
}

const resnetFlags = ["stem", "width"] as const;
const vitFlags = ["vitDim", "vitDepth", "vitHeads", "patchSize", "vitPositions"] as const;
const textFlags = [
  "tokenizer",
  "contextLength",
  "textDim",
  "textDepth",
  "textHeads",
  "pooling",
  "textAttention",
] as const;
/** The flags of each backbone, which the others refuse. */
const backboneFlagsOf = { resnet18: resnetFlags, vit: vitFlags, text: textFlags } as const;

// Flags that define the run: a resumed run keeps its own, so they may not be given again.
// Where the data lives (--data), how many workers make batches, how long to train and how to
// evaluate may change.
const runDefining = [
  "preset",
  "method",
  "dataset",
  "limit",
  "imageSize",
  "backbone",
  ...resnetFlags,
  ...vitFlags,
  ...textFlags,
  "precision",
  "batchSize",
  "optimizer",
  "lr",
  "weightDecay",
  "optimizerMomentum",
  "excludeBiasNorm",
  "warmupEpochs",
  "schedule",
  "seed",
  ...[...methodFlags.values()].map((f) => f.attribute),
];

await runTask("pretrain", async () => {
  command.parse(Deno.args, { from: "user" });
  const flags = command.opts();
  const given = (name: string) => command.getOptionValueSource(name) === "cli";
  let config: PretrainConfig;
  let out: string;
  if (flags.resume) {
    for (const name of [...runDefining, "out"]) {
      if (given(name)) {
        throw new SelfsupError(
          `--resume continues a run with its saved configuration; drop --${kebab(name)}`,
        );
      }
    }
    out = flags.resume;
    const saved = await RunFolder.readConfig<PretrainConfig>(out, [
      "method",
      "dataset",
      "backbone",
    ]);
    config = {
      ...saved,
      dataset: { ...saved.dataset, path: flags.data ?? saved.dataset.path },
      epochs: flags.epochs ?? saved.epochs,
      workers: flags.workers ?? saved.workers,
      evaluation: evaluationFlags(saved.evaluation),
      baseline: flags.baseline && saved.baseline,
    };
  } else {
    const preset = presetConfig(flags.preset, flags.method ?? "simclr", {
      backbone: flags.backbone,
    });
    config = {
      ...preset,
      method: methodFlagValues(preset.method),
      dataset: {
        name: flags.dataset ?? preset.dataset.name,
        path: flags.data ?? preset.dataset.path,
        limit: flags.limit ?? preset.dataset.limit,
        imageSize: flags.imageSize ?? preset.dataset.imageSize,
        seed: flags.seed ?? preset.dataset.seed,
      },
      backbone: backboneFlags(preset.backbone, preset.text !== undefined),
      // Left out of config.json when f32, as before the flag existed.
      ...(flags.precision === "f16" ? { precision: "f16" as const } : {}),
      ...(preset.text ? { text: textEncoderFlags(preset.text) } : {}),
      epochs: flags.epochs ?? preset.epochs,
      batchSize: flags.batchSize ?? preset.batchSize,
      optimizer: flags.optimizer ?? preset.optimizer,
      learningRate: flags.lr ?? preset.learningRate,
      weightDecay: flags.weightDecay ?? preset.weightDecay,
      optimizerMomentum: flags.optimizerMomentum ?? preset.optimizerMomentum,
      excludeBiasAndNorm: given("excludeBiasNorm")
        ? Boolean(flags.excludeBiasNorm)
        : preset.excludeBiasAndNorm,
      warmupEpochs: flags.warmupEpochs ?? preset.warmupEpochs,
      schedule: flags.schedule ?? preset.schedule,
      seed: flags.seed ?? preset.seed,
      workers: flags.workers,
      evaluation: evaluationFlags(preset.evaluation),
      baseline: flags.baseline && preset.baseline,
    };
    out = flags.out ??
      `runs/${flags.preset}-${config.method.name}-${config.dataset.name}-${timestamp()}`;
  }
  const title = methodNamed(config.method.name).title;

  // Ctrl-C and SIGTERM stop training at the next step, with a checkpoint saved there.
  const { result: summary, stoppedBy } = await stoppable(
    "pretrain",
    out,
    (signal) => pretrain(config, { out, resume: Boolean(flags.resume), signal }),
  );

  if (flags.json) {
    console.log(JSON.stringify(summary, null, 2));
  } else {
    const pct = (x: number | undefined) => x === undefined ? "–" : `${(100 * x).toFixed(2)}%`;
    const resumedSteps = summary.trained_steps < summary.steps ? ` (to step ${summary.steps})` : "";
    const evaluationSeconds = summary.seconds - summary.training_seconds;
    console.log(
      `${title} ${summary.status} on ${summary.adapter}: ${summary.trained_steps} steps` +
        `${resumedSteps} in ${summary.training_seconds.toFixed(0)} s, ` +
        `loss ${summary.loss.toFixed(4)}, ${summary.images_per_second.toFixed(1)} images/s` +
        (summary.probe || summary.knn || summary.method_metrics
          ? `; evaluation ${evaluationSeconds.toFixed(0)} s`
          : ""),
    );
    if (summary.probe || summary.knn || summary.method_metrics) {
      // Without the probe (--no-probe) only the method's own measures have values.
      type Row = [string, number | undefined, number | undefined];
      const rows: Row[] = [];
      if (config.evaluation) {
        rows.push(
          ["linear probe", summary.probe?.top1, summary.baseline?.probe?.top1],
          [
            `kNN (k=${summary.knn?.k ?? config.evaluation.knn?.k})`,
            summary.knn?.top1,
            summary.baseline?.knn?.top1,
          ],
        );
      }
      for (const [key, value] of Object.entries(summary.method_metrics ?? {})) {
        rows.push([metricLabel(key), value, summary.baseline?.method_metrics?.[key]]);
      }
      const width = Math.max(16, ...rows.map(([label]) => label.length + 1));
      console.log(`${"".padEnd(width)} trained   random init`);
      for (const [label, trained, random] of rows) {
        console.log(
          `${label.padEnd(width)}${pct(trained).padStart(8)}   ${pct(random).padStart(8)}`,
        );
      }
    }
    console.log(`run folder: ${out}`);
  }
  if (summary.status === "interrupted") {
    console.error(`Checkpoint saved; continue with: deno task pretrain --resume ${out}`);
  }
  return stoppedBy?.exitCode ?? 0;
});

/** How a method's own measure reads in the summary table: `image_to_text_recall_at_1` → `image→text R@1`. */
function metricLabel(key: string): string {
  return key.replace(/_accuracy$/, "").replace(/_recall_at_/, " R@").replace(/_to_/, "→")
    .replaceAll("_", " ");
}

/**
 * The method's settings: the preset's, with the method flags given. A flag of another
 * method is refused, naming the methods that take it.
 */
function methodFlagValues(preset: PretrainConfig["method"]): PretrainConfig["method"] {
  const values = command.opts() as Record<string, unknown>;
  const method = methodNamed(preset.name);
  const out: Record<string, unknown> = { ...preset };
  for (const [flag, { attribute, keys }] of methodFlags) {
    if (command.getOptionValueSource(attribute) !== "cli") continue;
    const key = keys.get(method.name);
    if (!key) {
      throw new SelfsupError(
        `${flag} is an option of ${[...keys.keys()].join(", ")}; --method ${method.name} ` +
          `does not take it`,
      );
    }
    out[key] = values[attribute];
  }
  return out as PretrainConfig["method"];
}

/**
 * The backbone the flags ask for, starting from the preset's; flags of the others are
 * refused, except the text encoder's where the method has one beside the backbone (CLIP).
 */
function backboneFlags(preset: BackboneConfig, textBeside: boolean): BackboneConfig {
  const flags = command.opts();
  const name = flags.backbone ?? preset.name;
  for (const [other, names] of Object.entries(backboneFlagsOf)) {
    if (other === name || (other === "text" && textBeside)) continue;
    const stray = names.find((n) => command.getOptionValueSource(n) === "cli");
    if (stray) throw new SelfsupError(`--${kebab(stray)} is for --backbone ${other}`);
  }
  if (name === "resnet18") {
    const base = preset.name === "resnet18" ? preset : { stem: "cifar" as const, width: 64 };
    return { name, stem: flags.stem ?? base.stem, width: flags.width ?? base.width };
  }
  if (name === "text") return textEncoderFlags(preset.name === "text" ? preset : undefined);
  const base = preset.name === "vit"
    ? preset
    : { ...vitSmallDefault, imageSize: flags.imageSize ?? vitSmallDefault.imageSize };
  return {
    name,
    imageSize: base.imageSize,
    patchSize: flags.patchSize ?? base.patchSize,
    dim: flags.vitDim ?? base.dim,
    depth: flags.vitDepth ?? base.depth,
    heads: flags.vitHeads ?? base.heads,
    positions: flags.vitPositions ?? base.positions ?? "learned",
  };
}

/** The text encoder the flags ask for, starting from `base` (default: the small one). */
function textEncoderFlags(base?: TextEncoderConfig): TextEncoderConfig & { name: "text" } {
  const flags = command.opts();
  const start = base ?? textEncoderConfig("bytes", textSmallDefault);
  return textEncoderConfig(flags.tokenizer ?? start.tokenizer, {
    contextLength: flags.contextLength ?? start.contextLength,
    dim: flags.textDim ?? start.dim,
    depth: flags.textDepth ?? start.depth,
    heads: flags.textHeads ?? start.heads,
    causal: flags.textAttention ? flags.textAttention === "causal" : start.causal,
    pooling: flags.pooling ?? start.pooling,
  });
}

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

/** The kind that accepts the values of both: integers or numbers from 0 up. */
function looser(a: OptionKind, b: OptionKind): OptionKind {
  if (a === b) return a;
  if (a === "boolean" || b === "boolean") throw new Error(`Methods disagree on a flag's kind`);
  const integers = ["positiveInteger", "nonNegativeInteger"];
  return integers.includes(a) && integers.includes(b) ? "nonNegativeInteger" : "nonNegativeNumber";
}

function camel(name: string): string {
  return name.replace(/-([a-z])/g, (_, c) => c.toUpperCase());
}
