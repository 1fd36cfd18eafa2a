/**
 * Text datasets: documents made of sentences, each document with a class label. Loaded from
 * UTF-8 `.txt` files — one file, a folder of files (unlabelled: one class), or a labelled
 * folder `root/<class>/<file>.txt` (each file one document of its class) — or made by the
 * built-in synthetic corpus (synthetic_text.ts).
 *
 * @module
 */
import { extname, join } from "node:path";
import { SelfsupError } from "../errors.ts";
import { fileError } from "../io/files.ts";
import { statOrNull } from "./_fs.ts";

/** A labelled set of documents. */
export interface TextDataset {
  readonly kind: "text";
  /** Number of documents. */
  readonly length: number;
  /** Class names; labels index into this list. */
  readonly classNames: readonly string[];
  /** Document i as its sentences, in order. */
  sentences(i: number): readonly string[];
  /** Class index of document i. */
  label(i: number): number;
}

/** A text dataset held as arrays. */
export class ListTextDataset implements TextDataset {
  readonly kind = "text";

  constructor(
    readonly documents: readonly (readonly string[])[],
    readonly labels: Int32Array,
    readonly classNames: readonly string[],
  ) {
    if (documents.length !== labels.length) {
      throw new RangeError(`${documents.length} documents, ${labels.length} labels`);
    }
  }

  get length(): number {
    return this.documents.length;
  }

  sentences(i: number): readonly string[] {
    return this.documents[i];
  }

  label(i: number): number {
    return this.labels[i];
  }
}

/** Whether a dataset is a text dataset (else it holds images). */
export function isTextDataset(dataset: object): dataset is TextDataset {
  return (dataset as { kind?: string }).kind === "text";
}

/** The documents of `dataset` at `indices`, in that order. */
export function textSubset(dataset: TextDataset, indices: ArrayLike<number>): ListTextDataset {
  const documents: (readonly string[])[] = [];
  const labels = new Int32Array(indices.length);
  for (let k = 0; k < indices.length; k++) {
    documents.push(dataset.sentences(indices[k]));
    labels[k] = dataset.label(indices[k]);
  }
  return new ListTextDataset(documents, labels, dataset.classNames);
}

/**
 * The sentences of a text: its lines, each split after `.`, `!` or `?` followed by a space;
 * surrounding white space trimmed, empty ones dropped.
 */
export function splitSentences(text: string): string[] {
  return text.split(/\r?\n/).flatMap((line) => line.split(/(?<=[.!?])\s+/))
    .map((s) => s.trim()).filter((s) => s.length > 0);
}

/** Paragraphs (runs of lines between blank lines) as documents of sentences. */
function paragraphs(text: string): string[][] {
  return text.split(/\r?\n\s*\r?\n/).map(splitSentences).filter((p) => p.length > 0);
}

/**
 * Reads a `.txt` file as UTF-8 text; one line names what is wrong with a file that is not
 * text: binary (NUL bytes), empty, or invalid UTF-8.
 */
export async function readTextFile(path: string): Promise<string> {
  const bytes = await Deno.readFile(path).catch((error) => {
    throw fileError("read", path, error);
  });
  if (bytes.includes(0)) {
    throw new SelfsupError(`Cannot read ${path} as text: it holds NUL bytes (a binary file?)`);
  }
  const bad = firstInvalidUtf8(bytes);
  if (bad >= 0) {
    throw new SelfsupError(`Cannot read ${path} as text: it is not valid UTF-8 (at byte ${bad})`);
  }
  const text = new TextDecoder().decode(bytes);
  if (text.trim().length === 0) throw new SelfsupError(`Cannot read ${path} as text: it is empty`);
  return text;
}

