// The ResNet and the ViT trained on f16 activations (--precision f16) against the same network
// in f32:
// the forward pass and the backward pass from a fixed output gradient, through the loss
// scale. Each layer's f16 kernels are checked against PyTorch on their own (conv2d_f16_test,
// batch_norm_f16_test, linear_test, relu_test); this checks their wiring — images and
// features cast, weights cast each step, the scaled gradient entering the network, its
// parameters' f32 gradients — against what f16 rounding can cost. That cost is not small:
// at a random initialisation with batch norm over a small batch the gradients are
// ill-conditioned, and perturbing the f32 network's input images by 2⁻¹¹ of themselves (one
// f16 rounding) already moves its convolutions' gradients by 10–16%. So each f16 error is
// bounded by a multiple of that sensitivity, measured on the same network: f16 rounds at
// every one of ~60 layers, which measured 1.3–1.8 times the one rounding's effect on the
// gradients and 2.4–3.3 times on the features (llvmpipe); the bounds are 3 and 6 times, and a
// wiring bug is off by O(1), far past them. The ViT's kernels are checked in vit_f16_test and
// linear_test; its bounds are below.
import { type Gpu, Program } from "../src/gpu/gpu.ts";
import { SelfsupError } from "../src/errors.ts";
import { initializeBlock } from "../src/methods/method.ts";
import { type BackboneConfig, checkPrecision, createBackbone } from "../src/nn/backbone.ts";
import { ParameterBlock } from "../src/nn/parameters.ts";
import { assertEquals, assertThrows } from "./_assert.ts";
import { norm, randn, testGpu } from "./_util.ts";

const relative = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let d = 0;
  for (let i = 0; i < a.length; i++) d += (a[i] - b[i]) ** 2;
  return Math.sqrt(d) / norm(Float32Array.from(b));
};

/** The backbones that train in f16. */
type ImageBackbone = Exclude<BackboneConfig, { name: "text" }>;

/** The relative error of the features and of the worst weight gradient `weights` names. */
function errors(
  run: { features: Float32Array; grads: Map<string, Float32Array> },
  reference: { features: Float32Array; grads: Map<string, Float32Array> },
  weights: RegExp,
) {
  let worst = 0;
  for (const [name, expected] of reference.grads) {
    if (!weights.test(name)) continue;
    worst = Math.max(worst, relative(run.grads.get(name)!, expected));
  }
  return { features: relative(run.features, reference.features), gradients: worst };
}

/**
 * The f32 network's features and parameter gradients (divided by the loss scale where the
 * backbone trains in f16) for `input` and a fixed feature gradient, from a fixed initialisation.
 */
async function backboneRun(
  config: ImageBackbone,
  input: Float32Array,
  shape: number[],
  lossScale: number,
) {
  const gpu = await testGpu();
  const backbone = createBackbone(config);
  const block = new ParameterBlock(gpu, backbone.entries());
  initializeBlock(block, 7);
  const program = new Program(gpu, `${config.name} ${config.precision ?? "f32"}`);
  const x = program.tensor(shape, "images");
  const scale = program.tensor([1], "loss scale");
  gpu.write(scale, Float32Array.of(lossScale));
  backbone.useLossScale?.(scale);
  program.clear(block.grads);
  const forward = backbone.forward(program, x, { train: true, inputGrad: false });
  const grad = program.tensor(forward.output.shape, "feature gradient");
  forward.backward(program, grad);
  program.keep(forward.output);
  gpu.write(x, input);
  gpu.write(grad, randn(grad.size, 2));
  gpu.submit(program);
  const [features] = await gpu.read(forward.output);
  const grads = await block.readGrads();
  // The f16 network's gradients carry the loss scale.
  if (backbone.useLossScale) {
    for (const g of grads.values()) g.forEach((v, i) => g[i] = v / lossScale);
  }
  program.destroy();
  block.destroy();
  return { features: features as Float32Array, grads };
}

/**
 * The costs of f16 against f32 and of one f16 rounding of the input images against f32, and
 * the dtype the f16 network's features leave in.
 */
async function f16Costs(
  config: ImageBackbone,
  shape: number[],
  weights: RegExp,
  lossScale: number,
) {
  const images = randn(shape.reduce((a, b) => a * b, 1), 1);
  const rounding = randn(images.length, 3).map((r) => 1 + 2 ** -11 * r);
  const f32 = await backboneRun(config, images, shape, lossScale);
  const rounded = await backboneRun(
    config,
    images.map((v, i) => v * rounding[i]),
    shape,
    lossScale,
  );
  const f16 = await backboneRun({ ...config, precision: "f16" }, images, shape, lossScale);
  assertEquals(f16.features.constructor.name, "Float32Array", "features leave in f32");
  return { sensitivity: errors(rounded, f32, weights), cost: errors(f16, f32, weights) };
}

