// A whole first training step of MoCo v2 and BYOL on a width-16 ResNet-18 against PyTorch
// (tests/fixtures/make_method_steps.py): loss, every parameter's gradient, the parameters
// after an SGD step, the key encoder or target network after its moving average, the queue
// after the keys are enqueued, and every running statistic.
import type { Gpu } from "../src/gpu/gpu.ts";
import { Program } from "../src/gpu/gpu.ts";
import type { Tensor } from "../src/gpu/tensor.ts";
import { byol } from "../src/methods/byol.ts";
import type { Method, MethodRun } from "../src/methods/method.ts";
import { moco, mocoKeyShuffles } from "../src/methods/moco.ts";
import type { ParameterBlock } from "../src/nn/parameters.ts";
import { createOptimizer } from "../src/optim/optimizer.ts";
import { deterministicValues } from "./_init.ts";
import { compareCompact as compare } from "./_compare.ts";
import { assertClose, type Fixture, loadFixtureFile, testGpu } from "./_util.ts";

const load = (name: string) =>
  loadFixtureFile(new URL(`./fixtures/${name}.safetensors`, import.meta.url).pathname);

/** Loads the fixture script's deterministic initial values into a block. */
function initialize(
  block: ParameterBlock,
  groups: { strip: string; take: (name: string) => boolean }[],
) {
  const entries = [...block.parameters, ...block.runningStats];
  const values = new Map<string, Float32Array>();
  for (const { strip, take } of groups) {
    for (const [k, v] of deterministicValues(entries.filter(([n]) => take(n)), strip)) {
      values.set(k, v);
    }
  }
  block.load(values, "deterministic initial values");
}

/** Builds a method's run, records one training step with SGD and runs it on the fixture's views. */
async function firstStep<O extends object>(
  gpu: Gpu,
  method: Method<O>,
  options: Record<string, unknown>,
  fixture: Fixture,
  setup: (run: MethodRun) => void,
) {
  const checked = method.validate(options, 8);
  const run = method.build(
    {
      gpu,
      backbone: { name: "resnet18", stem: "cifar", width: 16 },
      batchSize: 8,
      totalSteps: 100,
      stepsPerEpoch: 10,
      seed: 0,
    },
    checked,
  );
  setup(run);
  const sgd = fixture.meta.sgd as { lr: number; momentum: number; weightDecay: number };
  const optimizer = createOptimizer(gpu, run.trainable, {
    name: "sgd",
    momentum: sgd.momentum,
    weightDecay: sgd.weightDecay,
  });
  const program = new Program(gpu, "first step");
  const groups = method.views(checked, {} as never);
  const views = groups.map((_, i) =>
    program.tensor(fixture.shape(`view${i + 1}`), `view ${i + 1}`)
  );
  const labels = program.tensor([8], "labels", "i32");
  program.clear(run.trainable.grads);
  const { loss } = run.record(program, { views, labels });
  optimizer.record(program);
  run.recordAfterUpdate?.(program);
  views.forEach((v, i) => gpu.write(v, fixture.get(`view${i + 1}`) as Float32Array<ArrayBuffer>));
  run.prepare(0);
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
      run.destroy();
    },
  };
}

const prefixed = (prefix: string, values: Map<string, Float32Array>) =>
  new Map([...values].map(([k, v]) => [`${prefix}.${k}`, v]));

for (const symmetric of [false, true]) {
  const name = `moco_step1${symmetric ? "_symmetric" : ""}`;
  Deno.test(`MoCo v2 first step (${symmetric ? "symmetric" : "asymmetric"}) matches PyTorch`, async () => {
    const gpu = await testGpu();
    const fixture = await load(name);
    const meta = fixture.meta as Record<string, number> & { shuffles: number[][] };
    // The fixture used selfsup's own key shuffles of step 0.
    const shuffles = mocoKeyShuffles(0, 0, 8, symmetric ? 2 : 1).map((p) => [...p]);
    if (JSON.stringify(shuffles) !== JSON.stringify(meta.shuffles.slice(0, shuffles.length))) {
      throw new Error(
        `The fixture's key shuffles ${JSON.stringify(meta.shuffles)} are not selfsup's`,
      );
    }
    const step = await firstStep(
      gpu,
      moco,
      {
        temperature: meta.temperature,
        projectionDim: meta.projectionDim,
        hiddenDim: meta.hiddenDim,
        queueSize: meta.queueSize,
        momentum: meta.momentum,
        finalMomentum: meta.momentum,
        bnSplits: meta.bnSplits,
        symmetric,
      },
      fixture,
      (run) => {
        const all = () => true;
        initialize(run.trainable, [{ strip: "", take: all }]);
        initialize(run.state.get("key") as ParameterBlock, [{ strip: "", take: all }]);
        gpu.write(
          run.state.get("queue") as Tensor,
          fixture.get("queue") as Float32Array<ArrayBuffer>,
        );
      },
    );
    assertClose([step.loss], fixture.get("loss"), {
      atol: 4 * fixture.get("loss_f32err")[0] + 1e-6,
      rtol: 0,
      label: "loss",
    });
    compare(fixture, "grad", step.grads);
    compare(fixture, "after", prefixed("query", await step.run.trainable.read()));
    compare(
      fixture,
      "after",
      prefixed("key", await (step.run.state.get("key") as ParameterBlock).read()),
    );
    const [queue] = await gpu.read(step.run.state.get("queue") as Tensor);
    assertClose(queue, fixture.get("queue_after"), {
      atol: 4 * fixture.get("queue_after_f32err")[0] + 1e-6,
      rtol: 0,
      label: "queue",
    });
    step.destroy();
  });
}

Deno.test("BYOL first step matches PyTorch", async () => {
  const gpu = await testGpu();
  const fixture = await load("byol_step1");
  const meta = fixture.meta as Record<string, number>;
  const step = await firstStep(
    gpu,
    byol,
    {
      projectionDim: meta.projectionDim,
      hiddenDim: meta.hiddenDim,
      predictorHiddenDim: meta.predictorHiddenDim,
      momentum: meta.momentum,
      finalMomentum: meta.momentum,
    },
    fixture,
    (run) => {
      const online = (n: string) => !n.startsWith("predictor.");
      initialize(run.trainable, [
        { strip: "", take: online },
        { strip: "predictor.", take: (n) => n.startsWith("predictor.") },
      ]);
      initialize(run.state.get("target") as ParameterBlock, [{ strip: "", take: () => true }]);
    },
  );
  assertClose([step.loss], fixture.get("loss"), {
    atol: 4 * fixture.get("loss_f32err")[0] + 1e-6,
    rtol: 0,
    label: "loss",
  });
  compare(fixture, "grad", step.grads);
  const trained = await step.run.trainable.read();
  const online = new Map([...trained].filter(([k]) => !k.startsWith("predictor.")));
  compare(fixture, "after", prefixed("online", online));
  compare(fixture, "after", new Map([...trained].filter(([k]) => k.startsWith("predictor."))));
  compare(
    fixture,
    "after",
    prefixed("target", await (step.run.state.get("target") as ParameterBlock).read()),
  );
  step.destroy();
});
