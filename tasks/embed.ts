/**
 * `deno task embed`: backbone features of a dataset split, in dataset order, written to
 * safetensors as `features` [N, D] (F32) and `labels` [N] (I64).
 *
 * @module
 */
import { dirname, resolve } from "node:path";
import { dataFlagHelp, datasetFor, onStopSignals, positiveInteger, runTask } from "../src/cli.ts";
import { statOrNull } from "../src/data/_fs.ts";
import { type DatasetConfig, datasetNames, limitItems, loadDataset } from "../src/data/load.ts";
import { Command, Option } from "../src/deps.ts";
import { SelfsupError } from "../src/errors.ts";
import { backboneFeatures } from "../src/evaluate.ts";
import { createGpu } from "../src/gpu/device.ts";
import { fileError, temporaryPath, writeFileAtomically } from "../src/io/files.ts";
import { serializeSafetensors } from "../src/io/safetensors.ts";
import { loadBackbone } from "../src/model.ts";

const command = new Command()
  .name("embed")
  .description("Write a checkpoint's backbone features of a dataset split to a safetensors file.")
  .requiredOption("--checkpoint <path>", "a selfsup checkpoint")
  .requiredOption("--out <path>", "the safetensors file to write (never the --checkpoint)")
  .option("--force", "replace --out if it exists")
  .addOption(
    new Option("--split <split>", "dataset split").choices(["train", "test"] as const).default(
      "test" as const,
    ),
  )
  .addOption(
    new Option("--dataset <name>", "data (default: the checkpoint's training data)")
      .choices(datasetNames),
  )
  .option("--data <path>", dataFlagHelp)
  .option("--limit <n>", "only the first N images (or documents) of the split", positiveInteger)
  .option("--batch-size <n>", "images per forward pass", positiveInteger, 256);

await runTask("embed", async () => {
  command.parse(Deno.args, { from: "user" });
  const flags = command.opts();
  await checkOutput(flags.out, flags.checkpoint, flags.force ?? false);
  // Stopped while writing, the partial file goes too.
  using _ = onStopSignals((signal) => {
    try {
      Deno.removeSync(temporaryPath(flags.out));
    } catch {
      // Not written yet.
    }
    Deno.exit(signal.exitCode);
  });
  const gpu = await createGpu();
  const model = await loadBackbone(gpu, flags.checkpoint);
  const { meta } = model;
  const normalization = meta!.normalization;
  // The whole split by default: the checkpoint's --limit chose its training images only.
  const dataset = {
    ...datasetFor(meta?.config.dataset as DatasetConfig | undefined, flags),
    limit: undefined,
  };
  const whole = await loadDataset(dataset, flags.split);
  if (flags.limit !== undefined && flags.limit > whole.length) {
    throw new SelfsupError(
      `--limit ${flags.limit} exceeds the ${whole.length} items of the ${flags.split} split`,
    );
  }
  const images = flags.limit === undefined ? whole : limitItems(whole, flags.limit);
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
  // Again: the file may have appeared while the features were computed.
  await checkOutput(flags.out, flags.checkpoint, flags.force ?? false);
  await writeFileAtomically(flags.out, bytes);
  console.log(`wrote ${labels.length} × ${dim} features to ${flags.out}`);
});

/**
 * Refuses an --out that would lose work: the checkpoint being read, always; an existing
 * file, unless --force; a folder, or a path whose folder does not exist.
 */
async function checkOutput(out: string, checkpoint: string, force: boolean): Promise<void> {
  const stat = (path: string) =>
    statOrNull(path).catch((error) => {
      throw fileError("use", path, error);
    });
  const folder = dirname(resolve(out));
  if (!(await stat(folder))?.isDirectory) {
    throw new SelfsupError(`Cannot write ${out}: no folder ${folder}`);
  }
  const existing = await stat(out);
  if (!existing) return;
  if (existing.isDirectory) throw new SelfsupError(`--out ${out} is a folder: name a file`);
  const source = await stat(checkpoint);
  const same = source?.ino != null && source.ino === existing.ino && source.dev === existing.dev;
  if (same || resolve(out) === resolve(checkpoint)) {
    throw new SelfsupError(
      `--out ${out} is the checkpoint being read: choose another file for the features`,
    );
  }
  if (!force) {
    throw new SelfsupError(`${out} exists: pass --force to replace it, or choose another --out`);
  }
}
