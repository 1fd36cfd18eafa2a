/**
 * `deno task embed`: backbone features of a dataset split, in dataset order, written to
 * safetensors as `features` [N, D] (F32) and `labels` [N] (I64).
 *
 * @module
 */
import { dirname, resolve } from "node:path";
import { datasetFor, positiveInteger, runTask } from "../src/cli.ts";
import { limit } from "../src/data/dataset.ts";
import { type DatasetConfig, loadDataset } from "../src/data/load.ts";
import { Command, Option } from "../src/deps.ts";
import { SelfsupError } from "../src/errors.ts";
import { backboneFeatures } from "../src/evaluate.ts";
import { createGpu } from "../src/gpu/device.ts";
import { writeFileAtomically } from "../src/io/files.ts";
import { serializeSafetensors } from "../src/io/safetensors.ts";
import { loadModel } from "../src/model.ts";

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
  const outDir = dirname(resolve(flags.out));
  if (!(await Deno.stat(outDir).catch(() => null))?.isDirectory) {
    throw new SelfsupError(`Cannot write ${flags.out}: no folder ${outDir}`);
  }
  const gpu = await createGpu();
  const { model, normalization, meta } = await loadModel(gpu, flags.checkpoint);
  // The whole split by default: the checkpoint's --limit chose its training images only.
  const dataset = {
    ...datasetFor(meta?.config.dataset as DatasetConfig | undefined, flags),
    limit: undefined,
  };
  const whole = await loadDataset(dataset, flags.split);
  if (flags.limit !== undefined && flags.limit > whole.length) {
    throw new SelfsupError(
      `--limit ${flags.limit} exceeds the ${whole.length} images of the ${flags.split} split`,
    );
  }
  const images = flags.limit === undefined ? whole : limit(whole, flags.limit);
  const { features, labels, dim } = await backboneFeatures(
    gpu,
    model.backbone,
    images,
    normalization,
    flags.batchSize,
    "embed",
  );
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
  try {
    await writeFileAtomically(flags.out, bytes);
  } catch (error) {
    throw new SelfsupError(`Cannot write ${flags.out}: ${(error as Error).message}`);
  }
  console.log(`wrote ${labels.length} × ${dim} features to ${flags.out}`);
});
