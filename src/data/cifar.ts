/**
 * CIFAR-10 and CIFAR-100 in their official binary layout, from a folder, from the `.tar.gz`,
 * or downloaded (checked by MD5) into the cache folder.
 *
 * @module
 */

import { basename, dirname, join, resolve } from "node:path";
import { SelfsupError } from "../errors.ts";
import { statOrNull } from "./_fs.ts";
import { PackedImageDataset, type Split } from "./dataset.ts";
import { defaultCacheDir, downloadFile } from "./download.ts";
import { readTar } from "./tar.ts";

/** Which CIFAR. */
export type CifarVariant = "cifar10" | "cifar100";

const PIXELS = 3072; // 32 × 32 × 3
const RECORDS_PER_FILE = 10_000;

interface CifarLayout {
  readonly title: string;
  readonly archive: string;
  readonly folder: string;
  /** Label bytes before the pixels; the last one is the label used (CIFAR-100: fine). */
  readonly labelBytes: number;
  readonly classes: number;
  readonly meta: string;
  /** Files of each split and the records each holds. */
  readonly files: Record<Split, readonly (readonly [string, number])[]>;
}

const LAYOUTS: Record<CifarVariant, CifarLayout> = {
  cifar10: {
    title: "CIFAR-10",
    archive: "cifar-10-binary.tar.gz",
    folder: "cifar-10-batches-bin",
    labelBytes: 1,
    classes: 10,
    meta: "batches.meta.txt",
    files: {
      train: [1, 2, 3, 4, 5].map((k) => [`data_batch_${k}.bin`, RECORDS_PER_FILE] as const),
      test: [["test_batch.bin", RECORDS_PER_FILE]],
    },
  },
  cifar100: {
    title: "CIFAR-100",
    archive: "cifar-100-binary.tar.gz",
    folder: "cifar-100-binary",
    labelBytes: 2,
    classes: 100,
    meta: "fine_label_names.txt",
    files: { train: [["train.bin", 50_000]], test: [["test.bin", RECORDS_PER_FILE]] },
  },
};

/** Where each archive is published and its MD5 (the publisher's figures). */
export const CIFAR_SOURCES: Readonly<Record<CifarVariant, { url: string; md5: string }>> = {
  cifar10: {
    url: "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
    md5: "c32a1d4ab5d03f1284b67883e8d87530",
  },
  cifar100: {
    url: "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
    md5: "03b5dce01913d631647c71ecec9e9cb8",
  },
};

/** Options of {@linkcode loadCifar}. */
export interface CifarOptions {
  /** "cifar10" (default) or "cifar100" (fine labels). */
  variant?: CifarVariant;
  /** "train" (50,000 images) or "test" (10,000). */
  split: Split;
  /**
   * The extracted folder (`cifar-10-batches-bin`, `cifar-100-binary`), a folder holding it or
   * its `.tar.gz`, or the `.tar.gz` itself. Default: the cache folder ({@linkcode defaultCacheDir}).
   * The path must exist: an existing folder without the data is where the archive is
   * downloaded to, but a mistyped path is not made into one. An archive is extracted
   * beside itself on first use, so that later loads read the folder; where it cannot be written,
   * it is read from the archive each time.
   */
  path?: string;
  /** Download when the data is absent (default true). */
  download?: boolean;
  /** Download address and MD5, for mirrors (default {@linkcode CIFAR_SOURCES}). */
  source?: { url: string; md5: string };
  /** Show download progress (default true). */
  showProgress?: boolean;
}

/**
 * Loads a CIFAR split as a packed 32×32 dataset (pixels in shared memory, HWC). Files are
 * checked for their exact sizes; a missing or damaged file is a {@linkcode SelfsupError} that
 * names it.
 *
 * @example
 * ```ts ignore
 * import { loadCifar } from "./cifar.ts";
 * const train = await loadCifar({ split: "train", path: "../shared/data/cifar-10-batches-bin" });
 * train.length; // 50000
 * ```
 */
