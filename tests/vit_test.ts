import { SelfsupError } from "../src/errors.ts";
import { Program } from "../src/gpu/gpu.ts";
import type { Tensor } from "../src/gpu/tensor.ts";
import { ParameterBlock } from "../src/nn/parameters.ts";
import { gatherTokens, scatterTokens, sincosPositions } from "../src/nn/tokens.ts";
import { VisionTransformer, type VitConfig, vitSmallDefault, vitTiny } from "../src/nn/vit.ts";
import { assertEquals, assertThrows } from "./_assert.ts";
import { checkGradient, dot } from "./_gradcheck.ts";
import {
  adapterClasses,
  assertClose,
  familyGpu,
  loadFixtureFile,
  randn,
  testGpu,
} from "./_util.ts";
import type { AdapterClass } from "../src/gpu/gpu.ts";

const fixture = await loadFixtureFile(
  new URL("./fixtures/vit_model.safetensors", import.meta.url).pathname,
);

/** The fixture's model as a selfsup ViT, with its parameters loaded, on a kernel family. */
async function fixtureModel(name: "learned" | "sincos", adapterClass: AdapterClass) {
  const c = fixture.meta[name] as Record<string, number>;
  const config: VitConfig = {
    imageSize: c.img_size,
    patchSize: c.patch_size,
    dim: c.embed_dim,
    depth: c.depth,
    heads: c.num_heads,
    positions: name,
  };
  const gpu = await familyGpu(adapterClass);
  const model = new VisionTransformer(config);
  const block = new ParameterBlock(gpu, model.entries());
  const values = new Map<string, Float32Array>();
  for (const [key] of model.entries()) values.set(key, fixture.get(`${name}.param.${key}`));
  block.load(values, "fixture");
  return { gpu, model, block, batch: c.batch };
}

// Both kernel families: the GPU family's linear layers are the tiled GEMMs.
for (
  const [name, adapterClass] of adapterClasses.flatMap((c) =>
    [["learned", c], ["sincos", c]] as const
  )
) {
  const title = `ViT (${name} positions, ${adapterClass} kernels) features and every gradient`;
  Deno.test(`${title} match PyTorch`, async () => {
    const { gpu, model, block, batch } = await fixtureModel(name, adapterClass);
    const program = new Program(gpu, "vit fixture");
    const images = program.tensor(fixture.shape(`${name}.images`), "images");
    const r = program.tensor([batch, model.featureDim], "r");
    program.clear(block.grads);
    const pass = model.forward(program, images, { train: true, inputGrad: false });
    program.keep(pass.output);
    pass.backward(program, r);
    gpu.write(images, fixture.get(`${name}.images`).slice());
    gpu.write(r, fixture.get(`${name}.r`).slice());
    gpu.submit(program);
    const features = await gpu.readF32(pass.output);
    const tolerance = { atol: 1e-5, rtol: 1e-4 };
    assertClose(features, fixture.get(`${name}.features`), { ...tolerance, label: "features" });
    const grads = await block.readGrads();
    const expected = fixture.names().filter((k) => k.startsWith(`${name}.grad.`));
    if (expected.length !== grads.size) {
      throw new Error(`${grads.size} gradients, PyTorch has ${expected.length}`);
    }
    for (const key of expected) {
      const param = key.slice(`${name}.grad.`.length);
      assertClose(grads.get(param)!, fixture.get(key), { ...tolerance, label: `grad ${param}` });
    }
    program.destroy();
    block.destroy();
  });
}

