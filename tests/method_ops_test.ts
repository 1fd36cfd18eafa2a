// The building blocks of MoCo v2, BYOL and the collapse monitor against PyTorch
// (tests/fixtures/make_method_ops.py) and finite differences.
import { createGpu } from "../src/gpu/device.ts";
import { type AdapterClass, type Gpu, Program } from "../src/gpu/gpu.ts";
import { normalizedRegression } from "../src/loss/cosine.ts";
import { infoNceWithQueue } from "../src/loss/info_nce.ts";
import { recordSpread } from "../src/monitor.ts";
import { BatchNorm1d, BatchNorm2d } from "../src/nn/batch_norm.ts";
import { gatherRows } from "../src/nn/gather.ts";
import { l2NormalizeBackward, l2NormalizeForward } from "../src/nn/l2_normalize.ts";
import { type Layer, prefixed } from "../src/nn/module.ts";
import { ParameterBlock } from "../src/nn/parameters.ts";
import { emaRate, EmaUpdate } from "../src/optim/ema.ts";
import { queueWriteKernel } from "../src/gpu/kernels/embedding.ts";
import { StepValues } from "../src/gpu/step_values.ts";
import { checkGradient, dot } from "./_gradcheck.ts";
import { assertClose, loadFixtureFile, randn, runOnce, testGpu } from "./_util.ts";

const fixture = await loadFixtureFile(
  new URL("./fixtures/method_ops.safetensors", import.meta.url).pathname,
);
const f = (name: string) => fixture.get(name) as Float32Array<ArrayBuffer>;

let gpuFamily: Promise<Gpu> | undefined;
/** A device that runs the kernel family for GPUs, whatever the adapter. */
function familyGpu(adapterClass: AdapterClass): Promise<Gpu> {
  if (adapterClass === "cpu") {
    return testGpu().then((gpu) => {
      if (gpu.adapterClass !== "cpu") throw new Error("the test device is not of the CPU family");
      return gpu;
    });
  }
  gpuFamily ??= createGpu({ adapterClass: "gpu" });
  return gpuFamily;
}

const run = runOnce;

Deno.test("L2 normalisation and its gradient match PyTorch and finite differences", async () => {
  const gpu = await testGpu();
  const shape = fixture.shape("l2.x");
  const forwardBackward = (x: Float32Array<ArrayBuffer>, r: Float32Array<ArrayBuffer>) =>
    run(gpu, (p) => {
      const input = p.tensor(shape, "x");
      const gradY = p.tensor(shape, "r");
      const { y, norms } = l2NormalizeForward(p, input);
      return { inputs: [input, gradY], outputs: [y, l2NormalizeBackward(p, y, norms, gradY)] };
    }, [x, r]);
  const [y, grad] = await forwardBackward(f("l2.x"), f("l2.r"));
  assertClose(y, f("l2.y"), { atol: 1e-6, rtol: 1e-5, label: "normalised rows" });
  assertClose(grad, f("l2.grad"), { atol: 1e-6, rtol: 1e-5, label: "input gradient" });
  // An odd shape, by finite differences.
  const x = randn(3 * 5, 3);
  const r = randn(3 * 5, 4);
  const odd = (v: Float32Array<ArrayBuffer>) =>
    run(gpu, (p) => {
      const input = p.tensor([3, 5], "x");
      const gradY = p.tensor([3, 5], "r");
      const { y, norms } = l2NormalizeForward(p, input);
      return { inputs: [input, gradY], outputs: [y, l2NormalizeBackward(p, y, norms, gradY)] };
    }, [v, r]);
  const [, g] = await odd(x);
  await checkGradient("L2 normalisation", async (v) => dot(r, (await odd(v))[0]), x, g);
});

