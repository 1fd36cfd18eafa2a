/**
 * Images with a caption each, paired by index (CLIP's data): a captioned image folder —
 * `root/<class>/…/x.png` with `x.txt` beside it — or the synthetic set described in words;
 * and the loader that gives each batch of image views its captions as token sequences.
 *
 * @module
 */
import { extname, join } from "node:path";
import { SelfsupError } from "../errors.ts";
import { fileError } from "../io/files.ts";
import { statOrNull } from "./_fs.ts";
import type { TrainingBatch, TrainingLoader } from "./batcher.ts";
import { type ImageDataset, limit, subset } from "./dataset.ts";
import { imageFolderFiles, type ImageFolderOptions, loadImageFolder } from "./image_folder.ts";
import {
  ListTextDataset,
  readTextFile,
  splitSentences,
  type TextDataset,
  textSubset,
} from "./text.ts";
import { documentBlocks, type TextViews, type TokenBatch, TokenWriter } from "./text_batcher.ts";
import { tokenizerNamed } from "./tokenizer.ts";

/** Images and their captions: caption i (a document, labelled as image i) describes image i. */
export interface CaptionedDataset extends ImageDataset {
  /** The images alone (packed, for the loader's workers). */
  readonly images: ImageDataset;
  readonly captions: TextDataset;
}

/** Whether a dataset of images has captions. */
export function hasCaptions(dataset: object): dataset is CaptionedDataset {
  return "captions" in dataset;
}

/** Images with their captions, one each. */
export function withCaptions(images: ImageDataset, captions: TextDataset): CaptionedDataset {
  if (captions.length !== images.length) {
    throw new RangeError(`${images.length} images, ${captions.length} captions`);
  }
  return {
    length: images.length,
    height: images.height,
    width: images.width,
    classNames: images.classNames,
    image: (i) => images.image(i),
    label: (i) => images.label(i),
    images,
    captions,
  };
}

/** The captioned images at `indices`, in that order. */
export function captionedSubset(
  dataset: CaptionedDataset,
  indices: ArrayLike<number>,
): CaptionedDataset {
  return withCaptions(subset(dataset.images, indices), textSubset(dataset.captions, indices));
}

/** The first `n` captioned images. */
export function captionedLimit(dataset: CaptionedDataset, n: number): CaptionedDataset {
  const images = limit(dataset.images, n);
  const indices = Array.from({ length: images.length }, (_, i) => i);
  return withCaptions(images, textSubset(dataset.captions, indices));
}

/**
 * Loads a captioned image folder: the image folder at `root` (see image_folder.ts) with the
 * text of `x.txt` beside each image `x.png` (or `.jpg`, `.jpeg`) as its caption. An image
 * without its caption, or a caption without its image, is a one-line error.
 */
export async function loadCaptionedFolder(
  root: string,
  options: ImageFolderOptions,
): Promise<CaptionedDataset> {
  const { classNames, files } = await imageFolderFiles(root);
  const stems = new Set(files.map((f) => f.slice(0, -extname(f).length)));
  for (const name of classNames) await refuseStrayCaptions(root, name, stems);
  const images = await loadImageFolder(root, options);
  const documents: string[][] = [];
  for (const file of files) {
    const caption = join(root, `${file.slice(0, -extname(file).length)}.txt`);
    if (!(await statOrNull(caption))?.isFile) {
      throw new SelfsupError(`Image ${join(root, file)} has no caption ${caption} beside it`);
    }
    documents.push(splitSentences(await readTextFile(caption)));
  }
  return withCaptions(images, new ListTextDataset(documents, images.labels, classNames));
}

/** Refuses a `.txt` file below `root/<name>` with no image of its name beside it. */
async function refuseStrayCaptions(root: string, name: string, stems: Set<string>): Promise<void> {
  const walk = async (relative: string) => {
    const folder = join(root, relative);
    const entries = await Array.fromAsync(Deno.readDir(folder)).catch((error) => {
      throw fileError("read", folder, error);
    });
    for (const entry of entries) {
      if (entry.name.startsWith(".")) continue;
      const path = `${relative}/${entry.name}`;
      if (entry.isDirectory) await walk(path);
      else if (extname(entry.name).toLowerCase() === ".txt" && !stems.has(path.slice(0, -4))) {
        throw new SelfsupError(`Caption ${join(root, path)} has no image beside it`);
      }
    }
  };
  await walk(name);
}

/**
 * Gives each batch of a loader of image views the captions of its images as token
 * sequences ([CLS] caption [SEP], no masking), made in this thread.
 */
export class CaptionedLoader implements TrainingLoader {
  readonly batchesPerEpoch: number;
  readonly #writer: TokenWriter;
  readonly #batch: Required<TokenBatch>;

  constructor(
    readonly images: TrainingLoader,
    captions: TextDataset,
    views: TextViews,
    batchSize: number,
  ) {
    this.batchesPerEpoch = images.batchesPerEpoch;
    const source = documentBlocks(captions, tokenizerNamed(views.tokenizer));
    this.#writer = new TokenWriter(source, views, 0);
    this.#batch = this.#writer.allocate(batchSize);
  }

  async *epoch(epoch: number, first = 0): AsyncGenerator<TrainingBatch> {
    for await (const batch of this.images.epoch(epoch, first)) {
      this.#writer.write(batch.indices, epoch, this.#batch);
      yield { ...batch, text: this.#batch };
    }
  }

  close(): void {
    this.images.close();
  }
}
