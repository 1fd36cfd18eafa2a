/**
 * The shaders that are generated rather than written by hand, and a comparison of them with
 * the committed files.
 *
 * @module
 */
import { conv2dShaders } from "./conv2d.ts";
import { linearShaders } from "./linear.ts";

/** Every generated shader's text, by file name in shaders/. */
export function generatedShaders(): Map<string, string> {
  return new Map([...conv2dShaders(), ...linearShaders()]);
}

/** The generated shaders whose file in `directory` is missing or differs from the generator. */
export async function staleShaders(directory: URL): Promise<string[]> {
  const stale: string[] = [];
  for (const [name, text] of generatedShaders()) {
    const committed = await Deno.readTextFile(new URL(name, directory)).catch(() => null);
    if (committed !== text) stale.push(name);
  }
  return stale;
}
