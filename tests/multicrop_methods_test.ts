// DINO's, SwAV's and rotation prediction's settings: bad ones refused with one-line
// SelfsupErrors naming the flag, local crops refused on the fixed-size ViT (which trains on
// the global crops alone), the view groups each method asks the loader for, and the
// schedules of per-step values.
import { augmentPreset } from "../src/data/augment.ts";
import { SelfsupError } from "../src/errors.ts";
import { dino, dinoTeacherTemperature } from "../src/methods/dino.ts";
import { methodNamed } from "../src/methods/registry.ts";
import { rotation } from "../src/methods/rotation.ts";
import { swav } from "../src/methods/swav.ts";
import { Program } from "../src/gpu/gpu.ts";
import type { Tensor } from "../src/gpu/tensor.ts";
import { randn, testGpu } from "./_util.ts";

function refuses(run: () => unknown, message: string): void {
  try {
    run();
  } catch (error) {
    if (!(error instanceof SelfsupError) || error.message !== message) {
      throw new Error(`expected SelfsupError "${message}", got ${error}`);
    }
    return;
  }
  throw new Error(`accepted what should fail with "${message}"`);
}

Deno.test("DINO, SwAV and rotation prediction are registered methods", () => {
  for (const name of ["dino", "swav", "rotation"]) {
    if (methodNamed(name).name !== name) throw new Error(`${name} is not registered`);
  }
});

Deno.test("bad DINO and SwAV settings are refused naming the flag", () => {
  refuses(
    () => dino.validate({ localCrops: -1 }, 8),
    "--local-crops must be a whole number ≥ 0, got -1",
  );
  refuses(() => dino.validate({ clipGrad: -3 }, 8), "--clip-grad must be a number ≥ 0, got -3");
  refuses(
    () => dino.validate({ momentum: 0.999, finalMomentum: 0.99 }, 8),
    "--final-momentum (0.99) must be at least --momentum (0.999)",
  );
  refuses(() => dino.validate({ centre: 1 }, 8), "DINO has no option centre");
  refuses(
    () => swav.validate({ queueSize: 100 }, 64),
    "--queue-size 100 must be a multiple of the 64 embeddings each global crop adds a step " +
      "(--batch-size)",
  );
  refuses(
    () => swav.validate({ sinkhornIterations: 0 }, 64),
    "--sinkhorn-iterations must be a whole number ≥ 1, got 0",
  );
  // Zero is a setting, not an error, where the flag says so.
  const checked = dino.validate({ localCrops: 0, clipGrad: 0, freezeLastLayerEpochs: 0 }, 8);
  if (checked.localCrops !== 0 || checked.clipGrad !== 0) throw new Error("zero refused");
  rotation.validate({}, 8);
});

Deno.test("the ViT takes DINO's and SwAV's global crops but refuses local ones", async () => {
  const gpu = await testGpu();
  const vit = { name: "vit", imageSize: 8, patchSize: 4, dim: 8, depth: 1, heads: 2 } as const;
  const context = { gpu, backbone: vit, batchSize: 4, totalSteps: 4, stepsPerEpoch: 2, seed: 0 };
  refuses(
    () => dino.build(context, dino.validate({ localCrops: 2 }, 4)),
    "DINO's local crops need a backbone that takes any image size (the ResNet); the ViT " +
      "takes 8×8 only: use --local-crops 0",
  );
  refuses(
    () => swav.build(context, swav.validate({}, 4)),
    "SwAV's local crops need a backbone that takes any image size (the ResNet); the ViT " +
      "takes 8×8 only: use --local-crops 0",
  );
  // Global crops alone train: a step of each runs to a finite loss.
  const runs = [
    dino.build(context, dino.validate({ outputDim: 16, hiddenDim: 8, localCrops: 0 }, 4)),
    swav.build(context, swav.validate({ prototypes: 16, hiddenDim: 8, localCrops: 0 }, 4)),
  ];
  for (const run of runs) {
    const program = new Program(gpu, "ViT global crops");
    const views = [0, 1].map((i) => program.tensor([4, 3, 8, 8], `global crop ${i}`));
    const { loss } = run.record(program, { views, labels: program.tensor([4], "labels", "i32") });
    views.forEach((v, i) => gpu.write(v, randn(v.size, i + 1)));
    run.prepare(0);
    gpu.submit(program);
    const [value] = await gpu.readF32(loss);
    if (!Number.isFinite(value)) throw new Error(`a ViT step's loss is ${value}`);
    program.destroy();
    run.destroy();
  }
});