Deno.test("ViT-Tiny has timm's state-dict names and shapes, and timm's initialisation", async () => {
  const model = new VisionTransformer(vitTiny);
  const names = model.entries().map(([name]) => name);
  const block = (i: number) =>
    [
      "norm1.weight",
      "norm1.bias",
      "attn.qkv.weight",
      "attn.qkv.bias",
      "attn.proj.weight",
      "attn.proj.bias",
      "norm2.weight",
      "norm2.bias",
      "mlp.fc1.weight",
      "mlp.fc1.bias",
      "mlp.fc2.weight",
      "mlp.fc2.bias",
    ].map((n) => `blocks.${i}.${n}`);
  const expected = [
    "cls_token",
    "pos_embed",
    "patch_embed.proj.weight",
    "patch_embed.proj.bias",
    ...Array.from({ length: 12 }, (_, i) => block(i)).flat(),
    "norm.weight",
    "norm.bias",
  ];
  assertEquals(names, expected, "entry names");
  const gpu = await testGpu();
  const params = new ParameterBlock(gpu, model.entries());
  const shape = (name: string) => params.shapes.get(name)!.join("×");
  const shapes = {
    "cls_token": "1×1×192",
    "pos_embed": "1×65×192",
    "patch_embed.proj.weight": "192×3×4×4",
    "blocks.11.attn.qkv.weight": "576×192",
    "blocks.0.mlp.fc1.weight": "768×192",
    "blocks.0.mlp.fc2.weight": "192×768",
  };
  for (const [name, s] of Object.entries(shapes)) assertEquals(shape(name), s, name);
  let seed = 1;
  params.initialize(() => ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646);
  const values = await params.read();
  const std = (v: Float32Array) => Math.sqrt(v.reduce((s, x) => s + x * x, 0) / v.length);
  const near = (name: string, actual: number, wanted: number, tolerance: number) => {
    if (Math.abs(actual / wanted - 1) > tolerance) {
      throw new Error(`${name}: ${actual}, expected ${wanted}`);
    }
  };
  near("pos_embed std", std(values.get("pos_embed")!), 0.02, 0.05);
  near("cls_token std", std(values.get("cls_token")!), 1e-6, 0.3);
  near("qkv weight std", std(values.get("blocks.3.attn.qkv.weight")!), 0.02, 0.02);
  near("fc2 weight std", std(values.get("blocks.7.mlp.fc2.weight")!), 0.02, 0.02);
  // PyTorch's Conv2d default: uniform on ±1/√(3·4·4), whose std is that bound over √3.
  const bound = 1 / Math.sqrt(48);
  near("patch weight std", std(values.get("patch_embed.proj.weight")!), bound / Math.sqrt(3), 0.05);
  for (const name of ["patch_embed.proj.weight", "patch_embed.proj.bias"]) {
    if (values.get(name)!.some((v) => Math.abs(v) > bound)) {
      throw new Error(`${name} beyond ±${bound}`);
    }
  }
  for (const [name, value] of values) {
    if (name.startsWith("blocks.") && name.endsWith(".bias") && !name.includes("norm")) {
      if (value.some((v) => v !== 0)) throw new Error(`${name} is not zero`);
    }
    if (/norm\d?\.weight$/.test(name) && value.some((v) => v !== 1)) throw new Error(`${name} ≠ 1`);
    if (/norm\d?\.bias$/.test(name) && value.some((v) => v !== 0)) throw new Error(`${name} ≠ 0`);
  }
  const kinds = new Map(params.segments.map((s) => [s.name, s.kind]));
  assertEquals(
    ["cls_token", "pos_embed", "blocks.0.norm1.weight", "blocks.0.attn.qkv.bias", "norm.bias"].map(
      (n) => kinds.get(n),
    ),
    ["embedding", "embedding", "norm", "bias", "norm"],
    "parameter kinds",
  );
  params.destroy();
});

Deno.test("fixed sine-cosine positions are a statistic named pos_embed, not a parameter", async () => {
  const gpu = await testGpu();
  const config = { ...vitSmallDefault, imageSize: 16, depth: 1, positions: "sincos" as const };
  const model = new VisionTransformer(config);
  const params = new ParameterBlock(gpu, model.entries());
  if (params.segments.some((s) => s.name === "pos_embed")) throw new Error("pos_embed is learned");
  params.initialize(Math.random);
  const values = await params.read();
  assertClose(values.get("pos_embed")!, sincosPositions(128, 4), { atol: 0, rtol: 0 });
  params.destroy();
});

Deno.test("ViT config errors are one-line SelfsupErrors", () => {
  const base = vitSmallDefault;
  assertThrows(
    () => new VisionTransformer({ ...base, patchSize: 5 }),
    SelfsupError,
    "does not divide",
  );
  assertThrows(
    () => new VisionTransformer({ ...base, heads: 3 }),
    SelfsupError,
    "divisible by 3 heads",
  );
  assertThrows(
    () => new VisionTransformer({ ...base, dim: 18, heads: 3, positions: "sincos" }),
    SelfsupError,
    "divisible by 4",
  );
  assertThrows(() => new VisionTransformer({ ...base, depth: 0 }), SelfsupError, "depth");
  assertThrows(() => new VisionTransformer({ ...base, mlpRatio: 0.001 }), SelfsupError, "MLP");
});

