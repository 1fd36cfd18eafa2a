// The FLOPs a step's layers count, and the per-kernel profile of a step (timestamp queries).
import { resnet18Shapes } from "../src/bench/conv.ts";
import { Program } from "../src/gpu/gpu.ts";
import { profileProgram } from "../src/gpu/profile.ts";
import { recordSimclrStep, SimclrModel } from "../src/methods/simclr.ts";
import { conv2dOutputSize } from "../src/nn/conv2d.ts";
import { ParameterBlock } from "../src/nn/parameters.ts";
import { assertEquals } from "./_assert.ts";
import { adapterClasses, familyGpu, randn } from "./_util.ts";

/**
 * The FLOPs of a SimCLR step on 2·batch views, written out: every convolution's forward,
 * backward-input (not the first layer's: nothing needs the images' gradient) and
 * backward-weight, each as costly as the forward, and the head's two linear layers, three
 * passes each.
 */
function simclrStepFlops(stem: "cifar" | "imagenet", width: number, batch: number): number {
  const n = 2 * batch;
  let flops = 0;
  for (const s of resnet18Shapes({ stem, width, batch: n, imageSize: 32 })) {
    const out = conv2dOutputSize(s.size, s.k, s.stride, s.padding);
    const forward = 2 * n * s.cout * out * out * s.cin * s.k * s.k;
    flops += s.count * forward * (s.name.startsWith("conv1") ? 2 : 3);
  }
  const features = 8 * width;
  return flops + 3 * 2 * n * features * features + 3 * 2 * n * features * 16;
}

for (const adapterClass of adapterClasses) {
  for (const stem of ["cifar", "imagenet"] as const) {
    Deno.test(`a SimCLR step (${stem} stem, ${adapterClass} kernels) counts its FLOPs layer by layer; the profile times every dispatch`, async () => {
      const gpu = await familyGpu(adapterClass);
      const model = new SimclrModel({
        backbone: { name: "resnet18", stem, width: 4 },
        projectionDim: 16,
      });
      const block = new ParameterBlock(gpu, model.entries());
      const program = new Program(gpu, "step");
      const views = program.tensor([8, 3, 32, 32], "views");
      program.clear(block.grads);
      recordSimclrStep(program, model, views, 0.5);
      gpu.write(views, randn(views.size, 1));
      assertEquals(program.flops, simclrStepFlops(stem, 4, 4), "FLOPs");
      const profile = await profileProgram(gpu, program, () => {}, 2);
      assertEquals(
        profile.reduce((sum, k) => sum + k.calls, 0),
        program.dispatchCount,
        "every dispatch timed",
      );
      const share = profile.reduce((sum, k) => sum + k.share, 0);
      if (Math.abs(share - 1) > 1e-9) throw new Error(`shares sum to ${share}`);
      for (const k of profile) {
        if (!(k.milliseconds > 0)) throw new Error(`${k.name} took ${k.milliseconds} ms`);
      }
      // The FLOPs are on the kernels that do the matrix work, and add up to the program's.
      const counted = profile.reduce((sum, k) => sum + k.gflop, 0);
      if (Math.abs(counted * 1e9 - program.flops) > 1e-6 * program.flops) {
        throw new Error(`the profile counts ${counted} GFLOP, the program ${program.flops / 1e9}`);
      }
      assertEquals(
        profile.filter((k) => k.gflop > 0).every((k) => /^(conv2d|linear)_/.test(k.name)),
        true,
        "FLOPs only on convolution and linear kernels",
      );
      const sorted = profile.every((k, i) =>
        i === 0 || profile[i - 1].milliseconds >= k.milliseconds
      );
      assertEquals(sorted, true, "slowest first");
      program.destroy();
      block.destroy();
    });
  }
}
