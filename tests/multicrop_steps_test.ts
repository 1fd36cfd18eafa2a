// A whole first training step of DINO, SwAV and rotation prediction on a width-16 ResNet-18
// against PyTorch (tests/fixtures/make_multicrop_steps.py): two global crops of 16×16 and two
// local crops of 8×8 of each image; the loss, every parameter's gradient (after DINO's
// clipping), the parameters after an SGD step that skips DINO's frozen last layer (or, a
// second DINO case, trains it with its magnitude), DINO's
// teacher after its moving average and its centre after the update, SwAV's prototypes
// updated and normalised again, its queue after the step's embeddings entered it, and every
// running statistic.
import type { Tensor } from "../src/gpu/tensor.ts";
import { dino } from "../src/methods/dino.ts";
import { rotation } from "../src/methods/rotation.ts";
import { swav } from "../src/methods/swav.ts";
import type { ParameterBlock } from "../src/nn/parameters.ts";
import { compare, compareLoss, firstStep, initialize, load, prefixed } from "./_method_step.ts";
import { assertClose, norm, testGpu } from "./_util.ts";

const all = { strip: "", take: () => true };

function assertState(
  actual: Float32Array,
  fixture: Awaited<ReturnType<typeof load>>,
  name: string,
) {
  assertClose(actual, fixture.get(name), {
    atol: 4 * fixture.get(`${name}_f32err`)[0] + 1e-6,
    rtol: 0,
    label: name,
  });
}

/**
 * A DINO step on the fixture `name`'s views and initial values, at the fixture's epoch (10
 * steps an epoch in `firstStep`), with the last layer's magnitude fixed or trained as the
 * fixture's, on a width-16 ResNet-18 in `precision`.
 */
async function dinoStepOf(name: string, precision: "f32" | "f16" = "f32") {
  const gpu = await testGpu();
  const fixture = await load(name);
  const meta = fixture.meta as Record<string, number>;
  const step = await firstStep(
    gpu,
    dino,
    {
      outputDim: meta.outputDim,
      hiddenDim: meta.hiddenDim,
      bottleneckDim: meta.bottleneckDim,
      studentTemperature: meta.studentTemperature,
      teacherTemperature: meta.teacherTemperature,
      warmupTeacherTemperature: meta.warmupTeacherTemperature,
      warmupTeacherEpochs: meta.warmupTeacherEpochs,
      centerMomentum: meta.centerMomentum,
      momentum: meta.momentum,
      finalMomentum: meta.momentum,
      clipGrad: meta.clipGrad,
      freezeLastLayerEpochs: 1,
      normLastLayer: fixture.meta.normLastLayer,
      localCrops: meta.localCrops,
    },
    fixture,
    (run) => {
      initialize(run.trainable, [all]);
      initialize(run.state.get("teacher") as ParameterBlock, [all]);
      gpu.write(
        run.state.get("center") as Tensor,
        fixture.get("center") as Float32Array<ArrayBuffer>,
      );
    },
    meta.epoch * 10,
    { name: "resnet18", stem: "cifar", width: 16, precision },
  );
  return { gpu, fixture, step };
}

/** A DINO step against the fixture `name`. */
async function dinoStep(name: string) {
  const { gpu, fixture, step } = await dinoStepOf(name);
  compareLoss(fixture, step.loss);
  compare(fixture, "grad", step.grads);
  compare(fixture, "after", prefixed("student", await step.run.trainable.read()));
  const teacher = step.run.state.get("teacher") as ParameterBlock;
  compare(fixture, "after", prefixed("teacher", await teacher.read()));
  const [center] = await gpu.read(step.run.state.get("center") as Tensor);
  assertState(center as Float32Array, fixture, "center_after");
  step.destroy();
}

Deno.test("DINO first step (clipped, last layer frozen, centre) matches PyTorch", async () => {
  await dinoStep("dino_step1");
});

Deno.test("DINO step with a trained last-layer magnitude (norm_last_layer False, epoch 1) matches PyTorch", async () => {
  await dinoStep("dino_step1_unnormed");
});

