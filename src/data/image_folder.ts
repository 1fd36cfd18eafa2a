/**
 * An image folder (`root/<class>/<image>`, PNG or JPEG) decoded once with imagescript, resized
 * to a fixed size and kept as raw bytes, in memory and in a cache file keyed by the files'
 * names, sizes and modification times.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { dirname, extname, join, relative, resolve } from "node:path";
import { jpegDecoder, pngDecoder } from "../deps.ts";
import { SelfsupError } from "../errors.ts";
import { fileError } from "../io/files.ts";
import { PackedImageDataset } from "./dataset.ts";
import { defaultCacheDir } from "./download.ts";

/** Options of {@linkcode loadImageFolder}. */
export interface ImageFolderOptions {
  /** Output height (default 32). */
  height?: number;
  /** Output width (default: the height). */
  width?: number;
  /** Keep the decoded images in a cache file so the next run skips decoding (default true). */
  diskCache?: boolean;
  /** Folder for the cache file (default {@linkcode defaultCacheDir}). */
  cacheDir?: string;
}

const EXTENSIONS = new Set([".png", ".jpg", ".jpeg"]);
const CACHE_FORMAT = "selfsup-image-folder-1";

interface ImageFile {
  /** Path relative to the root, with "/" separators. */
  rel: string;
  label: number;
  size: number;
  mtime: number;
}

const memoryCache = new Map<string, PackedImageDataset>();

/**
 * Loads `root/<class>/<image>` (classes are the sorted subfolder names; images are found at any
 * depth below them; other files are ignored). Each image is scaled so that its shorter side
 * fits and centre-cropped to height × width (torchvision's Resize + CenterCrop), with an
 * antialiased bilinear filter as PIL uses.
 *
 * @example
 * ```ts ignore
 * import { loadImageFolder } from "./image_folder.ts";
 * const ds = await loadImageFolder("photos", { height: 32 });
 * ds.classNames; // e.g. ["cat", "dog"]
 * ```
 */
export async function loadImageFolder(
  root: string,
  options: ImageFolderOptions = {},
): Promise<PackedImageDataset> {
  const height = options.height ?? 32;
  const width = options.width ?? height;
  const absRoot = resolve(root);
  const { classNames, files } = await listImages(absRoot);
  const key = cacheKey(absRoot, height, width, classNames, files);
  const cached = memoryCache.get(key);
  if (cached) return cached;
  const cacheFile = join(options.cacheDir ?? defaultCacheDir(), "image-folders", `${key}.bin`);
  const useDisk = options.diskCache ?? true;
  let dataset = useDisk
    ? await readCache(cacheFile, classNames, files.length, height, width)
    : null;
  if (!dataset) {
    dataset = await decodeAll(absRoot, files, classNames, height, width);
    if (useDisk) await writeCache(cacheFile, dataset);
  }
  memoryCache.set(key, dataset);
  return dataset;
}

/**
 * The class names {@linkcode loadImageFolder} gives `root`: its subfolders not starting with
 * ".", sorted. Lists the folder without reading any image.
 */
export async function imageFolderClasses(root: string): Promise<string[]> {
  const classNames: string[] = [];
  try {
    for await (const entry of Deno.readDir(root)) {
      if (entry.isDirectory && !entry.name.startsWith(".")) classNames.push(entry.name);
    }
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new SelfsupError(`Cannot read image folder ${root}: it does not exist`);
    }
    if (error instanceof Deno.errors.NotADirectory) {
      throw new SelfsupError(`Cannot read image folder ${root}: it is a file, not a folder`);
    }
    throw fileError("read image folder", root, error);
  }
  if (classNames.length === 0) {
    throw new SelfsupError(
      `Cannot read image folder ${root}: it has no class subfolders (expected root/<class>/<image>)`,
    );
  }
  return classNames.sort();
}

/**
 * The images {@linkcode loadImageFolder} loads from `root`, in its order: their paths
 * relative to the root ("/"-separated) and the class names. Reads no image.
 */
export async function imageFolderFiles(
  root: string,
): Promise<{ classNames: string[]; files: string[] }> {
  const { classNames, files } = await listImages(resolve(root));
  return { classNames, files: files.map((f) => f.rel) };
}

async function listImages(root: string): Promise<{ classNames: string[]; files: ImageFile[] }> {
  const classNames = await imageFolderClasses(root);
  const files: ImageFile[] = [];
  for (let label = 0; label < classNames.length; label++) {
    const classDir = join(root, classNames[label]);
    const found: ImageFile[] = [];
    await walk(classDir, async (path) => {
      const info = await Deno.stat(path).catch((error) => {
        throw fileError("read", path, error);
      });
      const rel = relative(root, path).split("\\").join("/");
      found.push({ rel, label, size: info.size, mtime: info.mtime?.getTime() ?? 0 });
    });
    if (found.length === 0) {
      throw new SelfsupError(
        `Cannot read image folder ${root}: class folder ${
          classNames[label]
        } has no PNG or JPEG images`,
      );
    }
    found.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
    files.push(...found);
  }
  return { classNames, files };
}

