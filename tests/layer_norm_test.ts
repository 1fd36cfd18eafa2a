import { type AdapterClass, Program } from "../src/gpu/gpu.ts";
import {
  LayerNorm,
  layerNormBackwardInput,
  layerNormBackwardWeight,
  layerNormForward,
} from "../src/nn/layer_norm.ts";
import { ParameterBlock } from "../src/nn/parameters.ts";
import { checkGradient, dot } from "./_gradcheck.ts";
import {
  adapterClasses,
  assertClose,
  familyGpu,
  loadFixtureFile,
  randn,
  testGpu,
} from "./_util.ts";

const fixture = await loadFixtureFile(
  new URL("./fixtures/vit_kernels.safetensors", import.meta.url).pathname,
);
const eps = 1e-6;

/**
 * Records forward, input gradient and (accumulated) weight gradients of one layer norm, with
 * the given kernel family's tuning (testGpu()'s by default).
 */
async function layerNormCase(shape: number[], adapterClass?: AdapterClass) {
  const gpu = adapterClass ? await familyGpu(adapterClass) : await testGpu();
  const d = shape[shape.length - 1];
  const program = new Program(gpu, `layer norm [${shape}]`);
  const x = program.tensor(shape, "x");
  const w = program.tensor([d], "weight");
  const b = program.tensor([d], "bias");
  const gy = program.tensor(shape, "gy");
  const gw = program.tensor([d], "weight gradient");
  const gb = program.tensor([d], "bias gradient");
  const { output, saved } = layerNormForward(program, x, w, b, eps);
  const gx = layerNormBackwardInput(program, saved, gy, w);
  program.keep(output, gx);
  layerNormBackwardWeight(program, saved, gy, gw, gb);
  const run = async (values: Float32Array<ArrayBuffer>[], start = new Float32Array(2 * d)) => {
    [x, w, b, gy].forEach((t, i) => gpu.write(t, values[i]));
    gpu.write(gw, start.slice(0, d));
    gpu.write(gb, start.slice(d));
    gpu.submit(program);
    return (await gpu.read(output, gx, gw, gb)) as Float32Array[];
  };
  return { program, run };
}

// Float64 LayerNorm over rows of length d, with all gradients.
function reference(
  x: Float32Array,
  w: Float32Array,
  b: Float32Array,
  gy: Float32Array,
  d: number,
) {
  const y = new Float64Array(x.length);
  const gx = new Float64Array(x.length);
  const gw = new Float64Array(d);
  const gb = new Float64Array(d);
  for (let r = 0; r < x.length / d; r++) {
    const row = Array.from(x.subarray(r * d, (r + 1) * d));
    const mean = row.reduce((s, v) => s + v, 0) / d;
    const variance = row.reduce((s, v) => s + (v - mean) ** 2, 0) / d;
    const rstd = 1 / Math.sqrt(variance + eps);
    const xhat = row.map((v) => (v - mean) * rstd);
    const g = xhat.map((_, i) => gy[r * d + i] * w[i]);
    const meanG = g.reduce((s, v) => s + v, 0) / d;
    const meanGX = g.reduce((s, v, i) => s + v * xhat[i], 0) / d;
    for (let i = 0; i < d; i++) {
      y[r * d + i] = xhat[i] * w[i] + b[i];
      gx[r * d + i] = rstd * (g[i] - meanG - xhat[i] * meanGX);
      gw[i] += gy[r * d + i] * xhat[i];
      gb[i] += gy[r * d + i];
    }
  }
  return { y, gx, gw, gb };
}

Deno.test("layer norm matches the PyTorch fixture", async () => {
  const shape = fixture.shape("layer_norm.input");
  const { program, run } = await layerNormCase(shape);
  const names = ["input", "weight", "bias", "grad_output"];
  const [y, gx, gw, gb] = await run(names.map((n) => fixture.get(`layer_norm.${n}`).slice()));
  // Rows of 7 values of scale 2: float32 rounding stays near 1e-6.
  const tol = { atol: 1e-5, rtol: 1e-5 };
  assertClose(y, fixture.get("layer_norm.output"), { ...tol, label: "output" });
  assertClose(gx, fixture.get("layer_norm.grad_input"), { ...tol, label: "grad_input" });
  assertClose(gw, fixture.get("layer_norm.grad_weight"), { ...tol, label: "grad_weight" });
  assertClose(gb, fixture.get("layer_norm.grad_bias"), { ...tol, label: "grad_bias" });
  program.destroy();
});

