// A whole first training step of MoCo v2 and BYOL on a width-16 ResNet-18 against PyTorch
// (tests/fixtures/make_method_steps.py): loss, every parameter's gradient, the parameters
// after an SGD step, the key encoder or target network after its moving average, the queue
// after the keys are enqueued, and every running statistic; and of SimCLR on a small ViT
// (tests/fixtures/make_simclr_vit_step1.py): loss, gradients and parameters after the step.
import type { Tensor } from "../src/gpu/tensor.ts";
import { byol } from "../src/methods/byol.ts";
import { moco, mocoKeyShuffles } from "../src/methods/moco.ts";
import { simclr } from "../src/methods/simclr.ts";
import type { ParameterBlock } from "../src/nn/parameters.ts";
import {
  compare,
  compareLoss,
  firstStep,
  fixtureVit,
  initialize,
  load,
  prefixed,
} from "./_method_step.ts";
import { assertEquals } from "./_assert.ts";
import { assertClose, testGpu } from "./_util.ts";

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
    compareLoss(fixture, step.loss);
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

Deno.test("BYOL first step matches PyTorch (the predictor at its own learning rate)", async () => {
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
      predictorLrScale: meta.predictorLrScale,
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
  compareLoss(fixture, step.loss);
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

Deno.test("SimCLR on a ViT: the first step matches PyTorch (loss, every gradient, the parameters after it)", async () => {
  const gpu = await testGpu();
  const fixture = await load("simclr_vit_step1");
  const meta = fixture.meta as Record<string, number>;
  const step = await firstStep(
    gpu,
    simclr,
    {
      temperature: meta.temperature,
      projectionDim: meta.projectionDim,
      hiddenDim: meta.hiddenDim,
    },
    fixture,
    (run) => initialize(run.trainable, [{ strip: "", take: () => true }]),
    0,
    fixtureVit(meta),
  );
  compareLoss(fixture, step.loss);
  // Every parameter PyTorch trained has a gradient here, and no other.
  const trained = fixture.names().filter((k) => k.startsWith("grad_f32err.")).map((k) =>
    k.slice("grad_f32err.".length)
  );
  assertEquals([...step.grads.keys()].sort(), trained.sort(), "trained parameters");
  compare(fixture, "grad", step.grads);
  compare(fixture, "after", await step.run.trainable.read());
  step.destroy();
});
