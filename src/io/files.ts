import { SelfsupError } from "../errors.ts";

/**
 * Whether `error` is the operating system refusing a file operation (it carries an errno
 * code such as ENOSPC, EROFS, EACCES or ENOTDIR): a fact about the machine to report in one
 * line, not a bug in selfsup.
 */
export function isSystemError(error: unknown): error is Error & { code: string } {
  const code = (error as { code?: unknown } | null)?.code;
  return error instanceof Error && typeof code === "string" && /^E[A-Z0-9]+$/.test(code);
}

/**
 * The one-line error for a failed file operation: `Cannot <action> <path>: <reason>`, with
 * the system's reason stripped of the path Deno appends (the message names it already).
 * Errors that are not the system's pass through unchanged.
 *
 * @example
 * ```ts
 * import { fileError } from "./files.ts";
 * try {
 *   await Deno.readFile("/no/such/file");
 * } catch (error) {
 *   fileError("read", "/no/such/file", error).message;
 *   // "Cannot read /no/such/file: No such file or directory"
 * }
 * ```
 */
export function fileError(action: string, path: string, error: unknown, hint = ""): Error {
  if (!isSystemError(error)) return error as Error;
  const reason = error.message.replace(/ \(os error \d+\)/, "").replace(/: \w+ '.*'$/s, "");
  return new SelfsupError(`Cannot ${action} ${path}: ${reason}${hint}`);
}

/**
 * Writes a file atomically: to a temporary file `<path>.<pid>.tmp` in the same folder,
 * flushed to disk, then renamed over `path`, so a crash or a full disk leaves the previous
 * file whole. A failure removes the temporary file and is a one-line {@link SelfsupError}.
 */
export async function writeFileAtomically(path: string, data: Uint8Array | string): Promise<void> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const temporary = temporaryPath(path);
  try {
    const file = await Deno.open(temporary, { write: true, create: true, truncate: true });
    try {
      let written = 0;
      while (written < bytes.length) written += await file.write(bytes.subarray(written));
      await file.sync();
    } finally {
      file.close();
    }
    await Deno.rename(temporary, path);
  } catch (error) {
    await Deno.remove(temporary).catch(() => {});
    throw fileError("write", path, error);
  }
}

/** Where {@link writeFileAtomically} stages `path` in this process. */
export function temporaryPath(path: string): string {
  return `${path}.${Deno.pid}.tmp`;
}

/** Whether `name` is a file {@link writeFileAtomically} staged: `<name>.<pid>.tmp`. */
export function isTemporaryName(name: string): boolean {
  return /^.+\.\d+\.tmp$/.test(name);
}
