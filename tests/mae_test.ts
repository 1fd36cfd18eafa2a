// MAE as a method: a whole first step and the reconstructions against PyTorch
// (tests/fixtures/make_mae_fixtures.py), its masks, views, names and refusals.
import { augmentPreset } from "../src/data/augment.ts";
import { SelfsupError } from "../src/errors.ts";
import { Program } from "../src/gpu/gpu.ts";
import {
  mae,
  type MaeOptions,
  maePreviewShuffles,
  maeShuffles,
  maskArrays,
  visiblePatches,
} from "../src/methods/mae.ts";
import {
  createLossScale,
  createMethodOptimizer,
  recordTrainingStep,
} from "../src/methods/method.ts";
import { methodNamed } from "../src/methods/registry.ts";
import type { BackboneConfig } from "../src/nn/backbone.ts";
import { Block, vitSmallDefault } from "../src/nn/vit.ts";
import { assertEquals, assertThrows } from "./_assert.ts";
import { compare, fixtureVit } from "./_method_step.ts";
import { deterministicValues } from "./_init.ts";
import { assertClose, loadFixtureFile, norm, testGpu } from "./_util.ts";

const fixture = await loadFixtureFile(
  new URL("./fixtures/mae_step1.safetensors", import.meta.url).pathname,
);
const meta = fixture.meta as Record<string, number> & {
  ids: { step: number[]; preview: number[] };
};
const backbone: BackboneConfig = { ...fixtureVit(meta), positions: "sincos" };
const batch = meta.batch;
const patches = (meta.img_size / meta.patch_size) ** 2;

/**
 * MAE on the fixture's ViT in `precision`, its parameters the fixture script's deterministic
 * values.
 */
async function fixtureRun(precision: "f32" | "f16" = "f32") {
  const gpu = await testGpu();
  const options = mae.validate({
    maskRatio: meta.mask_ratio,
    decoderDim: meta.decoder_embed_dim,
    decoderDepth: meta.decoder_depth,
    decoderHeads: meta.decoder_num_heads,
    normPixLoss: true,
  }, batch);
  const run = mae.build(
    {
      gpu,
      backbone: precision === "f16" ? { ...backbone, precision } as BackboneConfig : backbone,
      batchSize: batch,
      totalSteps: 10,
      stepsPerEpoch: 10,
      seed: 0,
    },
    options,
  );
  // The fixture's module has MAE's names: the encoder's bare, as in the checkpoint. The
  // fixed positions keep their sine-cosine values.
  const bare = (name: string) => name.replace(/^backbone\./, "");
  const parameters = run.trainable.parameters.map(([name, p]) => [bare(name), p] as const);
  const values = await run.trainable.read();
  for (const [name, v] of deterministicValues(parameters)) {
    values.set(run.trainable.parameters.find(([n]) => bare(n) === name)![0], v);
  }
  run.trainable.load(values, "deterministic initial values");
  return { gpu, run, bare };
}

Deno.test("MAE masks come from the seed and the step: the fixture's are selfsup's", () => {
  assertEquals([...maeShuffles(0, 0, batch, patches)], meta.ids.step, "step 0's masks");
  assertEquals([...maePreviewShuffles(0, batch, patches)], meta.ids.preview, "preview masks");
  const again = maeShuffles(0, 7, batch, patches);
  assertEquals([...maeShuffles(0, 7, batch, patches)], [...again], "step 7 twice");
  if (String(maeShuffles(0, 8, batch, patches)) === String(again)) throw new Error("same masks");
  if (String(maeShuffles(1, 7, batch, patches)) === String(again)) throw new Error("same masks");
  for (let n = 0; n < batch; n++) {
    const row = [...again.subarray(n * patches, (n + 1) * patches)].sort((a, b) => a - b);
    assertEquals(row, Array.from({ length: patches }, (_, i) => i), `row ${n} is a permutation`);
  }
  // MAE's int(L * (1 - mask_ratio)), and the mask hides the rest of each row.
  assertEquals([visiblePatches(64, 0.75), visiblePatches(49, 0.75), visiblePatches(64, 0.9)], [
    16,
    12,
    6,
  ]);
  const { mask } = maskArrays(again, patches, 4);
  assertEquals(mask.reduce((a, b) => a + b, 0), batch * (patches - 4), "masked patches");
});

Deno.test("MAE first step matches PyTorch: the loss and every parameter's gradient", async () => {
  const { gpu, run, bare } = await fixtureRun();
  const program = new Program(gpu, "MAE first step");
  const images = program.tensor(fixture.shape("images"), "images");
  const labels = program.tensor([batch], "labels", "i32");
  program.clear(run.trainable.grads);
  const { loss, embeddings } = run.record(program, { views: [images], labels });
  gpu.write(images, fixture.get("images").slice());
  run.prepare(0);
  gpu.submit(program);
  const [lossValue, features] = await gpu.read(loss, embeddings) as Float32Array[];
  assertClose(lossValue, fixture.get("loss"), {
    atol: 4 * fixture.get("loss_f32err")[0] + 1e-6,
    rtol: 0,
    label: "loss",
  });
  const grads = await run.trainable.readGrads();
  const named = new Map([...grads].map(([name, g]) => [bare(name), g]));
  const expected = fixture.names().filter((k) => k.startsWith("grad_f32err.")).length;
  assertEquals(named.size, expected, "gradients, as PyTorch's trained parameters");
  compare(fixture, "grad", named);
  // The collapse monitor watches the encoder's class token.
  assertEquals(embeddings.shape, [batch, meta.embed_dim], "embeddings");
  if (!features.every(Number.isFinite)) throw new Error("embeddings are not finite");
  program.destroy();
  run.destroy();
});

