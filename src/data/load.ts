import { SelfsupError } from "../errors.ts";
import { statOrNull } from "./_fs.ts";
import { CIFAR_MEAN, CIFAR_STD } from "./augment.ts";
import { loadCifar } from "./cifar.ts";
import { type ImageDataset, limit, type Split, subset } from "./dataset.ts";
import { imageFolderClasses, loadImageFolder } from "./image_folder.ts";
import { Random } from "./random.ts";
import {
  captionedLimit,
  captionedSubset,
  hasCaptions,
  loadCaptionedFolder,
  withCaptions,
} from "./captions.ts";
import { syntheticCaptions, syntheticDataset } from "./synthetic.ts";
import { syntheticText } from "./synthetic_text.ts";
import {
  isTextDataset,
  loadTextFolder,
  type TextDataset,
  textFolderClasses,
  textSubset,
} from "./text.ts";

/**
 * The datasets selfsup knows by name: images, text (`text`, `synthetic-text`), and images
 * with captions (`captions`, `synthetic-captions`).
 */
export type DatasetName =
  | "synthetic"
  | "cifar10"
  | "cifar100"
  | "folder"
  | "text"
  | "synthetic-text"
  | "captions"
  | "synthetic-captions";

/** The names `--dataset` takes. */
export const datasetNames: readonly DatasetName[] = [
  "synthetic",
  "cifar10",
  "cifar100",
  "folder",
  "text",
  "synthetic-text",
  "captions",
  "synthetic-captions",
];

/** A dataset of either kind: images, or text documents. */
export type Dataset = ImageDataset | TextDataset;

/** Whether the dataset of that name holds text. */
export function isTextDatasetName(name: DatasetName): boolean {
  return name === "text" || name === "synthetic-text";
}

/** Whether the dataset of that name holds images with captions. */
export function isCaptionedDatasetName(name: DatasetName): boolean {
  return name === "captions" || name === "synthetic-captions";
}

/** Which data to use; the same value selects the training and the test split. */
export interface DatasetConfig {
  readonly name: DatasetName;
  /** CIFAR: the folder or archive (else the cache folder); folder: its root; text: a .txt file or folder. */
  readonly path?: string;
  /** Keep only the first N images of the training split. */
  readonly limit?: number;
  /** Side of the square images for an image folder (CIFAR and synthetic are 32). */
  readonly imageSize?: number;
  /** Seed of the synthetic set and of a folder's held-out test split. */
  readonly seed?: number;
}

/** How messages name the data: its name, and its path when it has one. */
export function datasetLabel(config: DatasetConfig): string {
  return config.path ? `${config.name} ${config.path}` : config.name;
}

/** ImageNet's channel statistics, for photographs in an image folder. */
const imagenetMean: readonly [number, number, number] = [0.485, 0.456, 0.406];
const imagenetStd: readonly [number, number, number] = [0.229, 0.224, 0.225];

/**
 * The per-channel mean and std to normalise a dataset's images with (text has none: the
 * identity, recorded as such in a text encoder's checkpoint).
 */
export function datasetNormalization(config: DatasetConfig): {
  mean: readonly [number, number, number];
  std: readonly [number, number, number];
} {
  if (isTextDatasetName(config.name)) return { mean: [0, 0, 0], std: [1, 1, 1] };
  return config.name === "folder" || config.name === "captions"
    ? { mean: imagenetMean, std: imagenetStd }
    : { mean: CIFAR_MEAN, std: CIFAR_STD };
}

/**
 * Loads one split. An image folder with `train/` and `test/` (or `val/`) subfolders uses
 * them, and they must hold the same class subfolders; any other folder holds out a fixed fifth of its images, chosen by the seed, as the
 * test split. `limit` applies to the training split only.
 */
export async function loadDataset(config: DatasetConfig, split: Split): Promise<Dataset> {
  const dataset = await loadSplit(config, split);
  if (split === "train" && config.limit !== undefined) {
    if (config.limit > dataset.length) {
      throw new SelfsupError(
        `--limit ${config.limit} exceeds the ${dataset.length} training ${
          isTextDataset(dataset) ? "documents" : "images"
        } of ${config.name}`,
      );
    }
    return limitItems(dataset, config.limit);
  }
  return dataset;
}

