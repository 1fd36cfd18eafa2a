/**
 * `deno task embed`: backbone features of a dataset split, in dataset order, written to
 * safetensors as `features` [N, D] (F32) and `labels` [N] (I64).
 *
 * @module
 */
import { augmentPreset } from "../src/data/augment.ts";
import { positiveInteger, runTask } from "../src/cli.ts";
import { limit } from "../src/data/dataset.ts";
import { type DatasetConfig, loadDataset } from "../src/data/load.ts";
import { SelfsupError } from "../src/errors.ts";
import { Command, Option } from "../src/deps.ts";
import { createGpu } from "../src/gpu/device.ts";
import { serializeSafetensors } from "../src/io/safetensors.ts";
import { loadModel } from "../src/model.ts";
import { extractFeatures } from "../src/probe.ts";
import { progress } from "../src/progress.ts";

const command = new Command()
  .name("embed")
  .description("Write a checkpoint's backbone features of a dataset split to a safetensors file.")
  .requiredOption("--checkpoint <path>", "a selfsup checkpoint")
  .requiredOption("--out <path>", "the safetensors file to write")
  .addOption(
    new Option("--split <split>", "dataset split").choices(["train", "test"] as const).default(
      "test" as const,
    ),
  )
  .addOption(
    new Option("--dataset <name>", "data (default: the checkpoint's training data)")
      .choices(["synthetic", "cifar10", "cifar100", "folder"] as const),
  )
  .option("--data <path>", "CIFAR folder or archive, or image folder root")
  .option("--limit <n>", "only the first N images of the split", positiveInteger)
  .option("--batch-size <n>", "images per forward pass", positiveInteger, 256);

await runTask("embed", async () => {
  command.parse(Deno.args, { from: "user" });
  const flags = command.opts();
  const gpu = await createGpu();
  const { model, normalization, meta } = await loadModel(gpu, flags.checkpoint);
  const trained = meta?.config.dataset as DatasetConfig | undefined;
  const dataset: DatasetConfig = {
    ...(flags.dataset
      ? { name: flags.dataset }
      : { ...(trained ?? { name: "synthetic" }), limit: undefined }),
    ...(flags.data !== undefined ? { path: flags.data } : {}),
  };
  const whole = await loadDataset(dataset, flags.split);
  if (flags.limit !== undefined && flags.limit > whole.length) {
    throw new SelfsupError(
      `--limit ${flags.limit} exceeds the ${whole.length} images of the ${flags.split} split`,
    );
  }
  const images = flags.limit === undefined ? whole : limit(whole, flags.limit);
  const bar = progress({ label: "embed", total: images.length, unit: "images" });
  const { features, labels, dim } = await extractFeatures(gpu, model.backbone, images, {
    batchSize: Math.min(flags.batchSize, images.length),
    transform: {
      ...augmentPreset("eval", images.height, images.width),
      mean: [normalization.mean[0], normalization.mean[1], normalization.mean[2]],
      std: [normalization.std[0], normalization.std[1], normalization.std[2]],
    },
    onProgress: (done) => bar.update(done),
  });
  bar.stop();
  const bytes = serializeSafetensors(
    new Map([
      ["features", { dtype: "F32" as const, shape: [labels.length, dim], data: features }],
      ["labels", {
        dtype: "I64" as const,
        shape: [labels.length],
        data: BigInt64Array.from(labels, BigInt),
      }],
    ]),
    { split: flags.split, dataset: dataset.name, checkpoint: flags.checkpoint },
  );
  await Deno.writeFile(flags.out, bytes);
  console.log(`wrote ${labels.length} × ${dim} features to ${flags.out}`);
});