Deno.test("DINO's collapse hint names a teacher a quarter of the run's temperature", async () => {
  const gpu = await testGpu();
  const vit = { name: "vit", imageSize: 8, patchSize: 4, dim: 8, depth: 1, heads: 2 } as const;
  const context = { gpu, backbone: vit, batchSize: 4, totalSteps: 4, stepsPerEpoch: 2, seed: 0 };
  for (const [teacherTemperature, sharper] of [[0.07, "0.0175"], [0.01, "0.0025"]]) {
    const run = dino.build(
      context,
      dino.validate({ outputDim: 16, hiddenDim: 8, localCrops: 0, teacherTemperature }, 4),
    );
    const hint = run.collapseHint ?? "";
    if (!hint.includes(`--teacher-temperature ${sharper})`)) throw new Error(`hint: ${hint}`);
    run.destroy();
  }
});

Deno.test("multi-crop views: two global crops, then the local ones", () => {
  const base = augmentPreset("simclr-seed", 32);
  for (const method of [dino, swav]) {
    const groups = method.views(method.validate({ localCrops: 3 }, 8) as never, base);
    const shape = groups.map((g) => `${g.count}×${g.augment.height}×${g.augment.width}`).join();
    if (shape !== "1×32×32,1×32×32,3×16×16") throw new Error(`${method.name}: ${shape}`);
    const alone = method.views(method.validate({ localCrops: 0 }, 8) as never, base);
    if (alone.length !== 2) throw new Error(`${method.name} without local crops: ${alone.length}`);
  }
  // SwAV's crop scales, DINO's own recipe (its first global crop always blurred).
  const [global, , local] = swav.views(swav.validate({ localSize: 12 }, 8), base);
  if (
    global.augment.crop?.scale.join() !== "0.14,1" || local.augment.crop?.scale.join() !==
      "0.05,0.14" ||
    local.augment.height !== 12
  ) {
    throw new Error(`SwAV's crops: ${JSON.stringify([global, local])}`);
  }
  const [first] = dino.views(dino.validate({}, 8), base);
  if (first.augment.blur?.p !== 1 || first.augment.crop?.scale.join() !== "0.4,1") {
    throw new Error(`DINO's first global crop: ${JSON.stringify(first)}`);
  }
});

Deno.test("DINO's teacher temperature warms up linearly over its epochs, as np.linspace", () => {
  const options = dino.validate({ warmupTeacherEpochs: 3 }, 8);
  const temperatures = [0, 1, 2, 3, 10].map((e) => dinoTeacherTemperature(e, options));
  const expected = [0.04, 0.055, 0.07, 0.07, 0.07];
  temperatures.forEach((t, i) => {
    if (Math.abs(t - expected[i]) > 1e-12) throw new Error(`epoch ${i}: ${temperatures}`);
  });
  const fixed = dino.validate({}, 8);
  if (dinoTeacherTemperature(0, fixed) !== 0.07) throw new Error("no warm-up: not fixed");
  const one = dino.validate({ warmupTeacherEpochs: 1 }, 8);
  if (dinoTeacherTemperature(0, one) !== 0.04 || dinoTeacherTemperature(1, one) !== 0.07) {
    throw new Error("a one-epoch warm-up is np.linspace(a, b, 1) = [a]");
  }
});

