// The building blocks of DINO, SwAV and rotation prediction against PyTorch
// (tests/fixtures/make_multicrop_ops.py) and, where they have gradients, finite differences.
import { type Gpu, Program } from "../src/gpu/gpu.ts";
import { StepValues } from "../src/gpu/step_values.ts";
import { dinoTeacherTargets, updateDinoCenter } from "../src/loss/dino.ts";
import { multicropCrossEntropy } from "../src/loss/multicrop_cross_entropy.ts";
import { sinkhornCodes } from "../src/loss/sinkhorn.ts";
import { l2NormalizeInPlace } from "../src/nn/l2_normalize.ts";
import { Parameter } from "../src/nn/module.ts";
import { ParameterBlock } from "../src/nn/parameters.ts";
import { rotateImages } from "../src/nn/rotate.ts";
import { WeightNormLinear } from "../src/nn/weight_norm.ts";
import { GradientClip } from "../src/optim/clip.ts";
import { checkGradient, dot } from "./_gradcheck.ts";
import { assertClose, loadFixtureFile, randn, runOnce, testGpu } from "./_util.ts";

const fixture = await loadFixtureFile(
  new URL("./fixtures/multicrop_ops.safetensors", import.meta.url).pathname,
);
const f = (name: string) => fixture.get(name) as Float32Array<ArrayBuffer>;
const meta = fixture.meta as Record<string, number>;

const run = runOnce;

/**
 * A weight-normalised layer's output and the gradients of Σ r·y wrt x and v; v's gradient
 * starts at 1 (parameter gradients accumulate), and the 1 is taken off what is returned.
 */
async function weightNorm(
  gpu: Gpu,
  x: Float32Array<ArrayBuffer>,
  v: Float32Array<ArrayBuffer>,
  r: Float32Array<ArrayBuffer>,
  [rows, inputs, outputs]: readonly number[],
) {
  const layer = new WeightNormLinear(inputs, outputs);
  const block = new ParameterBlock(gpu, layer.entries());
  block.load(new Map([["weight_v", v]]), "test");
  gpu.write(block.grads, new Float32Array(block.grads.size).fill(1));
  const [y, gradX] = await run(gpu, (p) => {
    const input = p.tensor([rows, inputs], "x");
    const gradY = p.tensor([rows, outputs], "r");
    const pass = layer.forward(p, input, { train: true, inputGrad: true });
    return { inputs: [input, gradY], outputs: [pass.output, pass.backward(p, gradY)!] };
  }, [x, r]);
  const gradV = (await block.readGrads()).get("weight_v")!.map((g) => g - 1);
  block.destroy();
  return { y, gradX, gradV };
}

Deno.test("weight-normalised linear layer matches PyTorch and finite differences", async () => {
  const gpu = await testGpu();
  const [rows, inputs] = fixture.shape("weightnorm.x");
  const outputs = fixture.shape("weightnorm.v")[0];
  const shape = [rows, inputs, outputs];
  const out = await weightNorm(gpu, f("weightnorm.x"), f("weightnorm.v"), f("weightnorm.r"), shape);
  const tolerance = { atol: 1e-6, rtol: 1e-5 };
  assertClose(out.y, f("weightnorm.y"), { ...tolerance, label: "output" });
  assertClose(out.gradX, f("weightnorm.grad_x"), { ...tolerance, label: "input gradient" });
  assertClose(out.gradV, f("weightnorm.grad_v"), { ...tolerance, label: "weight_v gradient" });
  // An odd shape, by finite differences with respect to the input and the direction v.
  const odd = [3, 5, 7];
  const x = randn(15, 1);
  const v = randn(35, 2);
  const r = randn(21, 3);
  const at = await weightNorm(gpu, x, v, r, odd);
  await checkGradient(
    "weight norm (input)",
    async (probe) => dot(r, (await weightNorm(gpu, probe, v, r, odd)).y),
    x,
    at.gradX,
  );
  await checkGradient(
    "weight norm (direction)",
    async (probe) => dot(r, (await weightNorm(gpu, x, probe, r, odd)).y),
    v,
    at.gradV,
  );
});

Deno.test("multi-crop cross-entropy matches DINOLoss and finite differences", async () => {
  const gpu = await testGpu();
  const shape = fixture.shape("multicrop.s");
  const lossAndGrad = (s: Float32Array<ArrayBuffer>) =>
    run(gpu, (p) => {
      const logits = p.tensor(shape, "s");
      const targets = p.tensor(fixture.shape("multicrop.q"), "q");
      const out = multicropCrossEntropy(p, logits, targets, {
        crops: meta.crops,
        targetCrops: 2,
        temperature: meta.temperature,
      });
      return { inputs: [logits, targets], outputs: [out.loss, out.gradInput] };
    }, [s, f("multicrop.q")]);
  const [loss, grad] = await lossAndGrad(f("multicrop.s"));
  assertClose(loss, f("multicrop.loss"), { atol: 1e-6, rtol: 1e-5, label: "loss" });
  assertClose(grad, f("multicrop.grad"), { atol: 1e-7, rtol: 1e-4, label: "logit gradient" });
  await checkGradient(
    "multi-crop cross-entropy",
    async (s) => (await lossAndGrad(s))[0][0],
    f("multicrop.s").slice(),
    grad,
  );
});