Deno.test("MoCo's InfoNCE against a queue matches PyTorch and finite differences", async () => {
  const gpu = await testGpu();
  const temperature = fixture.meta.temperature as number;
  const [n, d] = fixture.shape("infonce.q");
  const k = fixture.shape("infonce.queue")[0];
  const lossAndGrad = (q: Float32Array<ArrayBuffer>) =>
    run(gpu, (p) => {
      const queries = p.tensor([n, d], "q");
      const keys = p.tensor([n, d], "k");
      const queue = p.tensor([k, d], "queue");
      const zeros = p.tensor([k], "zeros");
      const { y, norms } = l2NormalizeForward(p, queries);
      const out = infoNceWithQueue(p, y, keys, queue, zeros, { temperature, scale: 1 / n });
      const gradQ = l2NormalizeBackward(p, y, norms, out.gradQueries);
      return { inputs: [queries, keys, queue, zeros], outputs: [out.loss, gradQ] };
    }, [q, f("infonce.k"), f("infonce.queue"), new Float32Array(k)]);
  const [loss, grad] = await lossAndGrad(f("infonce.q"));
  assertClose(loss, f("infonce.loss"), { atol: 1e-5, rtol: 1e-5, label: "loss" });
  assertClose(grad, f("infonce.grad"), { atol: 1e-6, rtol: 1e-4, label: "query gradient" });
  await checkGradient(
    "InfoNCE",
    async (q) => (await lossAndGrad(q))[0][0],
    f("infonce.q").slice(),
    grad,
  );
});

Deno.test("BYOL's regression loss matches PyTorch and finite differences", async () => {
  const gpu = await testGpu();
  const [n, d] = fixture.shape("byol.p");
  const lossAndGrad = (values: Float32Array<ArrayBuffer>) =>
    run(gpu, (p) => {
      const predictions = p.tensor([n, d], "p");
      const targets = p.tensor([n, d], "z");
      const pn = l2NormalizeForward(p, predictions);
      const zn = l2NormalizeForward(p, targets);
      const out = normalizedRegression(p, pn.y, zn.y, 1 / n);
      const grad = l2NormalizeBackward(p, pn.y, pn.norms, out.gradInput);
      return { inputs: [predictions, targets], outputs: [out.loss, grad] };
    }, [values, f("byol.z")]);
  const [loss, grad] = await lossAndGrad(f("byol.p"));
  assertClose(loss, f("byol.loss"), { atol: 1e-6, rtol: 1e-5, label: "loss" });
  assertClose(grad, f("byol.grad"), { atol: 1e-6, rtol: 1e-4, label: "prediction gradient" });
  await checkGradient("BYOL loss", async (v) => (await lossAndGrad(v))[0][0], f("byol.p"), grad);
});

/** A layer's forward (training mode) and backward of Σ r·y on one input. */
async function layerRun(
  gpu: Gpu,
  layer: Layer,
  parameters: Map<string, Float32Array>,
  x: Float32Array<ArrayBuffer>,
  shape: number[],
  r: Float32Array<ArrayBuffer>,
  batchNormSplits?: number,
) {
  const block = new ParameterBlock(gpu, layer.entries());
  block.load(parameters, "test");
  const program = new Program(gpu, "layer test");
  const input = program.tensor(shape, "x");
  const gradOutput = program.tensor(shape, "r");
  program.clear(block.grads);
  const pass = layer.forward(program, input, { train: true, inputGrad: true, batchNormSplits });
  const gradInput = pass.backward(program, gradOutput)!;
  program.keep(pass.output, gradInput);
  gpu.write(input, x);
  gpu.write(gradOutput, r);
  gpu.submit(program);
  const [y, gx] = (await gpu.read(pass.output, gradInput) as Float32Array[]).map((v) => v.slice());
  const values = await block.read();
  const grads = await block.readGrads();
  program.destroy();
  block.destroy();
  return { y, gx, values, grads };
}