function assertWithin(
  cost: { features: number; gradients: number },
  bound: { features: number; gradients: number },
) {
  if (!(cost.features <= bound.features && cost.gradients <= bound.gradients)) {
    throw new Error(`f16 costs ${JSON.stringify(cost)}, beyond ${JSON.stringify(bound)}`);
  }
}

const cases = [
  { stem: "cifar", size: 16, batch: 8 },
  { stem: "imagenet", size: 64, batch: 8 },
] as const;

for (const { stem, size, batch } of cases) {
  Deno.test(`a ResNet (${stem} stem) in f16 gives the f32 network's features and gradients within f16 rounding's cost`, async () => {
    const resnet = { name: "resnet18", stem, width: 8 } as const;
    const convolutions = /conv\d\.weight$|downsample\.0\.weight$/;
    const { sensitivity, cost } = await f16Costs(
      resnet,
      [batch, 3, size, size],
      convolutions,
      2 ** 10,
    );
    assertWithin(cost, {
      features: 6 * sensitivity.features,
      gradients: 3 * sensitivity.gradients,
    });
  });
}

const halves: ImageBackbone[] = [
  { name: "resnet18", stem: "cifar", width: 4, precision: "f16" },
  { name: "vit", imageSize: 8, patchSize: 4, dim: 8, depth: 1, heads: 2, precision: "f16" },
];
// Where --precision f16 cannot train, a one-line SelfsupError names the flag and the reason;
// f32 trains anywhere. The adapter is described by what checkPrecision reads.
Deno.test("--precision f16 is refused on an adapter without shader-f16", () => {
  const lacking = { features: new Set<string>(), adapterName: "Adapter X" } as unknown as Gpu;
  const having = { features: new Set(["shader-f16"]), adapterName: "Adapter Y" } as unknown as Gpu;
  for (const config of halves) {
    assertThrows(
      () => checkPrecision("f16", config, lacking),
      SelfsupError,
      "--precision f16 needs an adapter with shader-f16, which Adapter X lacks",
    );
    checkPrecision("f16", config, having);
    checkPrecision("f32", config, lacking);
  }
});

for (const config of halves) {
  Deno.test(`an f16 ${config.name} evaluates as the f32 network, and gives no gradient of its images`, async () => {
    const gpu = await testGpu();
    const half = createBackbone(config);
    // A run's precision is not the network's: checkpoints describe the network alone.
    assertEquals("precision" in half.config, false);
    const block = new ParameterBlock(gpu, half.entries());
    const program = new Program(gpu, "input gradient");
    const input = program.tensor([2, 3, 8, 8], "images");
    // The gradient of the images would carry the loss scale.
    assertThrows(
      () => half.forward(program, input, { train: true, inputGrad: true }),
      Error,
      "does not give its input's gradient",
    );
    // Evaluation runs the f32 network, as a probe of the checkpoint does: no f16 kernel.
    const evaluated = half.forward(program, input, { train: false, inputGrad: false });
    assertEquals(evaluated.output.dtype, "f32");
    const names = program.dispatches.map((d) => d.name);
    assertEquals(names.filter((n) => n.includes("f16")), [], "f16 kernels in evaluation");
    program.destroy();
    block.destroy();
  });
}

// The ViT in f16 (see the top): without batch norm its gradients are well conditioned, one f16
// rounding of the images moving them by 0.04–0.06%, and f16 at each of its ~40 roundings costs
// 4.5–5.8 times that (llvmpipe): the bound is 10 times. Its features are the f16 output of the
// final LayerNorm, rounded (2⁻¹² rms relative) after the input's effect has been normalised
// away: they are bounded by f16's resolution instead, 2⁻⁹ (measured 0.07–0.10%). A wiring bug
// (a missing cast, the loss scale left in) is off by O(1). The loss scale is 2⁴: at a random
// initialisation the tokens' small variance makes each LayerNorm multiply the gradient by ~10,
// and a unit feature gradient times 2¹⁰ overflows f16 — what dynamic loss scaling backs off from.
const vits = [
  // Heads 8 wide: attention's products take the vec4 kernels; learned positions.
  { dim: 16, heads: 2, positions: "learned" },
  // Heads 6 wide: the strided kernels; fixed positions (no position gradient).
  { dim: 12, heads: 2, positions: "sincos" },
] as const;

for (const { dim, heads, positions } of vits) {
  Deno.test(`a ViT (${dim / heads}-wide heads, ${positions} positions) in f16 gives the f32 network's features and gradients within f16 rounding's cost`, async () => {
    const vit = {
      name: "vit",
      imageSize: 8,
      patchSize: 2,
      dim,
      depth: 2,
      heads,
      positions,
    } as const;
    const parameters = /weight$|cls_token$|pos_embed$/;
    const { sensitivity, cost } = await f16Costs(vit, [4, 3, 8, 8], parameters, 2 ** 4);
    assertWithin(cost, { features: 2 ** -9, gradients: 10 * sensitivity.gradients });
  });
}
