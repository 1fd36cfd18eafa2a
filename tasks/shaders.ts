/**
 * `deno task shaders`: rewrites the generated WGSL files in shaders/ from their generators
 * (src/gpu/generate/); `--check` only reports the files that differ, and fails if any does.
 * For developers: the files are committed, so users never run this. Its one flag is read by
 * hand: src/deps.ts (commander) and src/cli.ts also load imagescript's decoders, which want
 * environment access this task, allowed to read and to write shaders/ alone, does not have.
 *
 * @module
 */
import { generatedShaders, staleShaders } from "../src/gpu/generate/mod.ts";

const check = Deno.args.includes("--check");
const unknown = Deno.args.filter((a) => a !== "--check");
if (unknown.length > 0) {
  console.error(`error: unknown argument ${unknown[0]} (usage: deno task shaders [--check])`);
  Deno.exit(2);
}
const directory = new URL("../shaders/", import.meta.url);
const shaders = generatedShaders();
const stale = await staleShaders(directory);
if (check) {
  for (const name of stale) console.error(`shaders/${name} is not what its generator writes`);
  if (stale.length > 0) {
    console.error("run `deno task shaders` to rewrite them");
    Deno.exit(1);
  }
  console.log(`${shaders.size} generated shaders up to date`);
} else {
  for (const [name, text] of shaders) {
    if (stale.includes(name)) await Deno.writeTextFile(new URL(name, directory), text);
  }
  console.log(`${stale.length} of ${shaders.size} generated shaders rewritten`);
}
