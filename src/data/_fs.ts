/**
 * File-system helpers shared by the data loaders.
 *
 * @module
 */

/**
 * `Deno.stat(path)`, or null when nothing is there: the path does not exist, or one of its
 * parents is a file. Any other failure (a permission error, say) is thrown, not taken for
 * absence.
 *
 * @example
 * ```ts
 * import { statOrNull } from "./_fs.ts";
 * const info = await statOrNull("no/such/file");
 * info; // null
 * ```
 */
export async function statOrNull(path: string | URL): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.stat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory) {
      return null;
    }
    throw error;
  }
}
