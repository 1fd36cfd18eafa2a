// Batch norm on f16 activations (the f16 variants of its kernels, see inPrecision): plain,
// with its ReLU and with a residual join before the ReLU, in training and evaluation mode,
// through the one-pass, chunked and split (MoCo) paths, on both kernel families; and the
// ResNet's other non-convolution layers (max pool, global average pool, add), whose kernels do
// not depend on the family. Against PyTorch from the same f16 values
// (tests/fixtures/make_batch_norm_f16.py). Finite differences
// mean nothing at f16's resolution (a probe's step is lost in the rounding of the outputs): the
// same kernels in f32, which differ only in their load and store conversions, are checked by
// finite differences in tests/batch_norm_test.ts, tests/batch_norm_fused_test.ts and
// tests/pool_test.ts.
import { Program } from "../src/gpu/gpu.ts";
import { add } from "../src/nn/add.ts";
import { globalAvgPoolBackward, globalAvgPoolForward } from "../src/nn/avg_pool.ts";
import { batchNormForward } from "../src/nn/batch_norm.ts";
import { maxPoolBackward, maxPoolForward } from "../src/nn/max_pool.ts";
import { batchNormLayerCase } from "./_batch_norm_layer.ts";
import { assertEquals, assertThrows } from "./_assert.ts";
import { adapterClasses, assertClose, loadFixtureFile, testGpu } from "./_util.ts";

const fixture = await loadFixtureFile(
  new URL("./fixtures/batch_norm_f16.safetensors", import.meta.url).pathname,
);

/**
 * The f16 outputs (y, and the gradients gx and gs) are computed in f32 and converted once.
 * WGSL lets that conversion land on either neighbouring f16 value, and flush f16's subnormals:
 * within one f16 ulp (2⁻¹⁰ of the value), or 2⁻¹⁴ (the smallest normal f16) near 0. The f32
 * value itself is as close to PyTorch's as in the f32 kernels' tests (atol 2e-5, rtol 1e-4:
 * the statistics and sums are f32, of exact f16 inputs). A wrong term or a sum kept in f16 is
 * off by far more (values here are ~1).
 */
const f16Outputs = { atol: 2 ** -14 + 2e-5, rtol: 2 ** -10 + 1e-4 };
// The γ and β gradients and the running statistics stay f32: the f32 tests' tolerances.
const sums = { atol: 2e-4, rtol: 1e-4 };
const running = { atol: 1e-6, rtol: 1e-5 };

const cases = ["plain", "relu", "residual"].flatMap((kind) => [`${kind}_small`, `${kind}_chunked`]);
for (const adapterClass of adapterClasses) {
  for (const name of [...cases, "split"]) {
    for (const train of fixture.has(`${name}.eval_y`) ? [true, false] : [true]) {
      const mode = train ? "train" : "eval";
      Deno.test(`batch norm ${name.replace("_", " ")} ${mode} on f16 activations (${adapterClass} kernels) matches PyTorch`, async () => {
        const out = await batchNormLayerCase(fixture, adapterClass, name, {
          train,
          relu: !name.startsWith("plain"),
          precision: "f16",
        });
        const f = (key: string) => fixture.get(`${name}.${train ? "" : "eval_"}${key}`);
        // The activations and their gradients come back as f16, in the f16 variants' buffers.
        for (const t of [out.y, out.gx, ...(out.gs ? [out.gs] : [])]) {
          assertEquals(t.constructor.name, "Float16Array");
        }
        assertClose(out.y, f("y"), { ...f16Outputs, label: "output" });
        assertClose(out.gx, f("grad_x"), { ...f16Outputs, label: "input gradient" });
        if (out.gs) assertClose(out.gs, f("grad_s"), { ...f16Outputs, label: "residual gradient" });
        assertClose(out.grads.get("weight")!, f("grad_weight"), { ...sums, label: "γ gradient" });
        assertClose(out.grads.get("bias")!, f("grad_bias"), { ...sums, label: "β gradient" });
        for (const stat of ["running_mean", "running_var"]) {
          const expected = train ? f(`${stat}_after`) : fixture.get(`${name}.${stat}`);
          assertClose(out.values.get(stat)!, expected, { ...running, label: stat });
        }
      });
    }
  }
}

