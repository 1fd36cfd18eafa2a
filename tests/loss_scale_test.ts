// Dynamic loss scaling on the GPU (src/optim/loss_scale.ts): the scaled parameters' gradients
// are divided by the scale, a step with a gradient that is not finite changes no parameter
// and no optimizer state and halves the scale, and good steps in a row double it — with no
// read by the host in between.
import { Program } from "../src/gpu/gpu.ts";
import { Parameter } from "../src/nn/module.ts";
import { ParameterBlock } from "../src/nn/parameters.ts";
import { LossScale } from "../src/optim/loss_scale.ts";
import { createOptimizer } from "../src/optim/optimizer.ts";
import { assertEquals, assertThrows } from "./_assert.ts";
import { assertClose, testGpu } from "./_util.ts";

const zeros = (n: number) => new Float32Array(n);

Deno.test("loss scaling: unscaled gradients, an overflowing step skipped, the scale halved and grown", async () => {
  const gpu = await testGpu();
  const entries = [
    ["backbone.a", new Parameter([3], "weight", zeros)],
    ["backbone.b", new Parameter([2], "bias", zeros)],
    ["head.c", new Parameter([2], "weight", zeros)],
  ] as const;
  const block = new ParameterBlock(gpu, entries.map(([n, p]) => [n, p]));
  block.initialize(() => 0);
  const optimizer = createOptimizer(gpu, block, { name: "sgd", momentum: 0.5 });
  const scale = new LossScale(gpu, block, "backbone.", { initialScale: 8, growthInterval: 2 });
  const program = new Program(gpu, "loss scale test");
  scale.recordUnscale(program, block.grads);
  scale.recordGuarded(program, () => optimizer.record(program));
  // Each step's gradients: the backbone's scaled by the loss scale, the head's not.
  const step = async (backbone: number[], head: number[]) => {
    const grads = new Float32Array(block.grads.size);
    const [a, b, c] = block.segments;
    grads.set(backbone.slice(0, 3), a.offset);
    grads.set(backbone.slice(3), b.offset);
    grads.set(head, c.offset);
    gpu.write(block.grads, grads);
    optimizer.prepare(1, 1);
    gpu.submit(program);
    const values = await block.read();
    const [s, good] = await gpu.read(scale.scale, scale.goodSteps);
    return {
      a: [...values.get("backbone.a")!],
      b: [...values.get("backbone.b")!],
      c: [...values.get("head.c")!],
      scale: s[0],
      good: good[0],
    };
  };
  // Scale 8: the backbone's gradients 8, 16, 24 and 8, 8 are 1, 2, 3 and 1, 1.
  assertEquals(await step([8, 16, 24, 8, 8], [1, 2]), {
    a: [-1, -2, -3],
    b: [-1, -1],
    c: [-1, -2],
    scale: 8,
    good: 1,
  });
  // An inf: nothing moves (momentum included), the scale halves.
  assertEquals(await step([8, Infinity, 8, 8, 8], [1, 1]), {
    a: [-1, -2, -3],
    b: [-1, -1],
    c: [-1, -2],
    scale: 4,
    good: 0,
  });
  // A NaN likewise.
  assertEquals((await step([NaN, 0, 0, 0, 0], [0, 0])).scale, 2);
  // Two good steps at scale 2 double it; momentum 0.5 carries the first step's buffer.
  const third = await step([2, 2, 2, 2, 2], [0, 0]);
  assertEquals([third.a, third.scale, third.good], [[-2.5, -4, -5.5], 2, 1]);
  const fourth = await step([0, 0, 0, 0, 0], [0, 0]);
  assertEquals([fourth.scale, fourth.good], [4, 0]);
  assertEquals(scale.state.size, 2);
  program.destroy();
  scale.destroy();
  optimizer.destroy();
  block.destroy();
});

/**
 * PyTorch's AdamW over one parameter in float64, from its step count `t` on (torch.optim's
 * single-tensor update): returns the parameter after each gradient of `grads`.
 */
