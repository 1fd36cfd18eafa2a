import { type AdapterClass, Program } from "../src/gpu/gpu.ts";
import type { Tensor } from "../src/gpu/tensor.ts";
import { BatchNorm2d, batchNormBackward, batchNormForward } from "../src/nn/batch_norm.ts";
import { ParameterBlock } from "../src/nn/parameters.ts";
import { checkGradient, dot } from "./_gradcheck.ts";
import { adapterClasses, assertClose, familyGpu, loadFixture, randn, testGpu } from "./_util.ts";

interface Inputs {
  x: Float32Array<ArrayBuffer>;
  weight: Float32Array<ArrayBuffer>;
  bias: Float32Array<ArrayBuffer>;
  runningMean: Float32Array<ArrayBuffer>;
  runningVar: Float32Array<ArrayBuffer>;
  gy: Float32Array<ArrayBuffer>;
}

// Float64 batch norm over NCHW: outputs, input gradient, γ and β gradients, running stats.
function reference(
  { x, weight, bias, runningMean, runningVar, gy }: Inputs,
  [n, c, h, w]: number[],
  train: boolean,
  momentum = 0.1,
  eps = 1e-5,
) {
  const hw = h * w;
  const m = n * hw;
  const y = new Float64Array(x.length);
  const gx = new Float64Array(x.length);
  const gw = new Float64Array(c);
  const gb = new Float64Array(c);
  const rm = Float64Array.from(runningMean);
  const rv = Float64Array.from(runningVar);
  const at = (i: number, ch: number, s: number) => (i * c + ch) * hw + s;
  for (let ch = 0; ch < c; ch++) {
    let mean = 0;
    for (let i = 0; i < n; i++) for (let s = 0; s < hw; s++) mean += x[at(i, ch, s)] / m;
    let variance = 0;
    for (let i = 0; i < n; i++) {
      for (let s = 0; s < hw; s++) variance += (x[at(i, ch, s)] - mean) ** 2;
    }
    if (train) {
      rm[ch] = (1 - momentum) * rm[ch] + momentum * mean;
      rv[ch] = (1 - momentum) * rv[ch] + momentum * variance / (m - 1);
    } else {
      mean = runningMean[ch];
      variance = runningVar[ch] * m;
    }
    const invstd = 1 / Math.sqrt(variance / m + eps);
    let sumGy = 0;
    let sumGyXhat = 0;
    for (let i = 0; i < n; i++) {
      for (let s = 0; s < hw; s++) {
        const o = at(i, ch, s);
        const xhat = (x[o] - mean) * invstd;
        y[o] = xhat * weight[ch] + bias[ch];
        sumGy += gy[o];
        sumGyXhat += gy[o] * xhat;
      }
    }
    gw[ch] = sumGyXhat;
    gb[ch] = sumGy;
    for (let i = 0; i < n; i++) {
      for (let s = 0; s < hw; s++) {
        const o = at(i, ch, s);
        const xhat = (x[o] - mean) * invstd;
        gx[o] = train
          ? weight[ch] * invstd * (gy[o] - sumGy / m - xhat * sumGyXhat / m)
          : weight[ch] * invstd * gy[o];
      }
    }
  }
  return { y, gx, gw, gb, rm, rv };
}

function randomInputs(shape: number[], seed: number): Inputs {
  const [n, c, h, w] = shape;
  const size = n * c * h * w;
  // An offset mean, so that a variance computed as E[x²] − E[x]² in f32 would fail.
  const x = randn(size, seed).map((v, i) => 3 * v + 20 + Math.floor(i / (h * w)) % c);
  return {
    x,
    weight: randn(c, seed + 1).map((v) => 1 + 0.3 * v),
    bias: randn(c, seed + 2, 0.3),
    runningMean: randn(c, seed + 3),
    runningVar: randn(c, seed + 4).map((v) => 1 + 0.5 * Math.abs(v)),
    gy: randn(size, seed + 5),
  };
}

/**
 * Records forward and backward of one batch norm on its own tensors, with the given kernel
 * family's chunking of the reductions.
 */