// MAE's encoder in f16, its decoder and loss in f32, one step as the trainer records it: the
// loss scale (2¹⁶, the trainer's first) enters at the encoder's output and is divided out of
// the encoder's gradients, and the guarded SGD update runs. f16 rounding at the encoder's ~30
// roundings moved these gradients' norms by at most 0.08% and the loss by 2·10⁻⁶ of itself
// (llvmpipe); the bounds are 0.5% and 10⁻⁴. A loss scale left in, or put on the decoder's
// gradients too, is off by 2¹⁶; a cast or a pass missing, by O(1).
Deno.test("MAE's step with an f16 encoder matches PyTorch's f32 step within f16 rounding", async () => {
  const { gpu, run, bare } = await fixtureRun("f16");
  assertEquals(run.backbone.config.name, "vit");
  const optimizer = createMethodOptimizer(gpu, run, { name: "sgd" });
  const lossScale = createLossScale(gpu, run)!;
  const program = new Program(gpu, "MAE f16 step");
  const images = program.tensor(fixture.shape("images"), "images");
  const labels = program.tensor([batch], "labels", "i32");
  const inputs = { views: [images], labels };
  const { loss } = recordTrainingStep(program, run, optimizer, inputs, lossScale);
  // The encoder's layer norms run in f16, the decoder's in f32.
  const norms = (name: string) => program.dispatches.filter((d) => d.name === name).length;
  assertEquals(
    [norms("layer_norm_forward_f16"), norms("layer_norm_forward")],
    [2 * meta.depth + 1, 2 * meta.decoder_depth + 1],
    "layer norms in f16 and f32",
  );
  gpu.write(images, fixture.get("images").slice());
  run.prepare(0);
  const before = await run.trainable.read();
  optimizer.prepare(1, 0.5);
  gpu.submit(program);
  const [lossValue, scale, goodSteps] = await gpu.read(
    loss,
    lossScale.scale,
    lossScale.goodSteps,
  );
  assertClose(lossValue, fixture.get("loss"), { atol: 0, rtol: 1e-4, label: "loss" });
  // No overflow: the scale stays, and the update ran (parameters moved by −0.5·gradient).
  assertEquals([scale[0], goodSteps[0]], [2 ** 16, 1], "loss scale after the step");
  const grads = await run.trainable.readGrads();
  const after = await run.trainable.read();
  const far: string[] = [];
  for (const [name, g] of grads) {
    const key = bare(name);
    const expected = fixture.has(`grad.${key}`)
      ? norm(fixture.get(`grad.${key}`))
      : fixture.get(`grad_norm.${key}`)[0];
    const ratio = norm(g) / expected;
    if (!(Math.abs(ratio - 1) <= 0.005)) far.push(`${key}: ${ratio}`);
    const moved = after.get(name)!.map((v, i) => v - before.get(name)![i]);
    assertClose(moved, g.map((v) => -0.5 * v), { atol: 1e-6, rtol: 1e-4, label: `${key} update` });
  }
  program.destroy();
  optimizer.destroy();
  lossScale.destroy();
  run.destroy();
  if (far.length > 0) throw new Error(`gradient norms against PyTorch's: ${far.join(", ")}`);
});

Deno.test("MAE reconstructions match MAE's demo: masked, reconstructed, pasted", async () => {
  const { run } = await fixtureRun();
  const images = fixture.get("images").slice();
  const shown = await run.preview!(images, batch);
  assertEquals(shown.shape, [batch, 3, meta.img_size, meta.img_size], "shape");
  assertClose(shown.original, images, { atol: 0, rtol: 0, label: "original" });
  compare(
    fixture,
    "preview",
    new Map([
      ["reconstruction", shown.reconstruction],
      ["masked", shown.masked],
      ["pasted", shown.pasted],
    ]),
  );
  // The same masks at every call.
  const again = await run.preview!(images, batch);
  assertClose(again.masked, shown.masked, { atol: 0, rtol: 0, label: "masks" });
  run.destroy();
});