for (const adapterClass of ["cpu", "gpu"] as const) {
  Deno.test(`split batch norm (${adapterClass} kernels) matches MoCo's SplitBatchNorm`, async () => {
    const gpu = await familyGpu(adapterClass);
    const splits = Number(fixture.meta.splits);
    const shape = fixture.shape("splitbn.x");
    const names = ["weight", "bias", "running_mean", "running_var"];
    const parameters = new Map(names.map((n) => [n, f(`splitbn.${n}`)]));
    const out = await layerRun(
      gpu,
      new BatchNorm2d(shape[1]),
      parameters,
      f("splitbn.x"),
      shape,
      f("splitbn.r"),
      splits,
    );
    const tolerance = { atol: 1e-5, rtol: 1e-4 };
    assertClose(out.y, f("splitbn.y"), { ...tolerance, label: "output" });
    assertClose(out.gx, f("splitbn.grad_x"), { ...tolerance, label: "input gradient" });
    assertClose(out.grads.get("weight")!, f("splitbn.grad_weight"), { ...tolerance, label: "γ" });
    assertClose(out.grads.get("bias")!, f("splitbn.grad_bias"), { ...tolerance, label: "β" });
    for (const stat of ["running_mean", "running_var"]) {
      assertClose(out.values.get(stat)!, f(`splitbn.${stat}_after`), { ...tolerance, label: stat });
    }
  });

  Deno.test(`BatchNorm1d (${adapterClass} kernels) matches PyTorch`, async () => {
    const gpu = await familyGpu(adapterClass);
    const shape = fixture.shape("bn1d.x");
    const d = shape[1];
    const parameters = new Map<string, Float32Array>([
      ["weight", f("bn1d.weight")],
      ["bias", f("bn1d.bias")],
      ["running_mean", new Float32Array(d)],
      ["running_var", new Float32Array(d).fill(1)],
    ]);
    const out = await layerRun(
      gpu,
      new BatchNorm1d(d),
      parameters,
      f("bn1d.x"),
      shape,
      f("bn1d.r"),
    );
    const tolerance = { atol: 1e-5, rtol: 1e-4 };
    assertClose(out.y, f("bn1d.y"), { ...tolerance, label: "output" });
    assertClose(out.gx, f("bn1d.grad_x"), { ...tolerance, label: "input gradient" });
    assertClose(out.grads.get("weight")!, f("bn1d.grad_weight"), { ...tolerance, label: "γ" });
    assertClose(out.grads.get("bias")!, f("bn1d.grad_bias"), { ...tolerance, label: "β" });
    for (const stat of ["running_mean", "running_var"]) {
      assertClose(out.values.get(stat)!, f(`bn1d.${stat}_after`), { ...tolerance, label: stat });
    }
  });
}

Deno.test("split batch norm refuses a batch its groups do not divide", async () => {
  const gpu = await testGpu();
  const program = new Program(gpu, "split test");
  const layer = new BatchNorm2d(2);
  const block = new ParameterBlock(gpu, layer.entries());
  const input = program.tensor([6, 2, 2, 2], "x");
  try {
    layer.forward(program, input, { train: true, inputGrad: false, batchNormSplits: 4 });
    throw new Error("accepted");
  } catch (error) {
    if (!/divisible by its 4 groups/.test((error as Error).message)) throw error;
  }
  program.destroy();
  block.destroy();
});