async function batchNormCase(
  shape: number[],
  train: boolean,
  adapterClass: AdapterClass,
  { momentum = 0.1, eps = 1e-5 } = {},
) {
  const gpu = await familyGpu(adapterClass);
  const c = shape[1];
  const program = new Program(
    gpu,
    `batch norm [${shape}] ${train ? "train" : "eval"} (${adapterClass} kernels)`,
  );
  const t = {
    x: program.tensor(shape, "x"),
    weight: program.tensor([c], "weight"),
    bias: program.tensor([c], "bias"),
    runningMean: program.tensor([c], "running mean"),
    runningVar: program.tensor([c], "running var"),
    gy: program.tensor(shape, "gy"),
  };
  const gw = program.tensor([c], "weight gradient");
  const gb = program.tensor([c], "bias gradient");
  const { output, saved } = batchNormForward(
    program,
    t.x,
    t.weight,
    t.bias,
    t.runningMean,
    t.runningVar,
    { train, momentum, eps },
  );
  const gx = batchNormBackward(program, saved, t.gy, t.weight, gw, gb)!;
  program.keep(output, gx);
  const out = { y: output, gx, gw, gb, rm: t.runningMean, rv: t.runningVar };
  const run = async (inputs: Inputs, read: Tensor[] = Object.values(out)) => {
    for (const key of Object.keys(t) as (keyof Inputs)[]) gpu.write(t[key], inputs[key]);
    gpu.write(gw, new Float32Array(c));
    gpu.write(gb, new Float32Array(c));
    gpu.submit(program);
    return (await gpu.read(...read)) as Float32Array[];
  };
  return { program, run, out };
}

// Outputs are O(1) with f32 rounding ~1e-7 relative; the input gradient subtracts means of
// O(1) terms (error ~1e-6 of |gy|·γ·invstd). Reductions over up to 20k values in f32 with
// pairwise merging stay within ~1e-6 relative. atol 2e-5 / rtol 1e-4 catches any wrong term.
const tolerance = { atol: 2e-5, rtol: 1e-4 };

for (const adapterClass of adapterClasses) {
  Deno.test(`batch norm (${adapterClass} kernels) matches the PyTorch fixture (train, running stats, eval)`, async () => {
    const gpu = await familyGpu(adapterClass);
    const f = await loadFixture("batchnorm2d");
    const shape = f.shape("input");
    const momentum = f.meta.momentum as number;
    const eps = f.meta.eps as number;
    const layer = new BatchNorm2d(shape[1], { momentum, eps });
    const block = new ParameterBlock(gpu, layer.entries());
    block.load(
      new Map([
        ["weight", f.get("weight")],
        ["bias", f.get("bias")],
        ["running_mean", f.get("running_mean_before")],
        ["running_var", f.get("running_var_before")],
      ]),
      "batchnorm2d fixture",
    );
    gpu.write(block.grads, new Float32Array(block.grads.size));
    const train = new Program(gpu, "batch norm train");
    const x = train.tensor(shape, "x");
    const gy = train.tensor(shape, "gy");
    const pass = layer.forward(train, x, { train: true, inputGrad: true });
    const gx = pass.backward(train, gy)!;
    train.keep(pass.output, gx);
    gpu.write(x, f.get("input").slice());
    gpu.write(gy, f.get("grad_output").slice());
    gpu.submit(train);
    const [y, gxv] = await gpu.read(pass.output, gx);
    assertClose(y, f.get("output"), { ...tolerance, label: "output" });
    assertClose(gxv, f.get("grad_input"), { ...tolerance, label: "grad_input" });
    const grads = await block.readGrads();
    assertClose(grads.get("weight")!, f.get("grad_weight"), { ...tolerance, label: "grad_weight" });
    assertClose(grads.get("bias")!, f.get("grad_bias"), { ...tolerance, label: "grad_bias" });
    const stats = await block.read();
    assertClose(stats.get("running_mean")!, f.get("running_mean_after"), {
      atol: 1e-6,
      rtol: 1e-5,
      label: "running_mean",
    });
    assertClose(stats.get("running_var")!, f.get("running_var_after"), {
      atol: 1e-6,
      rtol: 1e-5,
      label: "running_var",
    });
    const evaluation = new Program(gpu, "batch norm eval");
    const xe = evaluation.tensor(shape, "x");
    const evalPass = layer.forward(evaluation, xe, { train: false, inputGrad: true });
    evaluation.keep(evalPass.output);
    gpu.write(xe, f.get("input").slice());
    gpu.submit(evaluation);
    assertClose(await gpu.readF32(evalPass.output), f.get("eval_output"), {
      ...tolerance,
      label: "eval_output",
    });
    train.destroy();
    evaluation.destroy();
    block.destroy();
  });
}

