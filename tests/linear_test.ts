import { type AdapterClass, Program } from "../src/gpu/gpu.ts";
import type { Precision, TileSide } from "../src/gpu/kernel.ts";
import type { Tensor } from "../src/gpu/tensor.ts";
import {
  Linear,
  linearBackwardInput,
  linearBackwardWeight,
  linearForward,
  type LinearOptions,
} from "../src/nn/linear.ts";
import { ParameterBlock } from "../src/nn/parameters.ts";
import { assertEquals } from "./_assert.ts";
import { checkGradient, dot } from "./_gradcheck.ts";
import {
  adapterClasses,
  assertClose,
  assertSameBits,
  familyGpu,
  loadFixture,
  loadFixtureFile,
  randn,
  testGpu,
} from "./_util.ts";

// Float64 references for x [m, k], W [n, k], b [n], gy [m, n].
function reference(
  x: Float32Array,
  w: Float32Array,
  b: Float32Array,
  gy: Float32Array,
  [m, k, n]: number[],
) {
  const y = new Float64Array(m * n);
  const gx = new Float64Array(m * k);
  const gw = new Float64Array(n * k);
  const gb = new Float64Array(n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = b[j];
      for (let q = 0; q < k; q++) s += x[i * k + q] * w[j * k + q];
      y[i * n + j] = s;
      const g = gy[i * n + j];
      gb[j] += g;
      for (let q = 0; q < k; q++) {
        gx[i * k + q] += g * w[j * k + q];
        gw[j * k + q] += g * x[i * k + q];
      }
    }
  }
  return { y, gx, gw, gb };
}

/**
 * Records the forward and both backward passes of one linear layer on its own tensors, with
 * the given kernel family's tuning (and `options`: a tile forces the tiled kernels).
 */
async function linearCase(
  [m, k, n]: number[],
  adapterClass: AdapterClass,
  options: LinearOptions = {},
) {
  const gpu = await familyGpu(adapterClass);
  const program = new Program(gpu, `linear ${m}×${k}→${n} (${adapterClass} kernels)`);
  const x = program.tensor([m, k], "x");
  const w = program.tensor([n, k], "weight");
  const b = program.tensor([n], "bias");
  const gy = program.tensor([m, n], "gy");
  const gw = program.tensor([n, k], "weight gradient");
  const gb = program.tensor([n], "bias gradient");
  const y = linearForward(program, x, w, b, options);
  const gx = linearBackwardInput(program, gy, w, options);
  program.keep(y, gx);
  linearBackwardWeight(program, x, gy, gw, gb, options);
  const run = async (
    values: Float32Array<ArrayBuffer>[],
    read: Tensor[] = [y, gx, gw, gb],
  ): Promise<Float32Array[]> => {
    [x, w, b, gy].forEach((t, i) => gpu.write(t, values[i]));
    gpu.write(gw, new Float32Array(gw.size));
    gpu.write(gb, new Float32Array(gb.size));
    gpu.submit(program);
    return (await gpu.read(...read)) as Float32Array[];
  };
  return { gpu, program, run, tensors: { x, w, b, gy, y, gx, gw, gb } };
}

/** Fails unless the program's tiled kernels are the three passes' with `tile`, in `precision`. */
function assertTiledPasses(program: Program, tile: TileSide, precision: Precision = "f32") {
  const suffix = `${tile === 64 ? "tiled" : "tiled128"}${precision === "f16" ? "_f16" : ""}`;
  const passes = program.dispatches.map((d) => d.name).filter((n) => n.includes("_tiled"));
  const expected = ["forward", "backward_input", "backward_weight"];
  assertEquals(passes, expected.map((pass) => `linear_${pass}_${suffix}`), `${tile}: kernels`);
}

// f32 sums of k products of unit-scale values are off by about k·2⁻²⁴·max|term|; the
// fixtures and random cases below have k ≤ 1,000, so atol 1e-4 with rtol 1e-4 leaves margin
// while still catching a wrong or missing term (errors of order 1).
const tolerance = { atol: 1e-4, rtol: 1e-4 };

