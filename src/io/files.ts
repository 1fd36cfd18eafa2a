/**
 * Writes a file atomically: to a temporary file in the same folder, flushed to disk, then
 * renamed over `path`, so a crash or a full disk leaves the previous file whole.
 */
export async function writeFileAtomically(path: string, data: Uint8Array | string): Promise<void> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const temporary = `${path}.${Deno.pid}.tmp`;
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
    throw error;
  }
}
