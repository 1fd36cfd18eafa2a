import { Program } from "../src/gpu/gpu.ts";
import { GlobalAvgPool, globalAvgPoolBackward, globalAvgPoolForward } from "../src/nn/avg_pool.ts";
import {
  MaxPool2d,
  maxPoolBackward,
  maxPoolForward,
  type MaxPoolOptions,
} from "../src/nn/max_pool.ts";
import { checkGradient, dot } from "./_gradcheck.ts";
import { assertClose, loadFixture, randn, testGpu } from "./_util.ts";

// PyTorch's CPU max pool, in float64: windows start at their first in-bounds element, the
// running maximum starts at −∞, a later value wins only if greater (or NaN).
function maxPoolReference(
  x: ArrayLike<number>,
  [n, c, h, w]: number[],
  { kernel, stride = kernel, padding = 0 }: MaxPoolOptions,
  gy?: ArrayLike<number>,
) {
  const oh = Math.floor((h + 2 * padding - kernel) / stride) + 1;
  const ow = Math.floor((w + 2 * padding - kernel) / stride) + 1;
  const y = new Float64Array(n * c * oh * ow);
  const gx = new Float64Array(x.length);
  for (let p = 0; p < n * c; p++) {
    for (let i = 0; i < oh; i++) {
      for (let j = 0; j < ow; j++) {
        const h0 = Math.max(i * stride - padding, 0);
        const h1 = Math.min(i * stride - padding + kernel, h);
        const w0 = Math.max(j * stride - padding, 0);
        const w1 = Math.min(j * stride - padding + kernel, w);
        let best = -Infinity;
        let index = h0 * w + w0;
        for (let a = h0; a < h1; a++) {
          for (let b = w0; b < w1; b++) {
            const v = x[p * h * w + a * w + b];
            if (v > best || Number.isNaN(v)) [best, index] = [v, a * w + b];
          }
        }
        const o = (p * oh + i) * ow + j;
        y[o] = best;
        if (gy) gx[p * h * w + index] += gy[o];
      }
    }
  }
  return { y, gx, outShape: [n, c, oh, ow] };
}

async function maxPoolCase(shape: number[], options: MaxPoolOptions) {
  const gpu = await testGpu();
  const program = new Program(gpu, `max pool [${shape}]`);
  const x = program.tensor(shape, "x");
  const { output, saved } = maxPoolForward(program, x, options);
  const gy = program.tensor(output.shape, "gy");
  const gx = maxPoolBackward(program, saved, gy, options);
  program.keep(output, gx, saved.argmax);
  const run = async (xs: Float32Array<ArrayBuffer>, gys: Float32Array<ArrayBuffer>) => {
    gpu.write(x, xs);
    gpu.write(gy, gys);
    gpu.submit(program);
    return (await gpu.read(output, gx, saved.argmax)) as [Float32Array, Float32Array, Uint32Array];
  };
  return { program, run, outSize: output.size };
}

Deno.test("max pool matches the PyTorch fixture", async () => {
  const f = await loadFixture("maxpool2d");
  const options = {
    kernel: f.meta.kernel as number,
    stride: f.meta.stride as number,
    padding: f.meta.padding as number,
  };
  const { program, run } = await maxPoolCase(f.shape("input"), options);
  const [y, gx] = await run(f.get("input").slice(), f.get("grad_output").slice());
  // A maximum is a copy of an input; a gradient is a sum of at most 4 values (3×3 windows at
  // stride 2 overlap at most twice each way), rounded once more in f32 than the fixture.
  assertClose(y, f.get("output"), { atol: 0, rtol: 0, label: "output" });
  assertClose(gx, f.get("grad_input"), { atol: 1e-6, rtol: 1e-6, label: "grad_input" });
  program.destroy();
});

// Kernel/stride/padding: ResNet's 3×3 s2 p1, non-overlapping 2×2, overlapping stride 1, and a
// wide 5×5 s3 p2; batch 1, channels 3/5/7, non-square planes, edges that leave partial windows.
const cases: [number[], MaxPoolOptions][] = [
  [[1, 3, 7, 9], { kernel: 3, stride: 2, padding: 1 }],
  [[2, 5, 8, 5], { kernel: 2 }],
  [[1, 7, 6, 11], { kernel: 3, stride: 1, padding: 1 }],
  [[3, 3, 9, 7], { kernel: 5, stride: 3, padding: 2 }],
];

for (const [shape, options] of cases) {
  Deno.test(`max pool [${shape}] ${JSON.stringify(options)} handles ties and NaN as PyTorch`, async () => {
    const { program, run, outSize } = await maxPoolCase(shape, options);
    const size = shape.reduce((a, b) => a * b, 1);
    // Coarse values tie often; a few −∞ and a NaN test the running maximum's start and NaN.
    const x = randn(size, size).map((v) => Math.round(v * 2) / 2);
    x[3] = -Infinity;
    x[size - 1] = -Infinity;
    x[Math.floor(size / 2)] = NaN;
    const gy = randn(outSize, 5);
    const [y, gx] = await run(x, gy);
    const ref = maxPoolReference(x, shape, options, gy);
    for (let i = 0; i < y.length; i++) {
      if (!Object.is(y[i], ref.y[i]) && !(y[i] === ref.y[i])) {
        throw new Error(`output ${i}: ${y[i]}, expected ${ref.y[i]}`);
      }
    }
    assertClose(gx, ref.gx, { atol: 1e-6, rtol: 1e-6, label: "input gradient" });
    program.destroy();
  });
}

