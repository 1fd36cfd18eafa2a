// The ResNet trained on f16 activations (--precision f16) against the same network in f32:
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
// wiring bug is off by O(1), far past them.
import { Program } from "../src/gpu/gpu.ts";
import { initializeBlock } from "../src/methods/method.ts";
import { type BackboneConfig, createBackbone } from "../src/nn/backbone.ts";
import { ParameterBlock } from "../src/nn/parameters.ts";
import { assertEquals, assertThrows } from "./_assert.ts";
import { norm, randn, testGpu } from "./_util.ts";

const relative = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let d = 0;
  for (let i = 0; i < a.length; i++) d += (a[i] - b[i]) ** 2;
  return Math.sqrt(d) / norm(Float32Array.from(b));
};

/** The relative error of the features and of the worst convolution's weight gradient. */
function errors(
  run: { features: Float32Array; grads: Map<string, Float32Array> },
  reference: { features: Float32Array; grads: Map<string, Float32Array> },
) {
  let worst = 0;
  for (const [name, expected] of reference.grads) {
    if (!/conv\d\.weight$|downsample\.0\.weight$/.test(name)) continue;
    worst = Math.max(worst, relative(run.grads.get(name)!, expected));
  }
  return { features: relative(run.features, reference.features), gradients: worst };
}

const cases = [
  { stem: "cifar", size: 16, batch: 8 },
  { stem: "imagenet", size: 64, batch: 8 },
] as const;

for (const { stem, size, batch } of cases) {
  Deno.test(`a ResNet (${stem} stem) in f16 gives the f32 network's features and gradients within f16 rounding's cost`, async () => {
    const gpu = await testGpu();
    const images = randn(batch * 3 * size * size, 1);
    const rounding = randn(images.length, 3).map((r) => 1 + 2 ** -11 * r);
    const lossScale = 2 ** 10;
    const run = async (config: BackboneConfig, input: Float32Array) => {
      const backbone = createBackbone(config);
      const block = new ParameterBlock(gpu, backbone.entries());
      initializeBlock(block, 7);
      const program = new Program(gpu, `resnet ${config.name}`);
      const x = program.tensor([batch, 3, size, size], "images");
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
    };
    const resnet = { name: "resnet18", stem, width: 8 } as const;
    const f32 = await run(resnet, images);
    const sensitivity = errors(await run(resnet, images.map((v, i) => v * rounding[i])), f32);
    const f16 = await run({ ...resnet, precision: "f16" }, images);
    assertEquals(f16.features.constructor.name, "Float32Array", "features leave in f32");
    const cost = errors(f16, f32);
    const bound = { features: 6 * sensitivity.features, gradients: 3 * sensitivity.gradients };
    if (!(cost.features <= bound.features && cost.gradients <= bound.gradients)) {
      throw new Error(`f16 costs ${JSON.stringify(cost)}, beyond ${JSON.stringify(bound)}`);
    }
  });
}

Deno.test("an f16 backbone evaluates as the f32 network, and gives no gradient of its images", async () => {
  const gpu = await testGpu();
  const half = createBackbone({ name: "resnet18", stem: "cifar", width: 4, precision: "f16" });
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