/**
 * The offset of the first byte that does not belong to a well-formed UTF-8 sequence (the
 * lead byte of a broken one), or −1 when all do. Overlong forms, surrogates and code points
 * past U+10FFFF are refused, as a fatal TextDecoder refuses them.
 */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const lead = bytes[i];
    if (lead < 0x80) {
      i++;
      continue;
    }
    // Continuation bytes and the bounds of the second byte, by lead byte (RFC 3629).
    const [count, low, high] = lead >= 0xc2 && lead <= 0xdf
      ? [1, 0x80, 0xbf]
      : lead === 0xe0
      ? [2, 0xa0, 0xbf]
      : lead === 0xed
      ? [2, 0x80, 0x9f]
      : lead >= 0xe1 && lead <= 0xef
      ? [2, 0x80, 0xbf]
      : lead === 0xf0
      ? [3, 0x90, 0xbf]
      : lead === 0xf4
      ? [3, 0x80, 0x8f]
      : lead >= 0xf1 && lead <= 0xf3
      ? [3, 0x80, 0xbf]
      : [0, 0, 0];
    if (count === 0 || i + count >= bytes.length) return i;
    if (bytes[i + 1] < low || bytes[i + 1] > high) return i;
    for (let k = 2; k <= count; k++) if ((bytes[i + k] & 0xc0) !== 0x80) return i;
    i += count + 1;
  }
  return -1;
}

/** `.txt` files (any case) below `dir`, at any depth, sorted by path; dot-files skipped. */
async function textFiles(dir: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (folder: string) => {
    const entries = await Array.fromAsync(Deno.readDir(folder)).catch((error) => {
      throw fileError("read", folder, error);
    });
    for (const entry of entries) {
      if (entry.name.startsWith(".")) continue;
      const path = join(folder, entry.name);
      if (entry.isDirectory) await walk(path);
      else if (extname(entry.name).toLowerCase() === ".txt") found.push(path);
    }
  };
  await walk(dir);
  return found.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Subfolders of `dir` not starting with ".", sorted: the classes of a labelled folder. */
export async function textFolderClasses(dir: string): Promise<string[]> {
  const names: string[] = [];
  const entries = await Array.fromAsync(Deno.readDir(dir)).catch((error) => {
    throw fileError("read", dir, error);
  });
  for (const entry of entries) {
    if (entry.isDirectory && !entry.name.startsWith(".")) names.push(entry.name);
  }
  return names.sort();
}

/**
 * Loads text from `path`: a `.txt` file, or a folder of them without subfolders, as
 * unlabelled documents (one class, "text"), each paragraph a document; or a labelled folder
 * `root/<class>/…/<file>.txt` (files at any depth below a class), each file a document of
 * its class. A folder with subfolders is labelled.
 */
export async function loadTextFolder(path: string): Promise<ListTextDataset> {
  const info = await statOrNull(path);
  if (!info) throw new SelfsupError(`Cannot read text ${path}: it does not exist`);
  if (info.isFile) {
    const documents = paragraphs(await readTextFile(path));
    return new ListTextDataset(documents, new Int32Array(documents.length), ["text"]);
  }
  const classes = await textFolderClasses(path);
  if (classes.length === 0) {
    const files = await textFiles(path);
    if (files.length === 0) {
      throw new SelfsupError(`Cannot read text ${path}: it has no .txt files`);
    }
    const documents: string[][] = [];
    for (const file of files) documents.push(...paragraphs(await readTextFile(file)));
    return new ListTextDataset(documents, new Int32Array(documents.length), ["text"]);
  }
  const documents: string[][] = [];
  const labels: number[] = [];
  for (const [label, name] of classes.entries()) {
    const files = await textFiles(join(path, name));
    if (files.length === 0) {
      throw new SelfsupError(
        `Cannot read text folder ${path}: class folder ${name} has no .txt files`,
      );
    }
    for (const file of files) {
      const sentences = splitSentences(await readTextFile(file));
      documents.push(sentences);
      labels.push(label);
    }
  }
  return new ListTextDataset(documents, Int32Array.from(labels), classes);
}