Deno.test("the moving average matches PyTorch's, from a prefix of the online block", async () => {
  const gpu = await testGpu();
  const n = fixture.shape("ema.key")[0];
  // The online block has a layer more after the target's: the target's layout is its prefix.
  const online = new ParameterBlock(gpu, [
    ...new BatchNorm1d(n).entries(),
    ...prefixed("extra", new BatchNorm1d(5)),
  ]);
  const target = new ParameterBlock(gpu, new BatchNorm1d(n).entries());
  const key = f("ema.key"), query = f("ema.query");
  const loadPair = (block: ParameterBlock, weight: Float32Array, extra = false) => {
    const values = new Map<string, Float32Array>([
      ["weight", weight],
      ["bias", weight.map((v) => -v)],
      ["running_mean", new Float32Array(n)],
      ["running_var", new Float32Array(n)],
    ]);
    if (extra) {
      for (const name of ["weight", "bias", "running_mean", "running_var"]) {
        values.set(`extra.${name}`, new Float32Array(5).fill(3));
      }
    }
    block.load(values, "test");
  };
  loadPair(online, query, true);
  loadPair(target, key);
  const ema = new EmaUpdate(gpu, target, online);
  const program = new Program(gpu, "ema test");
  ema.record(program);
  ema.prepare(fixture.meta.momentum as number);
  gpu.submit(program);
  const values = await target.read();
  assertClose(values.get("weight")!, f("ema.after"), { atol: 1e-7, rtol: 1e-6, label: "weight" });
  assertClose(values.get("bias")!, f("ema.after").map((v) => -v), {
    atol: 1e-7,
    rtol: 1e-6,
    label: "bias",
  });
  ema.copy();
  assertClose((await target.read()).get("weight")!, query, { atol: 0, rtol: 0, label: "copy" });
  program.destroy();
  ema.destroy();
  online.destroy();
  target.destroy();
});

Deno.test("the moving-average schedule rises from base to final along a half cosine", () => {
  const close = (a: number, b: number) => {
    if (Math.abs(a - b) > 1e-12) throw new Error(`${a} ≠ ${b}`);
  };
  close(emaRate(0, 100, 0.99, 1), 0.99);
  close(emaRate(50, 100, 0.99, 1), 0.995);
  close(emaRate(100, 100, 0.99, 1), 1);
  close(emaRate(37, 100, 0.99, 0.99), 0.99);
});

Deno.test("rows are gathered by index and written into a ring at a step-value slot", async () => {
  const gpu = await testGpu();
  const x = Float32Array.from({ length: 4 * 3 }, (_, i) => i);
  const index = Uint32Array.of(2, 0, 3, 1);
  const program = new Program(gpu, "gather test");
  const input = program.tensor([4, 3], "x");
  const indices = program.tensor([4], "index", "u32");
  const gathered = gatherRows(program, indices, input);
  const queue = program.tensor([6, 3], "queue");
  const slot = new StepValues(gpu, ["slot"], "queue slot");
  program.clear(queue);
  program.dispatch(queueWriteKernel, [slot.tensor, gathered, queue], 1, [4, 3, 6]);
  program.keep(gathered);
  gpu.write(input, x);
  gpu.write(indices, index);
  slot.write({ slot: 4 });
  gpu.submit(program);
  const [rows, ring] = await gpu.read(gathered, queue) as Float32Array[];
  assertClose(rows, [6, 7, 8, 0, 1, 2, 9, 10, 11, 3, 4, 5], { atol: 0, rtol: 0, label: "gather" });
  // Slots 4, 5, 0, 1 take rows 0–3 of the gathered batch; 2 and 3 stay empty.
  assertClose(ring, [9, 10, 11, 3, 4, 5, 0, 0, 0, 0, 0, 0, 6, 7, 8, 0, 1, 2], {
    atol: 0,
    rtol: 0,
    label: "ring",
  });
  program.destroy();
  slot.destroy();
});

Deno.test("the collapse monitor matches solo-learn's z_std", async () => {
  const gpu = await testGpu();
  const shape = fixture.shape("spread.z");
  const [spread] = await run(gpu, (p) => {
    const z = p.tensor(shape, "z");
    return { inputs: [z], outputs: [recordSpread(p, z)] };
  }, [f("spread.z")]);
  assertClose(spread, f("spread.value"), { atol: 1e-6, rtol: 1e-5, label: "spread" });
  // Identical rows: a collapse.
  const [collapsed] = await run(gpu, (p) => {
    const z = p.tensor([5, 4], "z");
    return { inputs: [z], outputs: [recordSpread(p, z)] };
  }, [Float32Array.from({ length: 20 }, (_, i) => (i % 4) + 1)]);
  assertClose(collapsed, [0], { atol: 1e-7, rtol: 0, label: "collapsed spread" });
});