// Batch 1 and non-square planes; channel counts 3, 5, 7; 1×1 planes; planes wider than a
// workgroup (65×61); and enough values per channel (21,000 and 19,825) for several chunks:
// 2 of 16,384 values with the CPU family's tuning, 10 and 11 of 2,048 with the GPU family's,
// whose elementwise kernels also run one invocation per value where the CPU family's loop
// over images.
// One pass per channel up to 256 values a channel ([16, 4, 4, 4] is the largest), chunks
// above (one on the CPU family for [40, 5, 5, 5], several on the GPU family).
const shapes = [
  [1, 3, 5, 7],
  [3, 7, 9, 2],
  [70, 5, 1, 1],
  [16, 4, 4, 4],
  [40, 5, 5, 5],
  [600, 3, 5, 7],
  [5, 3, 65, 61],
];
for (const adapterClass of adapterClasses) {
  for (const shape of shapes) {
    for (const train of [true, false]) {
      Deno.test(`batch norm [${shape}] ${train ? "train" : "eval"} (${adapterClass} kernels) matches float64`, async () => {
        const { program, run } = await batchNormCase(shape, train, adapterClass);
        const inputs = randomInputs(shape, shape.reduce((a, b) => a * b, 1));
        const [y, gx, gw, gb, rm, rv] = await run(inputs);
        const ref = reference(inputs, shape, train);
        assertClose(y, ref.y, { ...tolerance, label: "output" });
        assertClose(gx, ref.gx, { ...tolerance, label: "input gradient" });
        // Sums over up to 20k terms of size ~3: allow for their f32 rounding.
        assertClose(gw, ref.gw, { atol: 1e-3, rtol: 1e-4, label: "weight gradient" });
        assertClose(gb, ref.gb, { atol: 1e-3, rtol: 1e-4, label: "bias gradient" });
        assertClose(rm, ref.rm, { atol: 1e-5, rtol: 1e-5, label: "running mean" });
        assertClose(rv, ref.rv, { atol: 1e-5, rtol: 1e-5, label: "running var" });
        program.destroy();
      });
    }
  }
}

for (const adapterClass of adapterClasses) {
  for (
    const [shape, train] of [[[1, 3, 5, 7], true], [[2, 5, 3, 2], false], [
      [3, 7, 1, 1],
      true,
    ]] as const
  ) {
    Deno.test(`batch norm [${shape}] ${train ? "train" : "eval"} (${adapterClass} kernels) gradients agree with finite differences`, async () => {
      const { program, run, out } = await batchNormCase([...shape], train, adapterClass);
      const inputs = randomInputs([...shape], 17);
      // Unit-scale inputs: finite differences of f32 outputs need them.
      inputs.x = randn(inputs.x.length, 18);
      const [, gx, gw, gb] = await run(inputs);
      const r = inputs.gy;
      for (const [key, grad] of [["x", gx], ["weight", gw], ["bias", gb]] as const) {
        await checkGradient(
          `batch norm ${key}`,
          async (v) => {
            const [y] = await run({ ...inputs, [key]: v }, [out.y]);
            return dot(r, y);
          },
          inputs[key].slice(),
          grad,
        );
      }
      program.destroy();
    });
  }
}

Deno.test("BatchNorm2d: torchvision names and init, accumulating γ and β gradients", async () => {
  const gpu = await testGpu();
  const layer = new BatchNorm2d(5);
  const names = layer.entries().map(([name]) => name).join();
  if (names !== "weight,bias,running_mean,running_var") throw new Error(`entries: ${names}`);
  const block = new ParameterBlock(gpu, layer.entries());
  block.initialize(Math.random);
  const init = await block.read();
  for (
    const [name, value] of [["weight", 1], ["bias", 0], ["running_mean", 0], [
      "running_var",
      1,
    ]] as const
  ) {
    assertClose(init.get(name)!, new Float32Array(5).fill(value), {
      atol: 0,
      rtol: 0,
      label: name,
    });
  }
  const program = new Program(gpu, "batch norm layer");
  const shape = [2, 5, 3, 3];
  const x = program.tensor(shape, "x");
  const gy = program.tensor(shape, "gy");
  const pass = layer.forward(program, x, { train: true, inputGrad: false });
  if (pass.backward(program, gy) !== undefined) throw new Error("input gradient not skipped");
  const inputs = randomInputs(shape, 31);
  gpu.write(x, inputs.x);
  gpu.write(gy, inputs.gy);
  gpu.write(block.grads, new Float32Array(block.grads.size));
  gpu.submit(program);
  const once = await block.readGrads();
  gpu.submit(program);
  const twice = await block.readGrads();
  const ref = reference(
    { ...inputs, weight: new Float32Array(5).fill(1), bias: new Float32Array(5) },
    shape,
    true,
  );
  assertClose(once.get("weight")!, ref.gw, { ...tolerance, label: "weight gradient" });
  assertClose(once.get("bias")!, ref.gb, { ...tolerance, label: "bias gradient" });
  for (const name of ["weight", "bias"]) {
    assertClose(twice.get(name)!, once.get(name)!.map((v) => 2 * v), {
      atol: 1e-6,
      rtol: 1e-6,
      label: `${name} gradient after two backward passes`,
    });
  }
  program.destroy();
  block.destroy();
});

Deno.test("batch norm in training mode rejects one value per channel", async () => {
  const gpu = await testGpu();
  const program = new Program(gpu, "batch norm single value");
  const x = program.tensor([1, 3, 1, 1], "x");
  const p = program.tensor([3], "p");
  let message = "";
  try {
    batchNormForward(program, x, p, p, p, p, { train: true });
  } catch (error) {
    message = (error as Error).message;
  }
  if (!message.includes("more than 1 value per channel")) throw new Error(`got "${message}"`);
  program.destroy();
});