async function walk(dir: string, visit: (path: string) => Promise<void>): Promise<void> {
  const entries = await Array.fromAsync(Deno.readDir(dir)).catch((error) => {
    throw fileError("read", dir, error);
  });
  for (const entry of entries) {
    if (entry.name.startsWith(".")) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory) await walk(path, visit);
    else if (EXTENSIONS.has(extname(entry.name).toLowerCase())) await visit(path);
  }
}

function cacheKey(
  root: string,
  height: number,
  width: number,
  classNames: string[],
  files: ImageFile[],
): string {
  const hash = createHash("sha256");
  hash.update(JSON.stringify([CACHE_FORMAT, root, height, width, classNames]));
  for (const f of files) hash.update(`\n${f.rel}\t${f.size}\t${f.mtime}`);
  return hash.digest("hex").slice(0, 32);
}

interface PngDecoder {
  decode(bytes: Uint8Array): { width: number; height: number; framebuffer: Uint8Array };
}

interface JpegDecoder {
  decode(bytes: Uint8Array): { width: number; height: number; format: number; buffer: Uint8Array };
}

/** Decoded pixels: `channels` bytes per pixel (1 gray, 3 RGB, 4 RGBA or CMYK). */
interface Decoded {
  width: number;
  height: number;
  data: Uint8Array;
  channels: number;
  cmyk: boolean;
}

async function decodeAll(
  root: string,
  files: ImageFile[],
  classNames: string[],
  height: number,
  width: number,
): Promise<PackedImageDataset> {
  // One decoder instance each for the whole folder: a new wasm instance per image costs more
  // than decoding a small image.
  const png: PngDecoder = await pngDecoder.init();
  const jpeg: JpegDecoder = await jpegDecoder.init();
  const size = height * width * 3;
  const pixels = new Uint8Array(new SharedArrayBuffer(files.length * size));
  const labels = new Int32Array(files.length);
  for (let i = 0; i < files.length; i++) {
    const path = join(root, files[i].rel);
    const bytes = await Deno.readFile(path).catch((error) => {
      throw fileError("read", path, error);
    });
    const decoded = decodeImage(path, bytes, png, jpeg);
    resizeCenterCrop(decoded, pixels.subarray(i * size, (i + 1) * size), height, width);
    labels[i] = files[i].label;
  }
  return new PackedImageDataset(pixels, labels, height, width, classNames);
}

function decodeImage(path: string, bytes: Uint8Array, png: PngDecoder, jpeg: JpegDecoder): Decoded {
  const isPng = bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47;
  const isJpeg = bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff;
  if (!isPng && !isJpeg) {
    throw new SelfsupError(`Cannot decode ${path}: it is neither a PNG nor a JPEG file`);
  }
  try {
    if (isPng) {
      const { width, height, framebuffer } = png.decode(bytes);
      return { width, height, data: framebuffer, channels: 4, cmyk: false };
    }
    const { width, height, format, buffer } = jpeg.decode(bytes);
    const channels = format === 0 ? 1 : format === 1 ? 3 : 4;
    return { width, height, data: buffer, channels, cmyk: format === 2 };
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new SelfsupError(`Cannot decode ${path}: ${reason}`);
  }
}

/**
 * PIL's antialiased bilinear resampling along one axis: a triangle filter stretched by the
 * downscale factor, so shrinking averages all covered pixels instead of skipping some.
 */
function filterTaps(inStart: number, inSize: number, outSize: number) {
  const scale = inSize / outSize;
  const support = Math.max(scale, 1);
  const first = new Int32Array(outSize);
  const counts = new Int32Array(outSize);
  const taps = Math.ceil(support) * 2 + 1;
  const weights = new Float64Array(outSize * taps);
  for (let o = 0; o < outSize; o++) {
    const center = (o + 0.5) * scale;
    const lo = Math.max(0, Math.floor(center - support + 0.5));
    const hi = Math.min(inSize, Math.floor(center + support + 0.5));
    let sum = 0;
    for (let k = lo; k < hi; k++) {
      const w = Math.max(0, 1 - Math.abs((k - center + 0.5) / support));
      weights[o * taps + k - lo] = w;
      sum += w;
    }
    for (let k = 0; k < hi - lo; k++) weights[o * taps + k] /= sum;
    first[o] = inStart + lo;
    counts[o] = hi - lo;
  }
  return { first, counts, weights, taps };
}

