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
 * A weight-normalised layer's output and the gradients of Σ r·y wrt x, v and (when `g` is
 * given, the magnitude trained) g; parameter gradients start at 1 (they accumulate), and the
 * 1 is taken off what is returned.
 */
async function weightNorm(
  gpu: Gpu,
  x: Float32Array<ArrayBuffer>,
  v: Float32Array<ArrayBuffer>,
  r: Float32Array<ArrayBuffer>,
  [rows, inputs, outputs]: readonly number[],
  g?: Float32Array<ArrayBuffer>,
) {
  const layer = new WeightNormLinear(inputs, outputs, { trainableMagnitude: g !== undefined });
  const block = new ParameterBlock(gpu, layer.entries());
  block.load(new Map(g ? [["weight_v", v], ["weight_g", g]] : [["weight_v", v]]), "test");
  gpu.write(block.grads, new Float32Array(block.grads.size).fill(1));
  const [y, gradX] = await run(gpu, (p) => {
    const input = p.tensor([rows, inputs], "x");
    const gradY = p.tensor([rows, outputs], "r");
    const pass = layer.forward(p, input, { train: true, inputGrad: true });
    return { inputs: [input, gradY], outputs: [pass.output, pass.backward(p, gradY)!] };
  }, [x, r]);
  const grads = await block.readGrads();
  block.destroy();
  const less1 = (name: string) => grads.get(name)?.map((value) => value - 1);
  return { y, gradX, gradV: less1("weight_v")!, gradG: less1("weight_g") };
}

/**
 * The weight-normalised layer against the fixture's case `name` (with its magnitude `g` if
 * the case has one), then on an odd shape by finite differences wrt everything it trains.
 */
async function checkWeightNorm(gpu: Gpu, name: string) {
  const [rows, inputs] = fixture.shape(`${name}.x`);
  const outputs = fixture.shape(`${name}.v`)[0];
  const trained = fixture.has(`${name}.g`);
  const out = await weightNorm(
    gpu,
    f(`${name}.x`),
    f(`${name}.v`),
    f(`${name}.r`),
    [rows, inputs, outputs],
    trained ? f(`${name}.g`) : undefined,
  );
  const tolerance = { atol: 1e-6, rtol: 1e-5 };
  assertClose(out.y, f(`${name}.y`), { ...tolerance, label: "output" });
  assertClose(out.gradX, f(`${name}.grad_x`), { ...tolerance, label: "input gradient" });
  assertClose(out.gradV, f(`${name}.grad_v`), { ...tolerance, label: "weight_v gradient" });
  if (trained) {
    assertClose(out.gradG!, f(`${name}.grad_g`), { ...tolerance, label: "weight_g gradient" });
    // DINO's parameter groups decay g ([out, 1] is not 1-D): a weight, not a norm.
    const { weightG } = new WeightNormLinear(inputs, outputs, { trainableMagnitude: true });
    if (weightG?.kind !== "weight") throw new Error(`weight_g is a ${weightG?.kind}`);
  }
  const odd = [3, 5, 7];
  const x = randn(15, 1);
  const v = randn(35, 2);
  const r = randn(21, 3);
  const g = trained ? randn(7, 4).map((value) => 1 + 0.5 * value) : undefined;
  const output = (probe: Partial<Record<"x" | "v" | "g", Float32Array<ArrayBuffer>>>) =>
    weightNorm(gpu, probe.x ?? x, probe.v ?? v, r, odd, probe.g ?? g);
  const at = await output({});
  const checks: ["x" | "v" | "g", Float32Array<ArrayBuffer>, Float32Array][] = [
    ["x", x, at.gradX],
    ["v", v, at.gradV],
    ...(g ? [["g", g, at.gradG!] as ["g", Float32Array<ArrayBuffer>, Float32Array]] : []),
  ];
  for (const [wrt, point, analytic] of checks) {
    await checkGradient(
      `${name} (${wrt})`,
      async (probe) => dot(r, (await output({ [wrt]: probe })).y),
      point,
      analytic,
    );
  }
}

Deno.test("weight-normalised linear layer (magnitude fixed at 1) matches PyTorch and finite differences", async () => {
  await checkWeightNorm(await testGpu(), "weightnorm");
});

Deno.test("weight-normalised linear layer with a trained magnitude matches PyTorch and finite differences", async () => {
  await checkWeightNorm(await testGpu(), "weightnorm_g");
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