for (const adapterClass of adapterClasses) {
  const kernels = `${adapterClass} kernels`;

  Deno.test(`linear (${kernels}) matches the PyTorch fixture`, async () => {
    const f = await loadFixture("linear");
    const [m, k] = f.shape("input");
    const [n] = f.shape("weight");
    const { program, run } = await linearCase([m, k, n], adapterClass);
    const [y, gx, gw, gb] = await run(
      ["input", "weight", "bias", "grad_output"].map((name) => f.get(name).slice()),
    );
    assertClose(y, f.get("output"), { atol: 1e-5, rtol: 1e-5, label: "output" });
    assertClose(gx, f.get("grad_input"), { atol: 1e-5, rtol: 1e-5, label: "grad_input" });
    assertClose(gw, f.get("grad_weight"), { atol: 1e-5, rtol: 1e-5, label: "grad_weight" });
    assertClose(gb, f.get("grad_bias"), { atol: 1e-5, rtol: 1e-5, label: "grad_bias" });
    program.destroy();
  });

  // Shapes [batch, in, out]: batch 1; widths that are not multiples of 4 (padded) or 16
  // (partial blocks); more than one block each way (the GPU family's 64 × 64 tiles too, with
  // the weight gradient unsplit); a batch long enough to split the weight gradient into
  // partial sums.
  const shapes = [[1, 7, 3], [37, 13, 10], [70, 36, 20], [100, 130, 70], [5, 512, 10]];
  for (const shape of [...shapes, [1000, 6, 3]]) {
    Deno.test(`linear ${shape.join("×")} (${kernels}) matches a float64 reference`, async () => {
      const [m, k, n] = shape;
      const { program, run } = await linearCase(shape, adapterClass);
      const values = [randn(m * k, 1), randn(n * k, 2), randn(n, 3), randn(m * n, 4)];
      const [y, gx, gw, gb] = await run(values);
      const ref = reference(values[0], values[1], values[2], values[3], shape);
      assertClose(y, ref.y, { ...tolerance, label: "output" });
      assertClose(gx, ref.gx, { ...tolerance, label: "input gradient" });
      assertClose(gw, ref.gw, { ...tolerance, label: "weight gradient" });
      assertClose(gb, ref.gb, { ...tolerance, label: "bias gradient" });
      program.destroy();
    });
  }

  Deno.test(`linear (${kernels}) gradients agree with finite differences`, async () => {
    const shape = [3, 5, 7];
    const [m, k, n] = shape;
    const { program, run, tensors } = await linearCase(shape, adapterClass);
    const values = [randn(m * k, 5), randn(n * k, 6), randn(n, 7), randn(m * n, 8)];
    const [, gx, gw, gb] = await run(values);
    const r = values[3];
    for (
      const [index, label, grad] of [[0, "input", gx], [1, "weight", gw], [2, "bias", gb]] as const
    ) {
      await checkGradient(
        `linear ${label}`,
        async (v) => {
          const inputs = values.slice();
          inputs[index] = v;
          const [y] = await run(inputs, [tensors.y]);
          return dot(r, y);
        },
        values[index].slice(),
        grad,
      );
    }
    program.destroy();
  });
}

// How many ways the weight gradient is split follows the family: llvmpipe wants a few
// hundred 16 × 16 tiles, a GPU about a thousand 64 × 64 ones. [batch, in, out] with the
// dispatches each family records (forward, input gradient, weight gradient, and the partial
// sums' reduction when split): a long batch with a small weight is split by both; a wide
// layer over a batch of 128 has 280 tiles of the CPU family, enough for llvmpipe, and 20 of
// the GPU family, whose split is checked here.
const splits: { shape: number[]; dispatches: Record<AdapterClass, number> }[] = [
  { shape: [1000, 8, 4], dispatches: { cpu: 4, gpu: 4 } },
  { shape: [128, 320, 224], dispatches: { cpu: 3, gpu: 4 } },
];
for (const { shape, dispatches } of splits) {
  for (const adapterClass of adapterClasses) {
    const expected = dispatches[adapterClass];
    const what = expected === 4 ? "splits" : "does not split";
    Deno.test(`linear ${shape.join("×")} (${adapterClass} kernels) ${what} the weight gradient`, async () => {
      const [m, k, n] = shape;
      const { program, run } = await linearCase(shape, adapterClass);
      if (program.dispatchCount !== expected) {
        throw new Error(`expected ${expected} dispatches, got ${program.dispatchCount}`);
      }
      const values = [randn(m * k, 9), randn(n * k, 10), randn(n, 11), randn(m * n, 12)];
      const [, , gw, gb] = await run(values);
      const ref = reference(values[0], values[1], values[2], values[3], shape);
      assertClose(gw, ref.gw, { ...tolerance, label: "weight gradient" });
      assertClose(gb, ref.gb, { ...tolerance, label: "bias gradient" });
      program.destroy();
    });
  }
}