export async function loadCifar(options: CifarOptions): Promise<PackedImageDataset> {
  const variant = options.variant ?? "cifar10";
  const layout = LAYOUTS[variant];
  const path = options.path ?? defaultCacheDir();
  const info = await statOrNull(path);
  if (info === null && options.path !== undefined) {
    throw new SelfsupError(
      `Cannot read ${layout.title}: ${path} does not exist (a folder to download it into ` +
        `must exist already; without a path it is downloaded to ${defaultCacheDir()})`,
    );
  }
  if (info?.isFile) {
    if (basename(path) === otherLayout(variant).archive) refuseOtherVariant(variant, path);
    const folder = await extractBeside(layout, path, info);
    if (folder) return await readFolder(layout, folder, options.split);
    return await readArchive(layout, path, options.split);
  }
  if (info?.isDirectory) {
    if (await isDataFolder(layout, path)) return await readFolder(layout, path, options.split);
    const folder = join(path, layout.folder);
    if (await statOrNull(folder)) return await readFolder(layout, folder, options.split);
    const archive = join(path, layout.archive);
    if (await statOrNull(archive)) {
      // Loads of both splits at once extract once: the second finds the folder made.
      await oneAtATime(resolve(folder), async () => {
        if (!await statOrNull(folder)) await extractArchive(layout, archive);
      });
      return await readFolder(layout, folder, options.split);
    }
    const other = otherLayout(variant);
    if (
      await isDataFolder(other, path) || await statOrNull(join(path, other.folder)) ||
      await statOrNull(join(path, other.archive))
    ) {
      refuseOtherVariant(variant, path);
    }
  }
  if (options.download === false) {
    throw new SelfsupError(
      `Cannot find ${layout.title} in ${path}: put ${layout.archive}, or the ${layout.folder} ` +
        `folder extracted from it, there`,
    );
  }
  await download(layout, options, path);
  return await readFolder(layout, join(path, layout.folder), options.split);
}

function otherLayout(variant: CifarVariant): CifarLayout {
  return LAYOUTS[variant === "cifar10" ? "cifar100" : "cifar10"];
}

/** Refuses `path`, which holds the other CIFAR than `variant`. */
function refuseOtherVariant(variant: CifarVariant, path: string): never {
  const other = variant === "cifar10" ? "cifar100" : "cifar10";
  throw new SelfsupError(
    `${path} holds ${LAYOUTS[other].title}, not ${LAYOUTS[variant].title}: use --dataset ${other}`,
  );
}

async function isDataFolder(layout: CifarLayout, path: string): Promise<boolean> {
  for (const [name] of [...layout.files.train, ...layout.files.test, [layout.meta]]) {
    if (await statOrNull(join(path, name))) return true;
  }
  return false;
}

function recordSize(layout: CifarLayout): number {
  return layout.labelBytes + PIXELS;
}

/** The output arrays of one split, filled file by file. */
class SplitBuilder {
  readonly pixels: Uint8Array;
  readonly labels: Int32Array;
  readonly #layout: CifarLayout;
  readonly #starts = new Map<string, number>();
  readonly #done = new Set<string>();
  classNames: string[] | null = null;

  constructor(layout: CifarLayout, split: Split) {
    this.#layout = layout;
    let total = 0;
    for (const [name, records] of layout.files[split]) {
      this.#starts.set(name, total);
      total += records;
    }
    this.pixels = new Uint8Array(new SharedArrayBuffer(total * PIXELS));
    this.labels = new Int32Array(total);
  }

  /** Whether `name` is a data file of this split. */
  wants(name: string): boolean {
    return this.#starts.has(name);
  }

  /** Throws unless `size` is the exact size of data file `name`. */
  checkSize(name: string, size: number): void {
    const expected = this.#records(name) * recordSize(this.#layout);
    if (size !== expected) {
      throw new SelfsupError(
        `Cannot read ${this.#layout.title}: ${name} has ${size} bytes, expected ${expected}`,
      );
    }
  }