// The fixture's clipping norm lies between its gradients' norms, so that some are clipped.
// An f16 backbone's gradients carry the loss scale (2¹⁶) until it is divided out: clipped
// before that, each backbone gradient the clipping reaches would end 2¹⁶ times too small.
// f16 rounding moves these gradients at a random initialisation by up to ~20% (see
// precision_test.ts), so each backbone parameter's gradient norm is held to 50% of PyTorch's.
Deno.test("DINO's step with an f16 backbone clips the gradients with the loss scale divided out", async () => {
  const { fixture, step } = await dinoStepOf("dino_step1", "f16");
  const ratios: string[] = [];
  for (const [name, values] of step.grads) {
    if (!name.startsWith("backbone.")) continue;
    const expected = fixture.has(`grad.${name}`)
      ? norm(fixture.get(`grad.${name}`))
      : fixture.get(`grad_norm.${name}`)[0];
    const ratio = norm(values) / expected;
    if (!(Math.abs(ratio - 1) <= 0.5)) ratios.push(`${name}: ${ratio}`);
  }
  step.destroy();
  if (ratios.length > 0) throw new Error(`gradient norms against PyTorch's: ${ratios.join(", ")}`);
});

Deno.test("SwAV first step (full queue, prototypes renormalised) matches PyTorch", async () => {
  const gpu = await testGpu();
  const fixture = await load("swav_step1");
  const meta = fixture.meta as Record<string, number>;
  const n = meta.batch;
  const q = meta.queueSize;
  const d = meta.projectionDim;
  // PyTorch's queue shifts, newest rows first; selfsup's is a ring whose next slot (0 after
  // q / n steps) holds the oldest rows: the same rows with the blocks of n in reverse order.
  const initial = fixture.get("queue");
  const ring = (i: number) => {
    const queue = initial.subarray(i * q * d, (i + 1) * q * d);
    const out = new Float32Array(q * d);
    for (let b = 0; b < q / n; b++) {
      out.set(queue.subarray(b * n * d, (b + 1) * n * d), (q / n - 1 - b) * n * d);
    }
    return out;
  };
  const step = await firstStep(
    gpu,
    swav,
    {
      projectionDim: d,
      hiddenDim: meta.hiddenDim,
      prototypes: meta.prototypes,
      temperature: meta.temperature,
      epsilon: meta.epsilon,
      sinkhornIterations: meta.sinkhornIterations,
      queueSize: q,
      queueStartEpoch: 0,
      freezePrototypesEpochs: 0,
      localCrops: meta.localCrops,
    },
    fixture,
    (run) => {
      // The deterministic prototypes brought to unit length, as SwAV's step starts.
      initialize(run.trainable, [all], new Map([["prototypes.weight", fixture.get("prototypes")]]));
      for (const i of [0, 1]) gpu.write(run.state.get(`queue.${i}`) as Tensor, ring(i));
    },
    // The queue has had q / n steps to fill: it is full, and its next slot is 0.
    q / n,
  );
  compareLoss(fixture, step.loss);
  compare(fixture, "grad", step.grads);
  compare(fixture, "after", prefixed("model", await step.run.trainable.read()));
  // After the step's rows went in at slot 0, the ring's order is the shifted queue's.
  const after = fixture.get("queue_after");
  for (const i of [0, 1]) {
    const [queue] = await gpu.read(step.run.state.get(`queue.${i}`) as Tensor);
    assertClose(queue, after.subarray(i * q * d, (i + 1) * q * d), {
      atol: 4 * fixture.get("queue_after_f32err")[0] + 1e-6,
      rtol: 0,
      label: `queue ${i + 1}`,
    });
  }
  step.destroy();
});

Deno.test("rotation prediction first step matches PyTorch", async () => {
  const gpu = await testGpu();
  const fixture = await load("rotation_step1");
  const step = await firstStep(
    gpu,
    rotation,
    {},
    fixture,
    (run) => initialize(run.trainable, [all]),
  );
  compareLoss(fixture, step.loss);
  compare(fixture, "grad", step.grads);
  compare(fixture, "after", prefixed("model", await step.run.trainable.read()));
  step.destroy();
});