// The 128 × 128 tiles sum k in the same order as the 64 × 64 ones, one fused multiply-add per
// term (their slices are 8 deep instead of 16, and a term past the end adds an exact zero), so
// in f32 every pass gives the same bits, bias sums included. [batch, in, out]: k below one
// slice of 8 in each pass; odd widths in one tile; several 128 × 128 tiles each way with
// partial ones (the weight gradient in 4 splits, as the 64 × 64 tiles split it); inputs wider
// than 128, so that the input gradient's and the weight gradient's columns fill both halves
// of a tile and a partial second one (2 splits); a long batch that both tiles split 15 ways.
const tileShapes = [[3, 5, 7], [37, 13, 10], [260, 37, 135], [130, 133, 70], [1000, 6, 3]];
for (const shape of tileShapes) {
  Deno.test(`linear ${shape.join("×")}: 128 × 128 tiles give the 64 × 64 tiles' bits`, async () => {
    const [m, k, n] = shape;
    const values = [randn(m * k, 21), randn(n * k, 22), randn(n, 23), randn(m * n, 24)];
    const results = [];
    for (const tile of [64, 128] as const) {
      const { program, run } = await linearCase(shape, "gpu", { tile });
      assertTiledPasses(program, tile);
      results.push({ outputs: await run(values), dispatches: program.dispatchCount });
      program.destroy();
    }
    const [t64, t128] = results;
    assertEquals(t128.dispatches, t64.dispatches, "dispatches (the same splits)");
    const labels = ["output", "input gradient", "weight gradient", "bias gradient"];
    labels.forEach((label, i) => assertSameBits(t128.outputs[i], t64.outputs[i], label));
  });
}

// gemmTile's rule, as the passes apply it to their outputs: [batch, in, out] whose three
// outputs ([batch, out], [batch, in], [out, in]) each have 256 or more 128 × 128 tiles take
// them; one short of 256 (15 × 17), or under 128 lines on one side however many tiles, keep
// 64 × 64. Recorded only (the large shapes are never run).
const tileChoices: { shape: number[]; tile: TileSide }[] = [
  { shape: [2048, 2048, 2048], tile: 128 },
  { shape: [1920, 2176, 1920], tile: 64 },
  { shape: [64, 100, 40000], tile: 64 },
  { shape: [100, 30, 20], tile: 64 },
];
for (const { shape, tile } of tileChoices) {
  Deno.test(`linear ${shape.join("×")} on a GPU takes ${tile} × ${tile} tiles`, async () => {
    const [m, k, n] = shape;
    const gpu = await familyGpu("gpu");
    const program = new Program(gpu, "linear tile choice");
    const x = program.tensor([m, k], "x");
    const w = program.tensor([n, k], "weight");
    const gy = program.tensor([m, n], "gy");
    const gw = program.tensor([n, k], "weight gradient");
    linearForward(program, x, w, null);
    linearBackwardInput(program, gy, w);
    linearBackwardWeight(program, x, gy, gw, null);
    assertTiledPasses(program, tile);
    program.destroy();
  });
}

Deno.test("Linear layer: names, init, accumulating parameter gradients", async () => {
  const gpu = await testGpu();
  const layer = new Linear(9, 5);
  const entries = layer.entries();
  if (entries.map(([name]) => name).join() !== "weight,bias") throw new Error("entry names");
  const block = new ParameterBlock(gpu, entries);
  let seed = 1;
  block.initialize(() => (seed = (seed * 16807) % 2147483647) / 2147483647);
  const params = await block.read();
  const bound = 1 / Math.sqrt(9);
  for (const name of ["weight", "bias"]) {
    const v = params.get(name)!;
    if (v.some((x) => Math.abs(x) > bound) || Math.max(...v.map(Math.abs)) < bound / 2) {
      throw new Error(`${name} is not uniform on ±1/√in`);
    }
  }
  const program = new Program(gpu, "linear layer");
  const x = program.tensor([4, 9], "x");
  const gy = program.tensor([4, 5], "gy");
  const pass = layer.forward(program, x, { train: true, inputGrad: false });
  if (pass.backward(program, gy) !== undefined) throw new Error("input gradient not skipped");
  program.keep(pass.output);
  const x0 = randn(36, 9);
  const gy0 = randn(20, 10);
  gpu.write(x, x0);
  gpu.write(gy, gy0);
  gpu.write(block.grads, new Float32Array(block.grads.size));
  gpu.submit(program);
  const once = await block.readGrads();
  gpu.submit(program);
  const twice = await block.readGrads();
  const ref = reference(x0, params.get("weight")!, params.get("bias")!, gy0, [4, 9, 5]);
  assertClose(once.get("weight")!, ref.gw, { ...tolerance, label: "weight gradient" });
  assertClose(once.get("bias")!, ref.gb, { ...tolerance, label: "bias gradient" });
  for (const name of ["weight", "bias"]) {
    assertClose(twice.get(name)!, once.get(name)!.map((v) => 2 * v), {
      atol: 1e-6,
      rtol: 1e-6,
      label: `${name} gradient after two backward passes`,
    });
  }
  const [y] = await gpu.read(pass.output);
  const refY = reference(x0, params.get("weight")!, params.get("bias")!, gy0, [4, 9, 5]).y;
  assertClose(y, refY, { ...tolerance, label: "layer output" });
  program.destroy();
  block.destroy();
});