Deno.test("DINO's teacher targets and centre update match DINOLoss", async () => {
  const gpu = await testGpu();
  const temperature = new StepValues(gpu, ["invTemperature"], "test");
  temperature.write({ invTemperature: 1 / meta.teacherTemperature });
  const [targets, center] = await run(gpu, (p) => {
    const teacher = p.tensor(fixture.shape("teacher.t"), "t");
    const center = p.tensor(fixture.shape("teacher.center"), "c");
    const targets = dinoTeacherTargets(p, teacher, center, temperature);
    updateDinoCenter(p, teacher, center, meta.centerMomentum);
    return { inputs: [teacher, center], outputs: [targets, center] };
  }, [f("teacher.t"), f("teacher.center")]);
  temperature.destroy();
  assertClose(targets, f("teacher.targets"), { atol: 1e-7, rtol: 1e-5, label: "targets" });
  assertClose(center, f("teacher.center_after"), { atol: 1e-7, rtol: 1e-6, label: "centre" });
});

Deno.test("Sinkhorn–Knopp codes with a queue left out match SwAV's", async () => {
  const gpu = await testGpu();
  const skip = new StepValues(gpu, ["skip"], "test");
  skip.write({ skip: meta.skip });
  const [rows, classes] = fixture.shape("sinkhorn.scores");
  const [codes] = await run(gpu, (p) => {
    const scores = p.tensor([rows, classes], "scores");
    // Written from row 1 of 2·kept rows, whose other rows stay zero.
    const codes = p.tensor([1 + meta.kept + 1, classes], "codes");
    p.clear(codes);
    sinkhornCodes(p, scores, skip, codes, {
      kept: meta.kept,
      codesRow: 1,
      iterations: meta.iterations,
      epsilon: meta.epsilon,
    });
    return { inputs: [scores], outputs: [codes] };
  }, [f("sinkhorn.scores")]);
  skip.destroy();
  const expected = new Float32Array(codes.length);
  expected.set(f("sinkhorn.codes"), classes);
  assertClose(codes, expected, { atol: 1e-7, rtol: 1e-5, label: "codes" });
});

Deno.test("four rotations of square images match torch.rot90", async () => {
  const gpu = await testGpu();
  const [rotated] = await run(gpu, (p) => {
    const x = p.tensor(fixture.shape("rotation.x"), "x");
    return { inputs: [x], outputs: [rotateImages(p, x)] };
  }, [f("rotation.x")]);
  assertClose(rotated, f("rotation.y"), { atol: 0, rtol: 0, label: "rotations" });
  const program = new Program(gpu, "non-square rotation");
  const x = program.tensor([1, 3, 4, 5], "x");
  let message = "";
  try {
    rotateImages(program, x);
  } catch (error) {
    message = (error as Error).message;
  }
  program.destroy();
  if (message !== "Rotation prediction needs square views, got 4×5") {
    throw new Error(`a non-square batch gave "${message}"`);
  }
});

Deno.test("gradient clipping per parameter matches DINO's clip_gradients", async () => {
  const gpu = await testGpu();
  const names = [0, 1, 2];
  const block = new ParameterBlock(
    gpu,
    names.map((i) =>
      [
        `p${i}`,
        new Parameter(fixture.shape(`clip.grad${i}`), "weight", (n) => new Float32Array(n)),
      ] as const
    ),
  );
  block.initialize(() => 0);
  const flat = new Float32Array(block.grads.size);
  // Padding holds garbage, which clipping must neither count nor change.
  flat.fill(7);
  block.segments.forEach(({ offset }, i) => flat.set(f(`clip.grad${i}`), offset));
  gpu.write(block.grads, flat);
  const clip = new GradientClip(gpu, block, meta.clip);
  const program = new Program(gpu, "clip test");
  clip.record(program);
  gpu.submit(program);
  const clipped = await gpu.readF32(block.grads);
  block.segments.forEach(({ offset, size }, i) => {
    assertClose(clipped.subarray(offset, offset + size), f(`clip.clipped${i}`), {
      atol: 1e-7,
      rtol: 1e-6,
      label: `gradient ${i}`,
    });
    const end = i + 1 < block.segments.length ? block.segments[i + 1].offset : clipped.length;
    assertClose(
      clipped.subarray(offset + size, end),
      new Float32Array(end - offset - size).fill(7),
      {
        atol: 0,
        rtol: 0,
        label: `padding after gradient ${i}`,
      },
    );
  });
  program.destroy();
  clip.destroy();
  block.destroy();
});

Deno.test("prototypes normalised in place match F.normalize", async () => {
  const gpu = await testGpu();
  const [y] = await run(gpu, (p) => {
    const w = p.tensor(fixture.shape("normalize.w"), "w");
    l2NormalizeInPlace(p, w);
    return { inputs: [w], outputs: [w] };
  }, [f("normalize.w")]);
  assertClose(y, f("normalize.y"), { atol: 1e-7, rtol: 1e-6, label: "unit rows" });
});