  #records(name: string): number {
    return this.#layout.files.train.concat(this.#layout.files.test).find(([n]) => n === name)![1];
  }

  /**
   * Reads data file `name` through `read` (which fills a buffer and returns the count) in
   * chunks, converting planar records to HWC pixels.
   */
  async fill(name: string, read: (into: Uint8Array) => Promise<number>): Promise<void> {
    const layout = this.#layout;
    const size = recordSize(layout);
    const records = this.#records(name);
    const start = this.#starts.get(name)!;
    const chunkRecords = 1000;
    const chunk = new Uint8Array(chunkRecords * size);
    for (let done = 0; done < records; done += chunkRecords) {
      const count = Math.min(chunkRecords, records - done);
      const want = count * size;
      let got = 0;
      while (got < want) {
        const n = await read(chunk.subarray(got, want));
        if (n === 0) break;
        got += n;
      }
      if (got < want) {
        throw new SelfsupError(
          `Cannot read ${layout.title}: ${name} ended after ${done * size + got} bytes, ` +
            `expected ${records * size}`,
        );
      }
      this.#convert(name, chunk, count, start + done);
    }
    this.#done.add(name);
  }

  #convert(name: string, src: Uint8Array, count: number, first: number): void {
    const layout = this.#layout;
    const size = recordSize(layout);
    const pixels = this.pixels;
    for (let r = 0; r < count; r++) {
      const base = r * size;
      const label = src[base + layout.labelBytes - 1];
      if (label >= layout.classes) {
        throw new SelfsupError(
          `Cannot read ${layout.title}: ${name} record ${first + r} has label ${label}, ` +
            `expected 0–${layout.classes - 1}`,
        );
      }
      this.labels[first + r] = label;
      const red = base + layout.labelBytes, green = red + 1024, blue = red + 2048;
      let out = (first + r) * PIXELS;
      for (let k = 0; k < 1024; k++) {
        pixels[out++] = src[red + k];
        pixels[out++] = src[green + k];
        pixels[out++] = src[blue + k];
      }
    }
  }

  /** Parses the class-name file. */
  setClassNames(source: string, text: string): void {
    const names = text.split(/\r?\n/).map((line) => line.trim()).filter((line) => line !== "");
    if (names.length !== this.#layout.classes) {
      throw new SelfsupError(
        `Cannot read ${this.#layout.title}: ${source} lists ${names.length} class names, ` +
          `expected ${this.#layout.classes}`,
      );
    }
    this.classNames = names;
  }

  /** The finished dataset; throws naming the first file that never came. */
  finish(where: string): PackedImageDataset {
    for (const name of this.#starts.keys()) {
      if (!this.#done.has(name)) {
        throw new SelfsupError(`Cannot read ${this.#layout.title}: ${name} is missing in ${where}`);
      }
    }
    if (!this.classNames) {
      throw new SelfsupError(
        `Cannot read ${this.#layout.title}: ${this.#layout.meta} is missing in ${where}`,
      );
    }
    return new PackedImageDataset(this.pixels, this.labels, 32, 32, this.classNames);
  }
}

async function readFolder(
  layout: CifarLayout,
  folder: string,
  split: Split,
): Promise<PackedImageDataset> {
  const builder = new SplitBuilder(layout, split);
  for (const [name] of layout.files[split]) {
    const path = join(folder, name);
    const info = await statOrNull(path);
    if (!info) continue; // finish() names it
    builder.checkSize(name, info.size);
    using file = await Deno.open(path);
    await builder.fill(name, (into) => file.read(into).then((n) => n ?? 0));
  }
  const metaPath = join(folder, layout.meta);
  if (await statOrNull(metaPath)) {
    builder.setClassNames(layout.meta, await Deno.readTextFile(metaPath));
  }
  return builder.finish(folder);
}

/** The archive's members, decompressed (damage is a SelfsupError naming the archive). */
async function* archiveEntries(archive: string) {
  const file = await Deno.open(archive);
  yield* readTar(file.readable.pipeThrough(new DecompressionStream("gzip")), archive);
}

async function readArchive(
  layout: CifarLayout,
  archive: string,
  split: Split,
): Promise<PackedImageDataset> {
  const builder = new SplitBuilder(layout, split);
  for await (const entry of archiveEntries(archive)) {
    const name = basename(entry.name);
    if (entry.type !== "file") continue;
    if (builder.wants(name)) {
      builder.checkSize(name, entry.size);
      await builder.fill(name, entry.read);
    } else if (name === layout.meta) {
      builder.setClassNames(name, new TextDecoder().decode(await entry.bytes()));
    }
  }
  return builder.finish(archive);
}

/**
 * The file, inside an extracted folder, that names the archive it came from: a folder beside
 * an archive is only used for that archive when it came from it.
 */
const SOURCE_FILE = ".selfsup-source.json";

/** What identifies an archive: its name, size and modification time. */
interface ArchiveStamp {
  archive: string;
  size: number;
  mtime: number | null;
}

function archiveStamp(archive: string, info: Deno.FileInfo): ArchiveStamp {
  return { archive: basename(archive), size: info.size, mtime: info.mtime?.getTime() ?? null };
}