// One row; a width past 64 that is not a multiple of 4; more rows than one chunk of the
// weight gradient (2,048 rows for the cpu kernel family, 64 for the gpu one), so partial sums
// and their reduction run; an offset mean that a one-pass variance would lose.
const cases = [[[1, 5], 0], [[3, 7, 67], 0], [[3, 701, 6], 0], [[2, 9, 33], 100]];
for (
  const [[shape, shift], adapterClass] of cases.flatMap((c) =>
    adapterClasses.map((a) => [c, a] as const)
  )
) {
  Deno.test(`layer norm [${shape}] (mean ${shift}, ${adapterClass} kernels) matches a float64 reference`, async () => {
    const size = (shape as number[]).reduce((a, b) => a + b);
    const count = (shape as number[]).reduce((a, b) => a * b);
    const d = (shape as number[]).at(-1)!;
    const { program, run } = await layerNormCase(shape as number[], adapterClass);
    const values = [
      randn(count, size).map((v) => v + (shift as number)),
      randn(d, size + 1, 0.5).map((v) => v + 1),
      randn(d, size + 2, 0.5),
      randn(count, size + 3),
    ];
    const start = randn(2 * d, size + 4);
    const [y, gx, gw, gb] = await run(values, start);
    const ref = reference(values[0], values[1], values[2], values[3], d);
    const tol = { atol: 1e-4, rtol: 1e-4 };
    assertClose(y, ref.y, { ...tol, label: "output" });
    assertClose(gx, ref.gx, { ...tol, label: "input gradient" });
    // Parameter gradients accumulate onto what the gradient buffers held.
    assertClose(gw, ref.gw.map((v, i) => v + start[i]), { ...tol, label: "weight gradient" });
    assertClose(gb, ref.gb.map((v, i) => v + start[d + i]), { ...tol, label: "bias gradient" });
    program.destroy();
  });
}

Deno.test("layer norm gradients agree with finite differences", async () => {
  const shape = [2, 3, 5];
  const { program, run } = await layerNormCase(shape);
  const values = [randn(30, 1), randn(5, 2, 0.5).map((v) => v + 1), randn(5, 3), randn(30, 4)];
  const [, gx, gw, gb] = await run(values);
  const r = values[3];
  for (
    const [index, label, grad] of [[0, "input", gx], [1, "weight", gw], [2, "bias", gb]] as const
  ) {
    await checkGradient(
      `layer norm ${label}`,
      async (v) => {
        const inputs = values.slice();
        inputs[index] = v;
        const [y] = await run(inputs);
        return dot(r, y);
      },
      values[index].slice(),
      grad,
    );
  }
  program.destroy();
});

Deno.test("LayerNorm layer: names, ones and zeros, eps 1e-6, no input gradient on request", async () => {
  const gpu = await testGpu();
  const norm = new LayerNorm(6);
  if (norm.eps !== 1e-6) throw new Error(`eps ${norm.eps}`);
  const block = new ParameterBlock(gpu, norm.entries());
  block.initialize(Math.random);
  const values = await block.read();
  if ([...values.keys()].join() !== "weight,bias") throw new Error("entry names");
  assertClose(values.get("weight")!, new Float32Array(6).fill(1), { atol: 0, rtol: 0 });
  assertClose(values.get("bias")!, new Float32Array(6), { atol: 0, rtol: 0 });
  const program = new Program(gpu, "layer norm layer");
  const x = program.tensor([4, 6], "x");
  const pass = norm.forward(program, x, { train: true, inputGrad: false });
  if (pass.backward(program, program.tensor([4, 6], "gy")) !== undefined) {
    throw new Error("input gradient not skipped");
  }
  program.destroy();
  block.destroy();
});
