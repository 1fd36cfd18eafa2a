// Multi-crop on the network: a ResNet-18 run on two crop sizes in one program, each size its
// own forward pass (global average pooling makes the network size-agnostic), must accumulate
// exactly the parameter gradients of the two runs made separately, and leave the running
// statistics where the two runs one after the other leave them.
import { type Gpu, Program } from "../src/gpu/gpu.ts";
import { Random } from "../src/data/random.ts";
import { ParameterBlock } from "../src/nn/parameters.ts";
import { ResNet18 } from "../src/nn/resnet.ts";
import { adapterClasses, assertClose, familyGpu, randn } from "./_util.ts";

/** The crop sizes: global crops of 32×32 and local crops of 16×16, odd batch sizes. */
const crops = [{ images: 3, side: 32 }, { images: 5, side: 16 }] as const;

/**
 * Records, for the given crops, forward passes in order and then backward passes in reverse
 * order, as a multi-crop method does; zeroes the gradients first.
 */
function record(gpu: Gpu, net: ResNet18, block: ParameterBlock, which: readonly number[]) {
  const program = new Program(gpu, `multi-crop ${which}`);
  program.clear(block.grads);
  const runs = which.map((c) => {
    const { images, side } = crops[c];
    const input = program.tensor([images, 3, side, side], `crops ${c}`);
    const gradFeatures = program.tensor([images, net.featureDim], `feature gradient ${c}`);
    const forward = net.forward(program, input, { train: true, inputGrad: false });
    program.keep(forward.output);
    return { c, input, gradFeatures, forward };
  });
  for (const run of [...runs].reverse()) run.forward.backward(program, run.gradFeatures);
  for (const { c, input, gradFeatures } of runs) {
    const { images, side } = crops[c];
    gpu.write(input, randn(images * 3 * side * side, 10 + c));
    gpu.write(gradFeatures, randn(images * net.featureDim, 20 + c));
  }
  return { program, features: runs.map((r) => r.forward.output) };
}

for (const adapterClass of adapterClasses) {
  Deno.test(
    `ResNet-18 on 32×32 and 16×16 crops in one program sums both runs' gradients ` +
      `(${adapterClass} kernels)`,
    async () => {
      const gpu = await familyGpu(adapterClass);
      const net = new ResNet18({ stem: "cifar", width: 4 });
      const block = new ParameterBlock(gpu, net.entries());
      const reset = () => {
        const rng = new Random(7);
        block.initialize(() => rng.float());
      };

      reset();
      const both = record(gpu, net, block, [0, 1]);
      gpu.submit(both.program);
      const bothFeatures = await gpu.read(...both.features);
      const bothGrads = await block.readGrads();
      const [, bothStats] = await gpu.read(block.values, block.stats);

      reset();
      const separate = [];
      for (const c of [0, 1]) {
        const run = record(gpu, net, block, [c]);
        gpu.submit(run.program);
        const [features] = await gpu.read(...run.features);
        separate.push({ features, grads: await block.readGrads() });
        run.program.destroy();
      }
      const [, separateStats] = await gpu.read(block.values, block.stats);

      separate.forEach(({ features }, c) => {
        assertClose(bothFeatures[c], features, { atol: 0, rtol: 0, label: `features ${c}` });
      });
      for (const [name, grad] of bothGrads) {
        const [a, b] = separate.map((s) => s.grads.get(name)!);
        const sum = a.map((v, k) => v + b[k]);
        const scale = sum.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        assertClose(grad, sum, { atol: 1e-6 * scale, rtol: 1e-5, label: `grad.${name}` });
      }
      assertClose(bothStats, separateStats, { atol: 0, rtol: 0, label: "running statistics" });
      both.program.destroy();
      block.destroy();
    },
  );
}
