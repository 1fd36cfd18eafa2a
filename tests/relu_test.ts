import { Program } from "../src/gpu/gpu.ts";
import { add } from "../src/nn/add.ts";
import { reluBackward, reluForward } from "../src/nn/relu.ts";
import { assertEquals } from "./_assert.ts";
import { checkGradient, dot } from "./_gradcheck.ts";
import { assertClose, randn, testGpu } from "./_util.ts";

Deno.test("relu forward and backward match the definition and finite differences", async () => {
  const gpu = await testGpu();
  const shape = [3, 5, 7, 3]; // 315 values: not a multiple of 4 or of the workgroup size
  const n = 315;
  // Inputs kept away from the kink so finite differences do not straddle it.
  const x0 = randn(n, 1).map((v) => v + Math.sign(v) * 0.05);
  const r = randn(n, 2);
  const program = new Program(gpu, "relu test");
  const x = program.tensor(shape, "x");
  const gy = program.tensor(shape, "gy");
  const y = reluForward(program, x);
  const gx = reluBackward(program, y, gy);
  program.keep(y, gx);
  gpu.write(x, x0);
  gpu.write(gy, r);
  gpu.submit(program);
  const [yv, gxv] = await gpu.read(y, gx);
  assertClose(yv, x0.map((v) => Math.max(v, 0)), { atol: 0, rtol: 0, label: "relu output" });
  assertClose(gxv, x0.map((v, i) => (v > 0 ? r[i] : 0)), { atol: 0, rtol: 0, label: "relu grad" });
  await checkGradient(
    "relu",
    async (xs) => {
      gpu.write(x, xs);
      gpu.submit(program);
      return dot(r, await gpu.readF32(y));
    },
    x0,
    gxv,
  );
  program.destroy();
});

Deno.test("relu on f16 activations (the shader's f16 variant) matches the definition exactly", async () => {
  const gpu = await testGpu();
  const n = 315;
  const x0 = Float16Array.from(randn(n, 5)), r = Float16Array.from(randn(n, 6));
  const program = new Program(gpu, "f16 relu test");
  const x = program.tensor([n], "x", "f16");
  const gy = program.tensor([n], "gy", "f16");
  const y = reluForward(program, x);
  const gx = reluBackward(program, y, gy);
  program.keep(y, gx);
  gpu.write(x, x0);
  gpu.write(gy, r);
  gpu.submit(program);
  const [yv, gxv] = await gpu.read(y, gx);
  assertEquals([yv.constructor.name, gxv.constructor.name], ["Float16Array", "Float16Array"]);
  assertClose(yv, x0.map((v) => Math.max(v, 0)), { atol: 0, rtol: 0, label: "relu output" });
  assertClose(gxv, x0.map((v, i) => (v > 0 ? r[i] : 0)), { atol: 0, rtol: 0, label: "relu grad" });
  program.destroy();
});

Deno.test("add sums elementwise over sizes beyond one workgroup row", async () => {
  const gpu = await testGpu();
  const n = 70_001;
  const a0 = randn(n, 3);
  const b0 = randn(n, 4);
  const program = new Program(gpu, "add test");
  const a = program.tensor([n], "a");
  const b = program.tensor([n], "b");
  const y = add(program, a, b);
  program.keep(y);
  gpu.write(a, a0);
  gpu.write(b, b0);
  gpu.submit(program);
  assertClose(await gpu.readF32(y), a0.map((v, i) => v + b0[i]), { atol: 0, rtol: 1e-7 });
  program.destroy();
});