Deno.test("Linear layer takes [..., in]: leading dimensions are rows of one GEMM", async () => {
  const gpu = await testGpu();
  const layer = new Linear(5, 3);
  const block = new ParameterBlock(gpu, layer.entries());
  let seed = 2;
  block.initialize(() => (seed = (seed * 16807) % 2147483647) / 2147483647);
  const params = await block.read();
  const program = new Program(gpu, "linear tokens");
  const x = program.tensor([2, 7, 5], "x");
  const pass = layer.forward(program, x, { train: true, inputGrad: true });
  const gy = program.tensor([2, 7, 3], "gy");
  program.clear(block.grads);
  const gx = pass.backward(program, gy)!;
  assertEquals([pass.output.shape, gx.shape], [[2, 7, 3], [2, 7, 5]], "shapes");
  program.keep(pass.output, gx);
  const x0 = randn(70, 13);
  const gy0 = randn(42, 14);
  gpu.write(x, x0);
  gpu.write(gy, gy0);
  gpu.submit(program);
  const [y, gxv] = await gpu.read(pass.output, gx);
  const ref = reference(x0, params.get("weight")!, params.get("bias")!, gy0, [14, 5, 3]);
  assertClose(y, ref.y, { ...tolerance, label: "output" });
  assertClose(gxv, ref.gx, { ...tolerance, label: "input gradient" });
  assertClose((await block.readGrads()).get("weight")!, ref.gw, { ...tolerance, label: "gW" });
  program.destroy();
  block.destroy();
});

// f16 operands (x, W, gy and the outputs y, gx; the parameters' gradients stay f32) have only
// the tiled kernels, on every adapter. Each staged slice of 16 products is summed in f16 and
// the slices' sums in f32, and y and gx are rounded to f16: against PyTorch's float64 results
// from the same f16 values the errors reach about 2⁻¹¹ of each slice's sum per rounding (sums
// of unit normals: |y| up to ~60 here, errors up to 0.05). atol 0.1 and rtol 2⁻⁸ hold those
// with margin; a wrong or missing term is off by about 1. The 128 × 128 tiles' slices are 8
// deep: shorter f16 sums, within the same bounds.
const f16Tolerance = { atol: 0.1, rtol: 2 ** -8 };

for (const adapterClass of adapterClasses) {
  for (
    const [name, tile] of [["tiles", 64], ["split", 64], ["tiles", 128], ["split", 128]] as const
  ) {
    Deno.test(`linear on f16 operands (${name}, ${tile} × ${tile} tiles; ${adapterClass} adapter: tiled kernels) matches the PyTorch fixture`, async () => {
      const f = await loadFixtureFile(
        new URL("./fixtures/linear_f16.safetensors", import.meta.url).pathname,
      );
      const get = (key: string) => f.get(`${name}.${key}`);
      const [m, k] = f.shape(`${name}.input`);
      const [n] = f.shape(`${name}.weight`);
      const gpu = await familyGpu(adapterClass);
      const program = new Program(gpu, `f16 linear ${m}×${k}→${n}`);
      const x = program.tensor([m, k], "x", "f16");
      const w = program.tensor([n, k], "weight", "f16");
      const b = program.tensor([n], "bias");
      const gy = program.tensor([m, n], "gy", "f16");
      const gw = program.tensor([n, k], "weight gradient");
      const gb = program.tensor([n], "bias gradient");
      const y = linearForward(program, x, w, b, { tile });
      const gx = linearBackwardInput(program, gy, w, { tile });
      program.keep(y, gx);
      linearBackwardWeight(program, x, gy, gw, gb, { tile });
      assertTiledPasses(program, tile, "f16");
      gpu.write(x, Float16Array.from(get("input")));
      gpu.write(w, Float16Array.from(get("weight")));
      gpu.write(gy, Float16Array.from(get("grad_output")));
      gpu.write(b, get("bias").slice());
      gpu.write(gw, new Float32Array(gw.size));
      gpu.write(gb, new Float32Array(gb.size));
      gpu.submit(program);
      const outputs = await gpu.read(y, gx, gw, gb);
      const labels = ["output", "grad_input", "grad_weight", "grad_bias"];
      outputs.forEach((values, i) => {
        assertClose(values, get(labels[i]), { ...f16Tolerance, label: labels[i] });
      });
      program.destroy();
    });
  }
}