Deno.test("MAE's decoder and encoder carry MAE's and timm's names", async () => {
  const { run } = await fixtureRun();
  const names = [...run.trainable.parameters, ...run.trainable.runningStats].map(([n]) => n);
  const blockNames = new Block(12, 3).entries().map(([n]) => n);
  const decoder = names.filter((n) => !n.startsWith("backbone."));
  assertEquals(decoder, [
    "decoder_embed.weight",
    "decoder_embed.bias",
    "mask_token",
    // A block's names are timm's (tests/vit_test.ts pins them).
    ...[0, 1].flatMap((i) => blockNames.map((n) => `decoder_blocks.${i}.${n}`)),
    "decoder_norm.weight",
    "decoder_norm.bias",
    "decoder_pred.weight",
    "decoder_pred.bias",
    "decoder_pos_embed",
  ], "decoder entries");
  const shapes = run.trainable.shapes;
  assertEquals(shapes.get("decoder_pred.weight"), [3 * meta.patch_size ** 2, 12], "prediction");
  assertEquals(shapes.get("decoder_pos_embed"), [1, 1 + patches, 12], "decoder positions");
  const kinds = new Map(run.trainable.segments.map((s) => [s.name, s.kind]));
  // Not decayed with excludeBiasAndNorm: the tokens are embeddings.
  assertEquals(
    ["mask_token", "backbone.cls_token"].map((n) => kinds.get(n)),
    ["embedding", "embedding"],
    "token kinds",
  );
  assertEquals(run.backbone.config.name, "vit", "backbone");
  run.destroy();
});

Deno.test("MAE initialises as models_mae.py: Xavier-uniform weights, tokens of std 0.02", async () => {
  const gpu = await testGpu();
  const run = mae.build(
    {
      gpu,
      backbone: { name: "vit", ...vitSmallDefault, positions: "sincos" },
      batchSize: 2,
      totalSteps: 1,
      stepsPerEpoch: 1,
      seed: 3,
    },
    mae.defaults,
  );
  const values = await run.trainable.read();
  const std = (v: Float32Array) => Math.sqrt(v.reduce((s, x) => s + x * x, 0) / v.length);
  // Within four standard errors of a standard deviation estimated from n values, 1/√(2n).
  const near = (name: string, wanted: number) => {
    const v = values.get(name)!;
    const actual = std(v);
    if (Math.abs(actual / wanted - 1) > 4 / Math.sqrt(2 * v.length)) {
      throw new Error(`${name}: std ${actual}, not ${wanted}`);
    }
  };
  // Xavier-uniform: uniform on ±√(6 / (fan_in + fan_out)), std that over √3.
  const xavier = (fanIn: number, fanOut: number) => Math.sqrt(2 / (fanIn + fanOut));
  near("backbone.blocks.0.attn.qkv.weight", xavier(128, 384));
  near("backbone.patch_embed.proj.weight", xavier(48, 128));
  near("decoder_blocks.1.mlp.fc1.weight", xavier(128, 512));
  near("decoder_pred.weight", xavier(128, 48));
  near("mask_token", 0.02);
  near("backbone.cls_token", 0.02);
  for (
    const name of ["decoder_embed.bias", "decoder_pred.bias", "backbone.blocks.0.mlp.fc1.bias"]
  ) {
    if (values.get(name)!.some((v) => v !== 0)) throw new Error(`${name} is not zero`);
  }
  run.destroy();
});

Deno.test("MAE's views are one crop-and-flip view: RandomResizedCrop (0.2, 1), flip, nothing else", () => {
  const base = augmentPreset("simclr-seed", 32);
  const groups = mae.views(mae.defaults, base);
  assertEquals(groups.length, 1, "groups");
  assertEquals(groups[0].count, 1, "views per image");
  assertEquals(groups[0].augment, {
    ...base,
    crop: { scale: [0.2, 1], ratio: [3 / 4, 4 / 3] },
    flip: 0.5,
    jitter: null,
    grayscale: 0,
    blur: null,
    solarize: null,
  }, "recipe");
});

Deno.test("MAE refuses what no run can use, in one line", async () => {
  const gpu = await testGpu();
  assertEquals(methodNamed("mae"), mae as unknown, "registered");
  const context = {
    gpu,
    backbone: { name: "resnet18", stem: "cifar", width: 16 } as BackboneConfig,
    batchSize: 4,
    totalSteps: 1,
    stepsPerEpoch: 1,
    seed: 0,
  };
  assertThrows(() => mae.build(context, mae.defaults), SelfsupError, "needs a Vision Transformer");
  const tiny = { name: "vit", imageSize: 4, patchSize: 2, dim: 8, depth: 1, heads: 1 } as const;
  assertThrows(
    () => mae.build({ ...context, backbone: tiny }, { ...mae.defaults, maskRatio: 0.8 }),
    SelfsupError,
    "leaves 0 of 4 patches visible",
  );
  const bad: [Partial<MaeOptions>, string][] = [
    [{ maskRatio: 1 }, "--mask-ratio"],
    [{ maskRatio: 0 }, "--mask-ratio"],
    [{ decoderDim: 30, decoderHeads: 3 }, "--decoder-dim 30"],
    [{ decoderDim: 32, decoderHeads: 3 }, "--decoder-heads 3"],
    [{ decoderDepth: 0 }, "--decoder-depth"],
    [{ normPixLoss: "yes" as unknown as boolean }, "--norm-pix-loss"],
  ];
  for (const [options, message] of bad) {
    assertThrows(() => mae.validate(options, 4), SelfsupError, message);
  }
});
