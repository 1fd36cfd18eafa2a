// Whole first training steps of methods against PyTorch: the fixture scripts
// (tests/fixtures/make_method_steps.py, make_multicrop_steps.py, make_simclr_vit_step1.py)
// store the loss, samples of every gradient and parameter after the step, and float32's own
// deviation from float64.
import type { Gpu } from "../src/gpu/gpu.ts";
import { Program } from "../src/gpu/gpu.ts";
import {
  createLossScale,
  createMethodOptimizer,
  type Method,
  type MethodRun,
  recordTrainingStep,
} from "../src/methods/method.ts";
import type { BackboneConfig } from "../src/nn/backbone.ts";
import type { ParameterBlock } from "../src/nn/parameters.ts";
import type { VitConfig } from "../src/nn/vit.ts";
import { deterministicValues } from "./_init.ts";
import { assertClose, type Fixture, loadFixtureFile, norm } from "./_util.ts";

/** A fixture of tests/fixtures by name. */
export const load = (name: string) =>
  loadFixtureFile(new URL(`./fixtures/${name}.safetensors`, import.meta.url).pathname);

/** 64 elements at floor(k·n/64), as the fixture script samples a large tensor. */
function sampled(values: Float32Array): Float32Array {
  const n = values.length;
  if (n <= 64) return values;
  return Float32Array.from({ length: 64 }, (_, k) => values[Math.floor((k * n) / 64)]);
}

/**
 * Compares every tensor of `actual` with the fixture's `prefix.name` (whole) or its
 * `prefix_sample.name` and `prefix_norm.name`; the fixture must hold each one. The bound is
 * what float32 can promise: four times the deviation of PyTorch's own float32 run from the
 * float64 reference (`prefix_f32err.name`), plus 1e-5 of the tensor's largest element for
 * the summation order.
 */
export function compare(fixture: Fixture, prefix: string, actual: Map<string, Float32Array>) {
  if (actual.size === 0) throw new Error(`nothing to compare under ${prefix}`);
  for (const [name, values] of actual) {
    const whole = `${prefix}.${name}`;
    const expected = fixture.has(whole)
      ? fixture.get(whole)
      : fixture.get(`${prefix}_sample.${name}`);
    const scale = expected.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    const float32 = fixture.get(`${prefix}_f32err.${name}`)[0];
    assertClose(fixture.has(whole) ? values : sampled(values), expected, {
      atol: 4 * float32 + 1e-5 * scale + 1e-9,
      rtol: 0,
      label: whole,
    });
    if (!fixture.has(whole)) {
      const expectedNorm = fixture.get(`${prefix}_norm.${name}`);
      assertClose([norm(values)], expectedNorm, {
        atol: 4 * fixture.get(`${prefix}_norm_f32err.${name}`)[0] + 1e-5 * expectedNorm[0],
        rtol: 0,
        label: `‖${whole}‖`,
      });
    }
  }
}

/**
 * Loads the fixture script's deterministic initial values into a block, and the `overrides`
 * the fixture stores (values the script derived from them).
 */
export function initialize(
  block: ParameterBlock,
  groups: { strip: string; take: (name: string) => boolean }[],
  overrides: ReadonlyMap<string, Float32Array> = new Map(),
) {
  const entries = [...block.parameters, ...block.runningStats];
  const values = new Map<string, Float32Array>();
  for (const { strip, take } of groups) {
    for (const [k, v] of deterministicValues(entries.filter(([n]) => take(n)), strip)) {
      values.set(k, v);
    }
  }
  for (const [k, v] of overrides) values.set(k, v);
  block.load(values, "deterministic initial values");
}

/**
 * Builds a method's run (on a width-16 ResNet-18 with the CIFAR stem unless `backbone` says
 * otherwise), records one training step as the trainer does (recordTrainingStep, with the
 * loss scale of an f16 backbone) with SGD (at the run's learning-rate scales) and runs it on
 * the fixture's views (`view1`, `view2`, …, one per view group) as the step after `step`
 * updates, with the parameters the run freezes then left to the optimizer to skip.
 */
export async function firstStep<O extends object>(
  gpu: Gpu,
  method: Method<O>,
  options: Record<string, unknown>,
  fixture: Fixture,
  setup: (run: MethodRun) => void,
  step = 0,
  backbone: BackboneConfig = { name: "resnet18", stem: "cifar", width: 16 },
) {
  const checked = method.validate(options, 8);
  const run = method.build(
    {
      gpu,
      backbone,
      batchSize: 8,
      totalSteps: 100,
      stepsPerEpoch: 10,
      seed: 0,
    },
    checked,
  );
  setup(run);
  const sgd = fixture.meta.sgd as { lr: number; momentum: number; weightDecay: number };
  const optimizer = createMethodOptimizer(gpu, run, {
    name: "sgd",
    momentum: sgd.momentum,
    weightDecay: sgd.weightDecay,
  });
  const program = new Program(gpu, "first step");
  const groups = fixture.names().filter((name) => /^view\d+$/.test(name)).length;
  const views = Array.from(
    { length: groups },
    (_, i) => program.tensor(fixture.shape(`view${i + 1}`), `view ${i + 1}`),
  );
  const labels = program.tensor([8], "labels", "i32");
  const lossScale = createLossScale(gpu, run);
  const { loss } = recordTrainingStep(program, run, optimizer, { views, labels }, lossScale);
  views.forEach((v, i) => gpu.write(v, fixture.get(`view${i + 1}`) as Float32Array<ArrayBuffer>));
  run.prepare(step);
  optimizer.freeze(run.frozen?.(step) ?? []);
  optimizer.prepare(1, sgd.lr);
  gpu.submit(program);
  const [lossValue] = await gpu.read(loss);
  return {
    run,
    loss: lossValue[0],
    grads: await run.trainable.readGrads(),
    destroy() {
      program.destroy();
      optimizer.destroy();
      lossScale?.destroy();
      run.destroy();
    },
  };
}

/** The ViT a fixture script built, from its timm-named metadata (`img_size`, `embed_dim`, …). */
export function fixtureVit(meta: Record<string, unknown>): VitConfig & { name: "vit" } {
  const size = (key: string) => meta[key] as number;
  return {
    name: "vit",
    imageSize: size("img_size"),
    patchSize: size("patch_size"),
    dim: size("embed_dim"),
    depth: size("depth"),
    heads: size("num_heads"),
  };
}

/** The names of `values` under `prefix.`. */
export const prefixed = (prefix: string, values: Map<string, Float32Array>) =>
  new Map([...values].map(([k, v]) => [`${prefix}.${k}`, v]));

/** Compares the loss with the fixture's, within four times float32's own deviation. */
export function compareLoss(fixture: Fixture, loss: number): void {
  assertClose([loss], fixture.get("loss"), {
    atol: 4 * fixture.get("loss_f32err")[0] + 1e-6,
    rtol: 0,
    label: "loss",
  });
}
