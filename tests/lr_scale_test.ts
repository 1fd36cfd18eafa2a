// A method's learning-rate scales reach the optimizer of a real pre-training run: BYOL's
// `--predictor-lr-scale` moves the predictor, and only the predictor, faster.
import type { MethodConfig } from "../src/methods/method.ts";
import { presetConfig } from "../src/presets.ts";
import { pretrain, type PretrainConfig } from "../src/train.ts";
import { checkpointOf, quiet } from "./_resume.ts";
import { assertClose, testGpu } from "./_util.ts";

/** One step of a tiny BYOL run with the predictor at `scale` times the rate: its tensors. */
async function oneStep(scale: number): Promise<Map<string, Float32Array>> {
  const method: MethodConfig = {
    name: "byol",
    projectionDim: 8,
    hiddenDim: 16,
    predictorHiddenDim: 16,
    predictorLrScale: scale,
  };
  const config: PretrainConfig = {
    ...presetConfig("default"),
    method,
    backbone: { name: "resnet18", stem: "imagenet", width: 4 },
    dataset: { name: "synthetic", limit: 16 },
    batchSize: 16,
    epochs: 1,
    workers: 1,
    evaluation: null,
    baseline: false,
  };
  const out = `${await Deno.makeTempDir()}/run`;
  await pretrain(config, { out, gpu: await testGpu(), log: quiet });
  return (await checkpointOf(out)).tensors;
}

Deno.test("pretrain moves BYOL's predictor at --predictor-lr-scale times the rate, and nothing else", async () => {
  const [one, two, three] = [await oneStep(1), await oneStep(2), await oneStep(3)];
  const predictor = (name: string) => name.startsWith("method.predictor.");
  const parameters = [...one.keys()].filter((name) => !/running_|num_batches|target\./.test(name));
  if (!parameters.some(predictor)) throw new Error("no predictor tensors in the checkpoint");
  for (const name of parameters) {
    const [a, b, c] = [one.get(name)!, two.get(name)!, three.get(name)!];
    if (predictor(name)) {
      // From the same first gradient Adam's step is the same direction times the rate: the
      // parameters after it lie on a line, a step of the run's rate apart.
      const firstGap = a.map((v, i) => v - b[i]);
      const secondGap = b.map((v, i) => v - c[i]);
      if (firstGap.every((v) => v === 0)) throw new Error(`${name} did not move with the scale`);
      assertClose(secondGap, firstGap, { atol: 1e-6, rtol: 1e-3, label: name });
    } else if (!a.every((v, i) => Object.is(v, b[i]) && Object.is(v, c[i]))) {
      throw new Error(`${name} changed with the predictor's scale`);
    }
  }
});
