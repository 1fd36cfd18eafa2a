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
import { testGpu } from "./_util.ts";

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
