// Batch norm with its ReLU, and with a residual join before the ReLU, in batch norm's own
// kernels (as a ResNet block runs them): against PyTorch (tests/fixtures/
// make_batch_norm_fused.py) and finite differences, on both kernel families, in training and
// evaluation mode, through the one-pass, chunked and split (MoCo) paths.
import { Program } from "../src/gpu/gpu.ts";
import type { Tensor } from "../src/gpu/tensor.ts";
import { batchNormForward, batchNormGradients } from "../src/nn/batch_norm.ts";
import { batchNormLayerCase } from "./_batch_norm_layer.ts";
import { checkGradient, dot } from "./_gradcheck.ts";
import { adapterClasses, assertClose, familyGpu, loadFixtureFile, randn } from "./_util.ts";

const fixture = await loadFixtureFile(
  new URL("./fixtures/batch_norm_fused.safetensors", import.meta.url).pathname,
);

// Outputs and input gradients as tests/batch_norm_test.ts allows; the γ and β gradients sum
// up to 2,175 masked terms of size ~2 in f32.
const tolerance = { atol: 2e-5, rtol: 1e-4 };
const sums = { atol: 2e-4, rtol: 1e-4 };

for (const adapterClass of adapterClasses) {
  for (
    const name of ["relu_small", "relu_chunked", "residual_small", "residual_chunked", "split"]
  ) {
    for (const train of fixture.has(`${name}.eval_y`) ? [true, false] : [true]) {
      const mode = train ? "train" : "eval";
      Deno.test(`batch norm + ${name.replace("_", " ")} ${mode} (${adapterClass} kernels) matches PyTorch`, async () => {
        const out = await batchNormLayerCase(fixture, adapterClass, name, {
          train,
          relu: true,
          precision: "f32",
        });
        const f = (key: string) => fixture.get(`${name}.${train ? "" : "eval_"}${key}`);
        assertClose(out.y, f("y"), { ...tolerance, label: "output" });
        assertClose(out.gx, f("grad_x"), { ...tolerance, label: "input gradient" });
        if (out.gs) assertClose(out.gs, f("grad_s"), { ...tolerance, label: "residual gradient" });
        assertClose(out.grads.get("weight")!, f("grad_weight"), { ...sums, label: "γ gradient" });
        assertClose(out.grads.get("bias")!, f("grad_bias"), { ...sums, label: "β gradient" });
        for (const stat of ["running_mean", "running_var"]) {
          const expected = train ? f(`${stat}_after`) : fixture.get(`${name}.${stat}`);
          assertClose(out.values.get(stat)!, expected, { atol: 1e-6, rtol: 1e-5, label: stat });
        }
      });
    }
  }
}

interface Inputs {
  x: Float32Array<ArrayBuffer>;
  weight: Float32Array<ArrayBuffer>;
  bias: Float32Array<ArrayBuffer>;
  residual: Float32Array<ArrayBuffer>;
}

// Batch norm's output before the ReLU, in float64: to keep test inputs off the ReLU's kink.
function preActivations(
  { x, weight, bias, residual }: Inputs,
  [n, c, h, w]: readonly number[],
  train: boolean,
  runningMean: Float32Array,
  runningVar: Float32Array,
): Float64Array {
  const hw = h * w;
  const pre = new Float64Array(x.length);
  for (let ch = 0; ch < c; ch++) {
    const at = (i: number, s: number) => (i * c + ch) * hw + s;
    let mean = runningMean[ch];
    let variance = runningVar[ch];
    if (train) {
      mean = 0;
      variance = 0;
      for (let i = 0; i < n; i++) for (let s = 0; s < hw; s++) mean += x[at(i, s)] / (n * hw);
      for (let i = 0; i < n; i++) {
        for (let s = 0; s < hw; s++) variance += (x[at(i, s)] - mean) ** 2 / (n * hw);
      }
    }
    const invstd = 1 / Math.sqrt(variance + 1e-5);
    for (let i = 0; i < n; i++) {
      for (let s = 0; s < hw; s++) {
        const o = at(i, s);
        pre[o] = (x[o] - mean) * invstd * weight[ch] + bias[ch] + residual[o];
      }
    }
  }
  return pre;
}

// Finite differences step by 1e-3 along directions of N(0, 1) entries: pre-activations this
// far from 0 keep every probe on one side of the kink.
const margin = 0.03;