Deno.test("max pool gradient agrees with finite differences", async () => {
  for (const [shape, options] of [cases[0], cases[2]]) {
    const { program, run, outSize } = await maxPoolCase(shape, options);
    const size = shape.reduce((a, b) => a * b, 1);
    // Distinct values 0.01 apart: a 1e-3 step never changes which one is a maximum.
    const order = randn(size, 3);
    const ranks = Array.from(order.keys()).sort((a, b) => order[a] - order[b]);
    const x = new Float32Array(size);
    ranks.forEach((at, rank) => (x[at] = (rank - size / 2) * 0.01));
    const r = randn(outSize, 4);
    const [, gx] = await run(x, r);
    await checkGradient("max pool", async (v) => dot(r, (await run(v, r))[0]), x.slice(), gx);
    program.destroy();
  }
});

Deno.test("MaxPool2d layer defaults stride to the kernel and skips an unneeded gradient", async () => {
  const gpu = await testGpu();
  const layer = new MaxPool2d({ kernel: 2 });
  if (layer.entries().length !== 0 || layer.options.stride !== 2 || layer.options.padding !== 0) {
    throw new Error(`unexpected options ${JSON.stringify(layer.options)}`);
  }
  const program = new Program(gpu, "max pool layer");
  const x = program.tensor([1, 3, 5, 4], "x");
  const pass = layer.forward(program, x, { train: true, inputGrad: false });
  if (pass.output.shape.join() !== "1,3,2,2") throw new Error(`output [${pass.output.shape}]`);
  if (pass.backward(program, pass.output) !== undefined) throw new Error("gradient not skipped");
  let message = "";
  try {
    new MaxPool2d({ kernel: 3, padding: 2 }).forward(program, x, { train: true, inputGrad: true });
  } catch (error) {
    message = (error as Error).message;
  }
  if (!message.includes("at most half the kernel")) throw new Error(`got "${message}"`);
  program.destroy();
});

async function avgPoolCase(shape: number[]) {
  const gpu = await testGpu();
  const program = new Program(gpu, `average pool [${shape}]`);
  const x = program.tensor(shape, "x");
  const y = globalAvgPoolForward(program, x);
  const gy = program.tensor(y.shape, "gy");
  const gx = globalAvgPoolBackward(program, gy, shape);
  program.keep(y, gx);
  const run = async (xs: Float32Array<ArrayBuffer>, gys: Float32Array<ArrayBuffer>) => {
    gpu.write(x, xs);
    gpu.write(gy, gys);
    gpu.submit(program);
    return (await gpu.read(y, gx)) as Float32Array[];
  };
  return { program, run };
}

// A mean of H·W f32 values of unit scale is within ~H·W·2⁻²⁴ of the float64 one.
const avgTolerance = { atol: 1e-6, rtol: 1e-5 };

Deno.test("global average pool matches the PyTorch fixture", async () => {
  const f = await loadFixture("avgpool_global");
  const { program, run } = await avgPoolCase(f.shape("input"));
  const [y, gx] = await run(f.get("input").slice(), f.get("grad_output").slice());
  assertClose(y, f.get("output"), { ...avgTolerance, label: "output" });
  assertClose(gx, f.get("grad_input"), { ...avgTolerance, label: "grad_input" });
  program.destroy();
});

Deno.test("global average pool matches float64 and finite differences on odd shapes", async () => {
  for (const shape of [[1, 3, 5, 7], [3, 7, 1, 1], [2, 5, 4, 3]]) {
    const [n, c, h, w] = shape;
    const { program, run } = await avgPoolCase(shape);
    const x = randn(n * c * h * w, 6);
    const gy = randn(n * c, 7);
    const [y, gx] = await run(x, gy);
    const refY = new Float64Array(n * c);
    x.forEach((v, i) => (refY[Math.floor(i / (h * w))] += v / (h * w)));
    assertClose(y, refY, { ...avgTolerance, label: `output [${shape}]` });
    const refGx = Float64Array.from(x, (_, i) => gy[Math.floor(i / (h * w))] / (h * w));
    assertClose(gx, refGx, { ...avgTolerance, label: `input gradient [${shape}]` });
    await checkGradient("average pool", async (v) => dot(gy, (await run(v, gy))[0]), x.slice(), gx);
    program.destroy();
  }
});

Deno.test("GlobalAvgPool layer maps [N, C, H, W] to [N, C]", async () => {
  const gpu = await testGpu();
  const program = new Program(gpu, "average pool layer");
  const x = program.tensor([2, 3, 4, 4], "x");
  const pass = new GlobalAvgPool().forward(program, x, { train: true, inputGrad: true });
  if (pass.output.shape.join() !== "2,3") throw new Error(`output [${pass.output.shape}]`);
  const gx = pass.backward(program, pass.output);
  if (gx?.shape.join() !== "2,3,4,4") throw new Error(`gradient [${gx?.shape}]`);
  program.destroy();
});
