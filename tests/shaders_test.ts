import { generatedShaders, staleShaders } from "../src/gpu/generate/mod.ts";
import { assertEquals } from "./_assert.ts";

Deno.test("the generated shaders in shaders/ are what their generators write", async () => {
  const stale = await staleShaders(new URL("../shaders/", import.meta.url));
  assertEquals(stale, [], "run `deno task shaders` and commit the result");
});

Deno.test("the generated GEMM kernels are straight-line code but for their loop over k", () => {
  for (const [name, text] of generatedShaders()) {
    const loops = text.match(/\b(for|loop|while)\b\s*[({]/g) ?? [];
    assertEquals(loops.length, 1, `${name}: loops`);
    if (/var\s+\w+\s*:\s*array/.test(text.replace(/var<workgroup>/g, ""))) {
      throw new Error(`${name} declares a private array`);
    }
  }
});