Deno.test("frozen layers and the collapse loss follow the epochs and K", async () => {
  const gpu = await testGpu();
  const context = {
    gpu,
    backbone: { name: "resnet18", stem: "cifar", width: 4 } as const,
    batchSize: 4,
    totalSteps: 40,
    stepsPerEpoch: 10,
    seed: 0,
  };
  const d = dino.build(
    context,
    dino.validate({ outputDim: 16, hiddenDim: 8, bottleneckDim: 8 }, 4),
  );
  const s = swav.build(
    context,
    swav.validate({ prototypes: 12, hiddenDim: 8, freezePrototypesEpochs: 2 }, 4),
  );
  // With its magnitude trained, DINO's last layer is frozen whole, as cancel_gradients_last_layer.
  const unnormed = dino.build(
    context,
    dino.validate({ outputDim: 16, hiddenDim: 8, bottleneckDim: 8, normLastLayer: false }, 4),
  );
  const frozen = (run: typeof d, step: number) => (run.frozen?.(step) ?? []).join();
  if (frozen(d, 9) !== "head.last_layer.weight_v" || frozen(d, 10) !== "") {
    throw new Error(`DINO's frozen layer at 9, 10: ${frozen(d, 9)} / ${frozen(d, 10)}`);
  }
  const whole = "head.last_layer.weight_g,head.last_layer.weight_v";
  if (frozen(unnormed, 9) !== whole || frozen(unnormed, 10) !== "") {
    throw new Error(`DINO's frozen magnitude and direction: ${frozen(unnormed, 9)}`);
  }
  if (frozen(s, 19) !== "prototypes.weight" || frozen(s, 20) !== "") {
    throw new Error(`SwAV's frozen prototypes at 19, 20: ${frozen(s, 19)} / ${frozen(s, 20)}`);
  }
  if (d.collapseLoss !== Math.log(16) || s.collapseLoss !== Math.log(12)) {
    throw new Error(`collapse losses ${d.collapseLoss}, ${s.collapseLoss}`);
  }
  d.destroy();
  unnormed.destroy();
  s.destroy();
});

Deno.test("SwAV's queue takes part in the codes only once full", async () => {
  const gpu = await testGpu();
  const batch = 4;
  const context = {
    gpu,
    backbone: { name: "resnet18", stem: "cifar", width: 4 } as const,
    batchSize: batch,
    totalSteps: 40,
    stepsPerEpoch: 2,
    seed: 0,
  };
  const small = { prototypes: 12, hiddenDim: 8, projectionDim: 8, localCrops: 1, localSize: 4 };
  /** The loss of one step after `step` updates, the queue (if any) full of random rows. */
  const loss = async (queueSize: number, step: number) => {
    const options = swav.validate({ ...small, queueSize, queueStartEpoch: 1 }, batch);
    const run = swav.build(context, options);
    for (const [, queue] of run.state) {
      gpu.write(queue as Tensor, randn((queue as Tensor).size, 9));
    }
    const program = new Program(gpu, "SwAV queue test");
    const views = swav.views(options, augmentPreset("simclr-seed", 8)).map((
      { count, augment },
      i,
    ) => program.tensor([count * batch, 3, augment.height, augment.width], `views ${i}`));
    program.clear(run.trainable.grads);
    const out = run.record(program, { views, labels: program.tensor([batch], "labels", "i32") });
    views.forEach((v, i) => gpu.write(v, randn(v.size, i + 1)));
    run.prepare(step);
    gpu.submit(program);
    const [value] = await gpu.readF32(out.loss);
    program.destroy();
    run.destroy();
    return value;
  };
  const alone = await loss(0, 3);
  // From epoch 1 (step 2) the queue of 2 steps' rows fills; it is full at step 4.
  const filling = await loss(2 * batch, 3);
  const full = await loss(2 * batch, 4);
  if (Math.abs(filling - alone) > 1e-6 * Math.abs(alone)) {
    throw new Error(`a filling queue changed the loss: ${filling} vs ${alone} without one`);
  }
  if (Math.abs(full - alone) < 1e-4 * Math.abs(alone)) {
    throw new Error(`a full queue left the loss at ${full}`);
  }
});