async function readSourceStamp(folder: string): Promise<ArchiveStamp | null> {
  try {
    const stamp = JSON.parse(await Deno.readTextFile(join(folder, SOURCE_FILE)));
    return typeof stamp?.archive === "string" ? stamp : null;
  } catch {
    return null;
  }
}

/** Tails of the runs of {@linkcode oneAtATime}, by key. */
const queues = new Map<string, Promise<void>>();

/** Runs `fn` after every earlier call with the same key has settled. */
function oneAtATime<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const run = (queues.get(key) ?? Promise.resolve()).then(fn);
  const tail = run.then(() => {}, () => {});
  queues.set(key, tail);
  tail.then(() => {
    if (queues.get(key) === tail) queues.delete(key);
  });
  return run;
}

/**
 * The data folder beside `archive`, extracted from it on first use so that each split does not
 * decompress the whole archive again (an earlier extraction of a changed archive of the same
 * name is replaced). Null where the folder cannot be used: its directory cannot be written,
 * or a folder of that name is there that did not come from this archive.
 */
async function extractBeside(
  layout: CifarLayout,
  archive: string,
  info: Deno.FileInfo,
): Promise<string | null> {
  const folder = join(dirname(archive), layout.folder);
  const stamp = archiveStamp(archive, info);
  return await oneAtATime(resolve(folder), async () => {
    let replace = false;
    if (await statOrNull(folder)) {
      const source = await readSourceStamp(folder);
      if (source?.archive !== stamp.archive) return null;
      if (source.size === stamp.size && source.mtime === stamp.mtime) return folder;
      replace = true;
    }
    try {
      await extractArchive(layout, archive, replace);
    } catch (error) {
      if (cannotWrite(error)) return null;
      throw error;
    }
    return folder;
  });
}

/** Whether `error` says the file system refuses writes (permissions, read-only, full). */
function cannotWrite(error: unknown): boolean {
  if (error instanceof Deno.errors.PermissionDenied || error instanceof Deno.errors.NotCapable) {
    return true;
  }
  const code = (error as { code?: unknown } | null)?.code;
  return code === "EROFS" || code === "ENOSPC" || code === "EDQUOT";
}

/**
 * Unpacks the archive's data folder next to it, through a `.part` folder renamed at the end,
 * so an interrupted extraction is never mistaken for a complete one. The folder records which
 * archive it came from. `replace` removes an existing folder once the new one is complete.
 */
async function extractArchive(
  layout: CifarLayout,
  archive: string,
  replace = false,
): Promise<void> {
  const dir = dirname(archive);
  const part = join(dir, layout.folder + ".part");
  const stamp = archiveStamp(archive, await Deno.stat(archive));
  await Deno.remove(part, { recursive: true }).catch(() => {});
  try {
    await Deno.mkdir(part, { recursive: true });
    for await (const entry of archiveEntries(archive)) {
      if (entry.type !== "file" || !entry.name.startsWith(layout.folder + "/")) continue;
      using file = await Deno.open(join(part, basename(entry.name)), { write: true, create: true });
      const buffer = new Uint8Array(1 << 20);
      for (let n; (n = await entry.read(buffer)) > 0;) {
        let written = 0;
        while (written < n) written += await file.write(buffer.subarray(written, n));
      }
    }
    await Deno.writeTextFile(join(part, SOURCE_FILE), JSON.stringify(stamp) + "\n");
  } catch (error) {
    await Deno.remove(part, { recursive: true }).catch(() => {});
    throw error;
  }
  const folder = join(dir, layout.folder);
  if (replace) await Deno.remove(folder, { recursive: true });
  await Deno.rename(part, folder);
}

async function download(layout: CifarLayout, options: CifarOptions, dir: string): Promise<void> {
  const source = options.source ?? CIFAR_SOURCES[options.variant ?? "cifar10"];
  const archive = join(dir, layout.archive);
  try {
    await downloadFile({
      url: source.url,
      dest: archive,
      md5: source.md5,
      label: `download ${layout.archive}`,
      showProgress: options.showProgress,
    });
  } catch (error) {
    if (!(error instanceof SelfsupError)) throw error;
    throw new SelfsupError(
      `${error.message}. Put ${layout.archive}, or the ${layout.folder} folder extracted ` +
        `from it, in ${dir}`,
    );
  }
  await extractArchive(layout, archive);
  await Deno.remove(archive);
}