Deno.test("batch norm refuses a residual in another precision than its input", async () => {
  const gpu = await testGpu();
  const program = new Program(gpu, "mixed-precision batch norm");
  const shape = [2, 3, 4, 4];
  const x = program.tensor(shape, "x", "f16");
  const residual = program.tensor(shape, "residual");
  const channel = () => program.tensor([3], "per-channel");
  assertThrows(
    () =>
      batchNormForward(program, x, channel(), channel(), channel(), channel(), {
        train: true,
        relu: true,
        residual,
      }),
    Error,
    "Activations of types f16,f32 in one kernel",
  );
  program.destroy();
});

/** Writes the fixture's values of `keys` into new f16 tensors of a program on the test GPU. */
async function f16Inputs(name: string, keys: string[]) {
  const gpu = await testGpu();
  const program = new Program(gpu, `f16 ${name}`);
  const tensors = keys.map((key) => {
    const t = program.tensor(fixture.shape(`${name}.${key}`), key, "f16");
    gpu.write(t, Float16Array.from(fixture.get(`${name}.${key}`)));
    return t;
  });
  return { gpu, program, tensors };
}

// Max pool's output is one of its inputs, exact in f16: compared exactly. Its gradient sums up
// to 4 output gradients (3 × 3 windows, stride 2) in f32 and is rounded once.
Deno.test("max pool 3×3 stride 2 padding 1 on f16 activations matches PyTorch", async () => {
  const { gpu, program, tensors: [x, gy] } = await f16Inputs("max_pool", ["x", "r"]);
  const options = { kernel: 3, stride: 2, padding: 1 };
  const { output, saved } = maxPoolForward(program, x, options);
  const gx = maxPoolBackward(program, saved, gy, options);
  program.keep(output, gx);
  gpu.submit(program);
  const [y, gxv] = await gpu.read(output, gx);
  assertEquals([y.constructor.name, gxv.constructor.name], ["Float16Array", "Float16Array"]);
  assertClose(y, fixture.get("max_pool.y"), { atol: 0, rtol: 0, label: "output" });
  assertClose(gxv, fixture.get("max_pool.grad_x"), { ...f16Outputs, label: "input gradient" });
  program.destroy();
});

Deno.test("global average pool on f16 activations matches PyTorch, features in f16", async () => {
  const { gpu, program, tensors: [x, gy] } = await f16Inputs("avg_pool", ["x", "r"]);
  const output = globalAvgPoolForward(program, x);
  const gx = globalAvgPoolBackward(program, gy, x.shape);
  program.keep(output, gx);
  gpu.submit(program);
  const [y, gxv] = await gpu.read(output, gx);
  assertEquals([y.constructor.name, gxv.constructor.name], ["Float16Array", "Float16Array"]);
  assertClose(y, fixture.get("avg_pool.y"), { ...f16Outputs, label: "output" });
  assertClose(gxv, fixture.get("avg_pool.grad_x"), { ...f16Outputs, label: "input gradient" });
  program.destroy();
});

Deno.test("add on f16 activations matches PyTorch, and refuses mixed precisions", async () => {
  const { gpu, program, tensors: [a, b] } = await f16Inputs("add", ["a", "b"]);
  const f32 = program.tensor(b.shape, "f32 operand");
  assertThrows(() => add(program, a, f32), Error, "Activations of types f16,f32 in one kernel");
  const y = add(program, a, b);
  program.keep(y);
  gpu.submit(program);
  const [yv] = await gpu.read(y);
  assertEquals(yv.constructor.name, "Float16Array");
  assertClose(yv, fixture.get("add.y"), { ...f16Outputs, label: "sum" });
  program.destroy();
});