function adamWSteps(p: number[], grads: number[][], t: number, lr: number, wd: number) {
  const [beta1, beta2, eps] = [0.9, 0.999, 1e-8];
  const m = p.map(() => 0);
  const v = p.map(() => 0);
  return grads.map((g) => {
    t++;
    p = p.map((x, i) => {
      m[i] = beta1 * m[i] + (1 - beta1) * g[i];
      v[i] = beta2 * v[i] + (1 - beta2) * g[i] ** 2;
      const denominator = Math.sqrt(v[i]) / Math.sqrt(1 - beta2 ** t) + eps;
      return x * (1 - lr * wd) - (lr / (1 - beta1 ** t)) * (m[i] / denominator);
    });
    return p;
  });
}

Deno.test("Adam's step count skips an overflowing step: the next update is PyTorch's first (t = 1)", async () => {
  const gpu = await testGpu();
  const block = new ParameterBlock(gpu, [
    ["backbone.a", new Parameter([4], "weight", zeros)],
    ["head.c", new Parameter([3], "weight", zeros)],
  ]);
  // Small values, so that each parameter after a step is mostly its update, to f32's precision.
  const start = [[1e-3, -2e-3, 3e-4, 0], [-1e-3, 5e-4, 2e-3]].map((p) => p.map(Math.fround));
  block.load(
    new Map([["backbone.a", Float32Array.from(start[0])], ["head.c", Float32Array.from(start[1])]]),
    "test",
  );
  const [lr, wd] = [1e-2, 0.1];
  const optimizer = createOptimizer(gpu, block, { name: "adamw", weightDecay: wd });
  const scale = new LossScale(gpu, block, "backbone.", { initialScale: 4 });
  const program = new Program(gpu, "adam skip test");
  scale.recordUnscale(program, block.grads);
  scale.recordGuarded(program, () => optimizer.record(program));
  const grads = [[[0.3, -1.5, 0.02, 2], [0.7, -0.01, 1]], [[-0.4, 0.9, 0.05, -1], [0.2, 0.3, -2]]];
  const step = async (hostStep: number, [a, c]: number[][]) => {
    const flat = new Float32Array(block.grads.size);
    flat.set(a.map((g) => 4 * g), block.segments[0].offset);
    flat.set(c, block.segments[1].offset);
    gpu.write(block.grads, flat);
    optimizer.prepare(hostStep, lr);
    gpu.submit(program);
    const values = await block.read();
    const [count] = await gpu.read(optimizer.state.get("step")!);
    return { a: values.get("backbone.a")!, c: values.get("head.c")!, count: [...count] };
  };
  // Steps 1 and 2 overflow: nothing moves, no parameter's count advances.
  for (const hostStep of [1, 2]) {
    const skipped = await step(hostStep, [[1, Infinity, 0, 0], [0, 0, 0]]);
    assertEquals([[...skipped.a], [...skipped.c], skipped.count], [...start, [0, 0]]);
  }
  // Steps 3 and 4 are PyTorch's first and second, whose step counts the skipped ones left out.
  const expected = start.map((p, s) => adamWSteps(p, grads.map((g) => g[s]), 0, lr, wd));
  for (const k of [0, 1]) {
    const applied = await step(3 + k, grads[k]);
    assertEquals(applied.count, [k + 1, k + 1]);
    // The kernel's own bias corrections in f32: within 1e-6 of float64's.
    const tolerance = { atol: 1e-9, rtol: 2e-6 };
    assertClose(applied.a, expected[0][k], { ...tolerance, label: `a after step ${3 + k}` });
    assertClose(applied.c, expected[1][k], { ...tolerance, label: `c after step ${3 + k}` });
  }
  program.destroy();
  scale.destroy();
  optimizer.destroy();
  block.destroy();
});

Deno.test("loss scaling refuses parameters it cannot scale as one range", async () => {
  const gpu = await testGpu();
  const block = new ParameterBlock(gpu, [
    ["backbone.a", new Parameter([3], "weight", zeros)],
    ["head.c", new Parameter([2], "weight", zeros)],
    ["backbone.b", new Parameter([2], "bias", zeros)],
  ]);
  assertThrows(() => new LossScale(gpu, block, "backbone."), Error, "do not lie together");
  assertThrows(() => new LossScale(gpu, block, "encoder."), Error, "No parameter");
  block.destroy();
});
