// A method's state is complete: two steps, everything a checkpoint holds captured (the
// trainable block, every state block and tensor — DINO's teacher and centre, SwAV's queue —
// and the optimizer's state), a fresh run loaded from it and two more steps give bit for bit
// what four uninterrupted steps give. The resume falls where the first epoch ends, so the
// frozen layer is released, DINO's teacher temperature moves on and SwAV's queue is first
// used after it.
import { augmentPreset } from "../src/data/augment.ts";
import { Program } from "../src/gpu/gpu.ts";
import type { Gpu, HostValues } from "../src/gpu/gpu.ts";
import type { Tensor } from "../src/gpu/tensor.ts";
import { dino } from "../src/methods/dino.ts";
import { type Method, type MethodRun, recordTrainingStep } from "../src/methods/method.ts";
import { rotation } from "../src/methods/rotation.ts";
import { swav } from "../src/methods/swav.ts";
import { ParameterBlock } from "../src/nn/parameters.ts";
import { createOptimizer } from "../src/optim/optimizer.ts";
import { assertClose, randn, testGpu } from "./_util.ts";

const batch = 4;
const stepsPerEpoch = 2;

/** Every tensor of a run and its optimizer, by name, read back. */
async function capture(
  gpu: Gpu,
  run: MethodRun,
  optimizer: { state: ReadonlyMap<string, Tensor> },
) {
  const tensors = new Map<string, Tensor>([
    ["trainable.values", run.trainable.values],
    ["trainable.stats", run.trainable.stats],
  ]);
  for (const [name, entry] of run.state) {
    if (entry instanceof ParameterBlock) {
      tensors.set(`${name}.values`, entry.values);
      tensors.set(`${name}.stats`, entry.stats);
    } else {
      tensors.set(name, entry);
    }
  }
  for (const [name, tensor] of optimizer.state) tensors.set(`optimizer.${name}`, tensor);
  const values = await gpu.read(...tensors.values());
  return { tensors, values: new Map([...tensors.keys()].map((k, i) => [k, values[i].slice()])) };
}

/** Builds a run with SGD and runs steps [first, last) on views made from the step number. */
async function train<O extends object>(
  gpu: Gpu,
  method: Method<O>,
  options: Record<string, unknown>,
  first: number,
  last: number,
  resumeFrom?: Map<string, HostValues>,
) {
  const checked = method.validate(options, batch);
  const groups = method.views(checked, augmentPreset("simclr-seed", 8));
  const run = method.build(
    {
      gpu,
      backbone: { name: "resnet18", stem: "cifar", width: 4 },
      batchSize: batch,
      totalSteps: 4,
      stepsPerEpoch,
      seed: 3,
    },
    checked,
  );
  const optimizer = createOptimizer(gpu, run.trainable, {
    name: "sgd",
    momentum: 0.9,
    weightDecay: 1e-3,
  });
  if (resumeFrom) {
    const { tensors } = await capture(gpu, run, optimizer);
    for (const [name, tensor] of tensors) gpu.write(tensor, resumeFrom.get(name)!);
  }
  const program = new Program(gpu, `${method.name} resume test`);
  const views = groups.map(({ count, augment }, i) =>
    program.tensor([count * batch, 3, augment.height, augment.width], `views ${i}`)
  );
  const labels = program.tensor([batch], "labels", "i32");
  recordTrainingStep(program, run, optimizer, { views, labels });
  for (let step = first; step < last; step++) {
    views.forEach((v, i) => gpu.write(v, randn(v.size, 100 * step + i)));
    run.prepare(step);
    optimizer.freeze(run.frozen?.(step) ?? []);
    optimizer.prepare(step + 1, 0.05);
    gpu.submit(program);
  }
  const captured = await capture(gpu, run, optimizer);
  program.destroy();
  optimizer.destroy();
  run.destroy();
  return captured.values;
}

// deno-lint-ignore no-explicit-any
const cases: [string, Method<any>, Record<string, unknown>][] = [
  ["DINO", dino, {
    outputDim: 24,
    hiddenDim: 16,
    bottleneckDim: 8,
    warmupTeacherEpochs: 2,
    localCrops: 2,
    clipGrad: 0.5,
  }],
  ["SwAV", swav, {
    projectionDim: 8,
    hiddenDim: 16,
    prototypes: 12,
    queueSize: 2 * batch,
    queueStartEpoch: 0,
    localCrops: 2,
  }],
  ["rotation prediction", rotation, {}],
];

for (const [title, method, options] of cases) {
  Deno.test(`${title}: resuming from captured state after the first epoch is bit-identical`, async () => {
    const gpu = await testGpu();
    const whole = await train(gpu, method, options, 0, 4);
    const saved = await train(gpu, method, options, 0, 2);
    const resumed = await train(gpu, method, options, 2, 4, saved);
    for (const [name, values] of whole) {
      assertClose(resumed.get(name)!, values, { atol: 0, rtol: 0, label: name });
    }
    const before = saved.get("trainable.values")!;
    if (whole.get("trainable.values")!.every((v, i) => v === before[i])) {
      throw new Error("the last two steps changed nothing");
    }
  });
}