/**
 * Inputs whose pre-activations stay `margin` away from the kink: with a residual, the
 * residual moves the near ones away; without, the first seed from `seed` on whose inputs
 * have none near.
 */
function kinkFreeInputs(
  shape: readonly number[],
  train: boolean,
  residual: boolean,
  running: { mean: Float32Array; variance: Float32Array },
  seed: number,
): Inputs {
  const size = shape.reduce((a, b) => a * b, 1);
  const c = shape[1];
  for (let k = seed;; k++) {
    const inputs = {
      x: randn(size, k),
      weight: randn(c, k + 1).map((v) => 1 + 0.3 * v),
      bias: randn(c, k + 2, 0.3),
      residual: residual ? randn(size, k + 3) : new Float32Array(size),
    };
    const pre = preActivations(inputs, shape, train, running.mean, running.variance);
    if (residual) {
      pre.forEach((v, i) => {
        if (Math.abs(v) < margin) inputs.residual[i] += v < 0 ? -margin : margin;
      });
      return inputs;
    }
    if (pre.every((v) => Math.abs(v) >= margin)) return inputs;
  }
}

// Odd shapes: batch 1 and non-square planes; 1×1 planes (3 values a channel); and a residual
// case with enough values a channel (2,480) for the chunked kernels (two chunks on the GPU
// family). A ReLU alone keeps small shapes: inputs with no value near the kink are found.
const gradientCases = [
  { shape: [1, 3, 5, 7], train: true, residual: false },
  { shape: [2, 5, 3, 2], train: false, residual: false },
  { shape: [3, 7, 1, 1], train: true, residual: true },
  { shape: [2, 5, 3, 3], train: false, residual: true },
  { shape: [2, 3, 40, 31], train: true, residual: true },
];
for (const adapterClass of adapterClasses) {
  for (const { shape, train, residual } of gradientCases) {
    const what = residual ? "residual + relu" : "relu";
    Deno.test(`batch norm + ${what} [${shape}] ${train ? "train" : "eval"} (${adapterClass} kernels) gradients agree with finite differences`, async () => {
      const gpu = await familyGpu(adapterClass);
      const c = shape[1];
      const program = new Program(gpu, `fused batch norm gradients [${shape}]`);
      const t = {
        x: program.tensor(shape, "x"),
        weight: program.tensor([c], "weight"),
        bias: program.tensor([c], "bias"),
        residual: program.tensor(shape, "residual"),
      };
      const runningMean = program.tensor([c], "running mean");
      const runningVar = program.tensor([c], "running var");
      const gy = program.tensor(shape, "output gradient");
      const gw = program.tensor([c], "weight gradient");
      const gb = program.tensor([c], "bias gradient");
      const { output, saved } = batchNormForward(
        program,
        t.x,
        t.weight,
        t.bias,
        runningMean,
        runningVar,
        { train, relu: true, residual: residual ? t.residual : undefined },
      );
      const grads = batchNormGradients(program, saved, gy, t.weight, gw, gb);
      const gx = grads.inputGradient();
      program.keep(output, gx, grads.normalized);
      const running = {
        mean: randn(c, 5),
        variance: randn(c, 6).map((v) => 1 + 0.5 * Math.abs(v)),
      };
      const inputs = kinkFreeInputs(shape, train, residual, running, 11);
      const r = randn(inputs.x.length, 7);
      const run = async (values: Inputs, read: Tensor[]) => {
        for (const key of Object.keys(t) as (keyof Inputs)[]) gpu.write(t[key], values[key]);
        // Running statistics are updated in place in training mode: rewritten for each probe.
        gpu.write(runningMean, running.mean);
        gpu.write(runningVar, running.variance);
        gpu.write(gy, r);
        gpu.write(gw, new Float32Array(c));
        gpu.write(gb, new Float32Array(c));
        gpu.submit(program);
        return (await gpu.read(...read)) as Float32Array[];
      };
      const [gxv, gs, gwv, gbv] = await run(inputs, [gx, grads.normalized, gw, gb]);
      const claimed = { x: gxv, weight: gwv, bias: gbv, residual: gs };
      for (
        const key of residual
          ? Object.keys(t) as (keyof Inputs)[]
          : ["x", "weight", "bias"] as const
      ) {
        await checkGradient(
          `fused batch norm ${key}`,
          async (v) => dot(r, (await run({ ...inputs, [key]: v }, [output]))[0]),
          inputs[key].slice(),
          claimed[key],
        );
      }
      program.destroy();
    });
  }
}