/** The first `n` items of a dataset of either kind (all of them when n ≥ length). */
export function limitItems(dataset: Dataset, n: number): Dataset {
  if (hasCaptions(dataset)) return captionedLimit(dataset, n);
  if (!isTextDataset(dataset)) return limit(dataset, n);
  return textSubset(dataset, Array.from({ length: Math.min(n, dataset.length) }, (_, i) => i));
}

/** Loads one split of an image dataset; text is refused, naming what the data holds. */
export async function loadImages(config: DatasetConfig, split: Split): Promise<ImageDataset> {
  const dataset = await loadDataset(config, split);
  if (isTextDataset(dataset)) {
    throw new SelfsupError(`--dataset ${config.name} holds text; this needs images`);
  }
  return dataset;
}

async function loadSplit(config: DatasetConfig, split: Split): Promise<Dataset> {
  switch (config.name) {
    case "synthetic":
      return syntheticDataset({ split, seed: config.seed ?? 0 });
    case "cifar10":
    case "cifar100":
      return await loadCifar({ variant: config.name, split, path: config.path });
    case "folder": {
      const size = config.imageSize ?? 32;
      const options = { height: size, width: size };
      return await loadFolderSplit(config, split, {
        classes: imageFolderClasses,
        load: (path) => loadImageFolder(path, options),
        subset,
      });
    }
    case "synthetic-text":
      return syntheticText({ split, seed: config.seed ?? 0 });
    case "synthetic-captions": {
      const { images, captions } = syntheticCaptions({ split, seed: config.seed ?? 0 });
      return withCaptions(images, captions);
    }
    case "captions": {
      const size = config.imageSize ?? 32;
      return await loadFolderSplit(config, split, {
        classes: imageFolderClasses,
        load: (path) => loadCaptionedFolder(path, { height: size, width: size }),
        subset: captionedSubset,
      });
    }
    case "text":
      return await loadFolderSplit(config, split, {
        classes: textFolderClasses,
        load: loadTextFolder,
        subset: textSubset,
      });
    default:
      // Reached from a configuration on disk (a checkpoint's, a run's config.json).
      throw new SelfsupError(
        `Unknown dataset ${JSON.stringify((config as { name: unknown }).name)}: use ${
          datasetNames.join(", ")
        }`,
      );
  }
}

/** How {@link loadFolderSplit} reads a folder of one kind of data. */
interface FolderKind<D extends Dataset> {
  /** The class subfolders of a folder. */
  classes(path: string): Promise<string[]>;
  load(path: string): Promise<D>;
  subset(dataset: D, indices: ArrayLike<number>): D;
}

async function loadFolderSplit<D extends Dataset>(
  config: DatasetConfig,
  split: Split,
  kind: FolderKind<D>,
): Promise<D> {
  if (!config.path) throw new SelfsupError(`--dataset ${config.name} needs --data PATH`);
  const { classes, load } = kind;
  const isDir = async (path: string) => (await statOrNull(path))?.isDirectory ?? false;
  if (await isDir(`${config.path}/train`)) {
    let heldOut: string | null = null;
    for (const name of ["test", "val"]) {
      if (await isDir(`${config.path}/${name}`)) {
        heldOut = name;
        break;
      }
    }
    if (heldOut === null) {
      if (split === "train") return await load(`${config.path}/train`);
      throw new SelfsupError(`${config.path} has train/ but neither test/ nor val/`);
    }
    // Labels are indices into each split's own sorted class list: the lists must agree, or a
    // class missing from one split would shift the labels of the others. Checked on either
    // split (listing only, no image is decoded), so training never starts on such a folder.
    const [trainClasses, heldOutClasses] = await Promise.all([
      classes(`${config.path}/train`),
      classes(`${config.path}/${heldOut}`),
    ]);
    if (trainClasses.join("\0") !== heldOutClasses.join("\0")) {
      throw new SelfsupError(
        `${config.path}: train/ and ${heldOut}/ have different classes, so their labels would ` +
          `not agree: train/ has ${trainClasses.join(", ")}; ${heldOut}/ has ` +
          `${heldOutClasses.join(", ")}`,
      );
    }
    return await load(`${config.path}/${split === "train" ? "train" : heldOut}`);
  }
  const all = await load(config.path);
  const order = new Random(config.seed ?? 0, 0x7e57).permutation(all.length);
  const held = Math.max(1, Math.floor(all.length / 5));
  const indices = split === "test" ? order.subarray(0, held) : order.subarray(held);
  return kind.subset(all, Int32Array.from(indices).sort());
}
