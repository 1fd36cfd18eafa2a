/**
 * The user's cache folder and a checked download into it.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { SelfsupError } from "../errors.ts";
import { progress } from "../progress.ts";

/**
 * The folder where selfsup keeps downloads and caches: `$XDG_CACHE_HOME/selfsup` or
 * `~/.cache/selfsup` on Linux, `~/Library/Caches/selfsup` on macOS and
 * `%LOCALAPPDATA%\selfsup` on Windows.
 */
export function defaultCacheDir(): string {
  const env = (name: string) => Deno.env.get(name) || undefined;
  switch (Deno.build.os) {
    case "darwin":
      return join(homedir(), "Library", "Caches", "selfsup");
    case "windows":
      return join(env("LOCALAPPDATA") ?? join(homedir(), "AppData", "Local"), "selfsup");
    default:
      return join(env("XDG_CACHE_HOME") ?? join(homedir(), ".cache"), "selfsup");
  }
}

/** What {@linkcode downloadFile} fetches and how it checks it. */
export interface DownloadOptions {
  /** Address to fetch. */
  url: string;
  /** Final path; the file appears there only once complete and verified. */
  dest: string;
  /** Expected MD5 of the whole file, lowercase hex. */
  md5: string;
  /** Label of the progress display. */
  label: string;
  /** Show progress (default true). */
  showProgress?: boolean;
}

/**
 * Downloads `url` to `dest + ".part"`, checks its MD5 and only then renames it to `dest`, so a
 * file at `dest` is always complete. A failed fetch or checksum leaves nothing at `dest` and
 * removes the partial file. Every failure is a {@linkcode SelfsupError} that starts with
 * "Cannot download <url>", so a caller can add where to put the file by hand.
 */
export async function downloadFile(options: DownloadOptions): Promise<void> {
  const { url, dest, md5 } = options;
  const part = dest + ".part";
  await Deno.mkdir(dirname(dest), { recursive: true });
  let response: Response;
  try {
    response = await fetch(url);
  } catch (error) {
    throw new SelfsupError(`Cannot download ${url}: ${message(error)}`);
  }
  if (!response.ok || !response.body) {
    await response.body?.cancel();
    throw new SelfsupError(`Cannot download ${url}: HTTP ${response.status}`);
  }
  const total = Number(response.headers.get("content-length") ?? 0);
  const hash = createHash("md5");
  const show = options.showProgress ?? true;
  const bar = show ? progress({ label: options.label, total, unit: "B" }) : null;
  const file = await Deno.open(part, { write: true, create: true, truncate: true });
  let received = 0;
  try {
    for await (const chunk of response.body) {
      hash.update(chunk);
      let written = 0;
      while (written < chunk.length) written += await file.write(chunk.subarray(written));
      received += chunk.length;
      bar?.update(received);
    }
  } catch (error) {
    file.close();
    await Deno.remove(part).catch(() => {});
    throw new SelfsupError(
      `Cannot download ${url}: the connection failed after ${received} bytes (${message(error)})`,
    );
  } finally {
    bar?.stop();
  }
  file.close();
  const actual = hash.digest("hex");
  if (actual !== md5) {
    await Deno.remove(part);
    throw new SelfsupError(
      `Cannot download ${url}: got ${received} bytes with MD5 ${actual}, expected MD5 ${md5}`,
    );
  }
  await Deno.rename(part, dest);
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