/** Scales the shorter side to fit, crops the centre, writes height × width × 3 RGB bytes. */
function resizeCenterCrop(img: Decoded, out: Uint8Array, height: number, width: number): void {
  let cropH = img.height, cropW = img.width;
  if (img.width * height > img.height * width) cropW = Math.round((img.height * width) / height);
  else cropH = Math.round((img.width * height) / width);
  const top = Math.floor((img.height - cropH) / 2), left = Math.floor((img.width - cropW) / 2);
  const xs = filterTaps(left, cropW, width), ys = filterTaps(top, cropH, height);
  // Horizontal pass over the rows the crop covers, then the vertical pass.
  const rows = new Float64Array(img.height * width * 3);
  const { data, channels, cmyk } = img;
  for (let y = top; y < top + cropH; y++) {
    for (let o = 0; o < width; o++) {
      let r = 0, g = 0, b = 0;
      for (let k = 0; k < xs.counts[o]; k++) {
        const w = xs.weights[o * xs.taps + k];
        const p = (y * img.width + xs.first[o] + k) * channels;
        if (channels === 1) {
          r += w * data[p], g += w * data[p], b += w * data[p];
        } else if (cmyk) {
          // Adobe JPEGs store inverted CMYK; imagescript converts it this way too.
          const black = 1 - data[p + 3] / 255;
          r += w * (255 - data[p]) * black;
          g += w * (255 - data[p + 1]) * black;
          b += w * (255 - data[p + 2]) * black;
        } else {
          r += w * data[p], g += w * data[p + 1], b += w * data[p + 2];
        }
      }
      const q = (y * width + o) * 3;
      rows[q] = r, rows[q + 1] = g, rows[q + 2] = b;
    }
  }
  for (let o = 0; o < height; o++) {
    for (let x = 0; x < width; x++) {
      let r = 0, g = 0, b = 0;
      for (let k = 0; k < ys.counts[o]; k++) {
        const w = ys.weights[o * ys.taps + k];
        const q = ((ys.first[o] + k) * width + x) * 3;
        r += w * rows[q], g += w * rows[q + 1], b += w * rows[q + 2];
      }
      const p = (o * width + x) * 3;
      out[p] = clampByte(r), out[p + 1] = clampByte(g), out[p + 2] = clampByte(b);
    }
  }
}

function clampByte(v: number): number {
  return v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
}

/** Cache file: u32 header length, JSON header, int32 labels, then the pixels. */
async function writeCache(path: string, dataset: PackedImageDataset): Promise<void> {
  const header = new TextEncoder().encode(JSON.stringify({
    format: CACHE_FORMAT,
    count: dataset.length,
    height: dataset.height,
    width: dataset.width,
    classNames: dataset.classNames,
  }));
  const prefix = new Uint8Array(4);
  new DataView(prefix.buffer).setUint32(0, header.length, true);
  const part = `${path}.${Deno.pid}.part`;
  try {
    await Deno.mkdir(dirname(path), { recursive: true });
    using file = await Deno.open(part, { write: true, create: true, truncate: true });
    const labels = new Uint8Array(
      dataset.labels.buffer,
      dataset.labels.byteOffset,
      dataset.length * 4,
    );
    for (const chunk of [prefix, header, labels, dataset.pixels]) {
      let written = 0;
      while (written < chunk.length) written += await file.write(chunk.subarray(written));
    }
  } catch {
    // A cache that cannot be written only costs speed next time.
    await Deno.remove(part).catch(() => {});
    return;
  }
  await Deno.rename(part, path);
}

async function readCache(
  path: string,
  classNames: string[],
  count: number,
  height: number,
  width: number,
): Promise<PackedImageDataset | null> {
  using file = await Deno.open(path).catch(() => null);
  if (!file) return null;
  const readFull = async (into: Uint8Array) => {
    let got = 0;
    while (got < into.length) {
      const n = await file.read(into.subarray(got));
      if (n === null) return false;
      got += n;
    }
    return true;
  };
  const prefix = new Uint8Array(4);
  if (!await readFull(prefix)) return null;
  const headerBytes = new Uint8Array(new DataView(prefix.buffer).getUint32(0, true));
  if (headerBytes.length > 1 << 24 || !await readFull(headerBytes)) return null;
  let header: {
    format?: string;
    count?: number;
    height?: number;
    width?: number;
    classNames?: string[];
  };
  try {
    header = JSON.parse(new TextDecoder().decode(headerBytes));
  } catch {
    return null;
  }
  if (
    header.format !== CACHE_FORMAT || header.count !== count || header.height !== height ||
    header.width !== width || JSON.stringify(header.classNames) !== JSON.stringify(classNames)
  ) {
    return null;
  }
  const labels = new Int32Array(count);
  const pixels = new Uint8Array(new SharedArrayBuffer(count * height * width * 3));
  if (!await readFull(new Uint8Array(labels.buffer)) || !await readFull(pixels)) return null;
  return new PackedImageDataset(pixels, labels, height, width, classNames);
}
