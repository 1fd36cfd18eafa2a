/**
 * A minimal streaming tar reader (ustar and GNU long names), enough to unpack the CIFAR
 * archives without a dependency.
 *
 * @module
 */

import { SelfsupError } from "../errors.ts";

const BLOCK = 512;

/** One member of a tar archive. */
export interface TarEntry {
  /** Path inside the archive, without a leading "./". */
  readonly name: string;
  /** Size of the contents in bytes. */
  readonly size: number;
  /** "file" for regular files, "directory", or "other" (links, devices…). */
  readonly type: "file" | "directory" | "other";
  /**
   * Reads the next part of the contents into `into`; returns how many bytes it wrote, fewer
   * than `into.length` only at the end of the member. Read an entry before asking for the next
   * one: whatever is left unread is skipped.
   */
  read(into: Uint8Array): Promise<number>;
  /** The rest of the contents in one array. */
  bytes(): Promise<Uint8Array>;
}

/** Pulls exact byte counts out of a stream of chunks. */
class ByteReader {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #source: string;
  #chunk: Uint8Array = new Uint8Array(0);
  #pos = 0;

  constructor(stream: ReadableStream<Uint8Array>, source: string) {
    this.#reader = stream.getReader();
    this.#source = source;
  }

  /** The next chunk, or null at the end; a failing stream (e.g. bad gzip) is a SelfsupError. */
  async #next(): Promise<Uint8Array | null> {
    try {
      const { done, value } = await this.#reader.read();
      return done ? null : value;
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new SelfsupError(`Cannot read ${this.#source}: ${reason}`);
    }
  }

  /** Fills `into` completely; returns how many bytes it got before the stream ended. */
  async read(into: Uint8Array): Promise<number> {
    let filled = 0;
    while (filled < into.length) {
      if (this.#pos === this.#chunk.length) {
        const chunk = await this.#next();
        if (!chunk) return filled;
        this.#chunk = chunk;
        this.#pos = 0;
      }
      const n = Math.min(into.length - filled, this.#chunk.length - this.#pos);
      into.set(this.#chunk.subarray(this.#pos, this.#pos + n), filled);
      this.#pos += n;
      filled += n;
    }
    return filled;
  }

  /** Drops `count` bytes; returns how many it dropped before the stream ended. */
  async skip(count: number): Promise<number> {
    let skipped = 0;
    while (skipped < count) {
      if (this.#pos === this.#chunk.length) {
        const chunk = await this.#next();
        if (!chunk) return skipped;
        this.#chunk = chunk;
        this.#pos = 0;
      }
      const n = Math.min(count - skipped, this.#chunk.length - this.#pos);
      this.#pos += n;
      skipped += n;
    }
    return skipped;
  }

  async cancel(): Promise<void> {
    await this.#reader.cancel().catch(() => {});
  }
}

function field(header: Uint8Array, start: number, length: number): string {
  let end = start;
  while (end < start + length && header[end] !== 0) end++;
  return new TextDecoder().decode(header.subarray(start, end));
}

function octal(header: Uint8Array, start: number, length: number): number {
  const text = field(header, start, length).trim();
  return text === "" ? 0 : parseInt(text, 8);
}

/** Header checksum: the byte sum with the checksum field itself read as spaces. */
function checksumMatches(header: Uint8Array): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : header[i];
  return sum === octal(header, 148, 8);
}

/**
 * Reads a tar stream entry by entry. `source` names the archive in error messages.
 *
 * @example
 * ```ts ignore
 * import { readTar } from "./tar.ts";
 * const file = await Deno.open("archive.tar.gz");
 * const stream = file.readable.pipeThrough(new DecompressionStream("gzip"));
 * for await (const entry of readTar(stream, "archive.tar.gz")) console.log(entry.name);
 * ```
 */
export async function* readTar(
  stream: ReadableStream<Uint8Array>,
  source: string,
): AsyncGenerator<TarEntry> {
  const reader = new ByteReader(stream, source);
  const header = new Uint8Array(BLOCK);
  let longName: string | null = null;
  try {
    while (true) {
      const got = await reader.read(header);
      // Two zero blocks end an archive; a stream that simply stops is tolerated too.
      if (got === 0 || header.every((b) => b === 0)) return;
      if (got < BLOCK || !checksumMatches(header)) {
        throw new SelfsupError(`Cannot read ${source}: not a tar archive, or it is damaged`);
      }
      const size = octal(header, 124, 12);
      const flag = String.fromCharCode(header[156]);
      const padded = Math.ceil(size / BLOCK) * BLOCK;
      let left = size;
      const read = async (into: Uint8Array): Promise<number> => {
        const want = Math.min(into.length, left);
        const got = await reader.read(want === into.length ? into : into.subarray(0, want));
        left -= got;
        if (got < want) {
          throw new SelfsupError(`Cannot read ${source}: the archive ends inside a member`);
        }
        return got;
      };
      const bytes = async (): Promise<Uint8Array> => {
        const body = new Uint8Array(left);
        await read(body);
        return body;
      };
      const finish = async () => {
        const rest = left + padded - size;
        left = 0;
        if (await reader.skip(rest) < rest) {
          throw new SelfsupError(`Cannot read ${source}: the archive ends inside a member`);
        }
      };
      if (flag === "L") {
        // GNU long name: the next header's real name is this member's contents.
        longName = field(await bytes(), 0, size);
        await finish();
        continue;
      }
      // Only POSIX ustar headers have a name prefix; GNU headers keep other fields there.
      const prefix = field(header, 257, 6) === "ustar" ? field(header, 345, 155) : "";
      let name = longName ??
        (prefix ? `${prefix}/${field(header, 0, 100)}` : field(header, 0, 100));
      longName = null;
      name = name.replace(/^\.\//, "");
      const type = flag === "0" || flag === "\0" ? "file" : flag === "5" ? "directory" : "other";
      yield { name, size, type, read, bytes };
      await finish();
    }
  } finally {
    await reader.cancel();
  }
}