// One head of width 6 over 1 + 4 tokens, an MLP of width 15: nothing a multiple of 4 or 8.
const oddConfig: VitConfig = {
  imageSize: 4,
  patchSize: 2,
  dim: 6,
  depth: 2,
  heads: 1,
  mlpRatio: 2.5,
};

Deno.test("ViT gradients agree with finite differences (one head, odd sizes)", async () => {
  const gpu = await testGpu();
  const model = new VisionTransformer(oddConfig);
  const params = new ParameterBlock(gpu, model.entries());
  let seed = 3;
  params.initialize(() => ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646);
  // Parameters of unit-like scale, so that every layer matters to the loss.
  const start = randn(params.values.size, 11, 0.4);
  const program = new Program(gpu, "vit gradcheck");
  const images = program.tensor([3, 3, 4, 4], "images");
  const r = program.tensor([3, 6], "r");
  program.clear(params.grads);
  const pass = model.forward(program, images, { train: true, inputGrad: true });
  program.keep(pass.output);
  const gradImages = pass.backward(program, r)!;
  program.keep(gradImages);
  const x0 = randn(images.size, 12);
  const r0 = randn(r.size, 13);
  gpu.write(images, x0);
  gpu.write(r, r0);
  const loss = async (into: typeof images, v: Float32Array<ArrayBuffer>) => {
    gpu.write(into, v);
    gpu.submit(program);
    return dot(r0, await gpu.readF32(pass.output));
  };
  gpu.write(params.values, start);
  gpu.submit(program);
  const [grads, gx] = await gpu.read(params.grads, gradImages) as Float32Array[];
  await checkGradient("ViT parameters", (v) => loss(params.values, v), start.slice(), grads, {
    directions: 3,
    coordinates: 4,
  });
  gpu.write(params.values, start);
  await checkGradient("ViT images", (v) => loss(images, v), x0.slice(), gx);
  program.destroy();
  params.destroy();
});

Deno.test("the token path in pieces: any order of all patches gives the same features", async () => {
  const gpu = await testGpu();
  const model = new VisionTransformer(oddConfig);
  const params = new ParameterBlock(gpu, model.entries());
  gpu.write(params.values, randn(params.values.size, 21, 0.4));
  const options = { train: true, inputGrad: false };
  const run = async (record: (p: Program, images: Tensor) => Tensor) => {
    const program = new Program(gpu, "vit pieces");
    const images = program.tensor([2, 3, 4, 4], "images");
    program.clear(params.grads);
    const features = record(program, images);
    program.keep(features);
    gpu.write(images, randn(images.size, 22));
    gpu.submit(program);
    const [values, grads] = await gpu.read(features, params.grads) as Float32Array[];
    program.destroy();
    return { values, grads };
  };
  const r = randn(12, 23);
  const whole = await run((p, images) => {
    const pass = model.forward(p, images, options);
    const gradR = p.tensor([2, 6], "r");
    gpu.write(gradR, r);
    pass.backward(p, gradR);
    return pass.output;
  });
  // Attention is equivariant to the order of tokens, and the positions travel with them.
  const pieces = await run((p, images) => {
    const embed = model.embedPatches(p, images, options);
    const order = p.tensor([2, 4], "order", "u32");
    gpu.write(order, Uint32Array.from([2, 0, 3, 1, 3, 2, 1, 0]));
    const shuffled = gatherTokens(p, embed.output, order);
    const tokens = model.prependClassToken(p, shuffled, { ...options, inputGrad: true });
    const encoded = model.encode(p, tokens.output, { ...options, inputGrad: true });
    if (encoded.output.shape.join() !== "2,5,6") throw new Error(`[${encoded.output.shape}]`);
    const first = p.tensor([2, 1], "first", "u32");
    gpu.write(first, new Uint32Array(2));
    const features = gatherTokens(p, encoded.output, first);
    const gradR = p.tensor([2, 1, 6], "r");
    gpu.write(gradR, r);
    const gradEncoded = scatterTokens(p, gradR, first, 5);
    const gradShuffled = tokens.backward(p, encoded.backward(p, gradEncoded)!)!;
    embed.backward(p, scatterTokens(p, gradShuffled, order, 4));
    return features;
  });
  assertClose(pieces.values, whole.values, { atol: 1e-5, rtol: 1e-5, label: "features" });
  assertClose(pieces.grads, whole.grads, { atol: 1e-5, rtol: 1e-4, label: "gradients" });
  params.destroy();
});
