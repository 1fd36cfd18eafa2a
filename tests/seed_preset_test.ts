// `--preset seed` is the seed's recipe: every field checked against the seed's values, written
// here as literals. The seed's own code is not in this repository; its values are the ones
// README ("The seed's recipe") and issue 14 record, cited beside each. That the recipe, its
// normalisation and the probe flags reach a run folder and checkpoint through the CLI is
// checked in cli_test.ts, with every other flag.
import { augmentPreset } from "../src/data/augment.ts";
import { SimclrModel } from "../src/methods/simclr.ts";
import { Parameter } from "../src/nn/module.ts";
import { presetConfig } from "../src/presets.ts";
import { SelfsupError } from "../src/errors.ts";
import { pretrain } from "../src/train.ts";
import { assertEquals, assertRejects } from "./_assert.ts";

/** Every leaf of a JSON-like value by its path, so that fields compare one by one. */
function leaves(value: unknown, path = "", into = new Map<string, unknown>()) {
  if (value !== null && typeof value === "object") {
    for (const [key, child] of Object.entries(value)) leaves(child, `${path}.${key}`, into);
  } else {
    into.set(path, value);
  }
  return into;
}

/** Fails naming every field that is missing, extra or different. */
function assertFields(actual: unknown, expected: unknown, label: string): void {
  const a = leaves(actual), e = leaves(expected);
  const show = (m: Map<string, unknown>, k: string) =>
    m.has(k) ? JSON.stringify(m.get(k)) : "absent";
  const wrong = [...new Set([...a.keys(), ...e.keys()])].filter((k) => a.get(k) !== e.get(k))
    .map((k) => `${label}${k}: ${show(a, k)}, the seed's: ${show(e, k)}`);
  if (wrong.length) throw new Error(wrong.join("\n"));
}

Deno.test("every field of the seed preset is the seed's value", () => {
  const seed = presetConfig("seed");
  assertFields(seed, {
    // README: SimCLR; the head Linear(512, 512)–ReLU–Linear(512, 128); temperature 0.5
    method: { name: "simclr", temperature: 0.5, projectionDim: 128 },
    dataset: { name: "cifar10" }, // issue 14: all 50,000 CIFAR-10 training images
    // README, issue 14: ImageNet stem (torchvision's resnet18 as it is), width 64
    backbone: { name: "resnet18", stem: "imagenet", width: 64 },
    epochs: 10, // README, issue 14
    batchSize: 64, // README, issue 14
    optimizer: "adam", // README, issue 14: Adam 1e-3, PyTorch's defaults otherwise:
    learningRate: 1e-3,
    weightDecay: 0, // torch.optim.Adam's default
    warmupEpochs: 0, // README, issue 14 name no schedule: a constant rate
    schedule: "constant",
    seed: 0, // no counterpart: the seed's draws come from torch's generator
    augmentation: "seed", // its recipe, checked below
    normalization: { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] }, // issue 14
    evaluation: {
      // issue 14: nn.Linear(512, 10), Adam 1e-3, 5 epochs, batch 64, raw frozen features
      probe: { epochs: 5, learningRate: 1e-3, batchSize: 64, features: "raw" },
      // Additions beside the seed's probe (README lists them): the kNN monitor, a forward
      // batch size that changes no result in eval mode, the probe's seed.
      knn: { k: 200, temperature: 0.1 },
      batchSize: 256,
      seed: 0,
    },
    baseline: true, // an addition: the same evaluation of a randomly initialised network
  }, "presetConfig(seed)");

  // README: RandomResizedCrop(32) (torchvision's default scale and ratio), horizontal flip,
  // ColorJitter(0.8, 0.8, 0.8, 0.2) on every view (issue 14: not p = 0.8),
  // RandomGrayscale(0.2), Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)) (issue 14).
  assertFields(augmentPreset(seed.augmentation, 32), {
    height: 32,
    width: 32,
    crop: { scale: [0.08, 1], ratio: [3 / 4, 4 / 3] },
    flip: 0.5,
    jitter: { brightness: 0.8, contrast: 0.8, saturation: 0.8, hue: 0.2, p: 1 },
    grayscale: 0.2,
    blur: null,
    solarize: null,
    mean: [0.5, 0.5, 0.5],
    std: [0.5, 0.5, 0.5],
  }, "augmentPreset(seed)");

  // README: the head Linear(512, 512)–ReLU–Linear(512, 128) on 512 features.
  const model = new SimclrModel({
    backbone: seed.backbone,
    projectionDim: seed.method.projectionDim as number,
  });
  const head = model.entries().filter(([name]) => name.startsWith("projector."))
    .map(([name, entry]) => [name, entry instanceof Parameter ? entry.shape : null]);
  assertEquals(model.backbone.featureDim, 512, "features");
  assertEquals(head, [
    ["projector.0.weight", [512, 512]],
    ["projector.0.bias", [512]],
    ["projector.2.weight", [128, 512]],
    ["projector.2.bias", [128]],
  ], "projection head");
});

Deno.test("the default preset keeps SimCLR's jitter probability, the data's statistics and its probe", () => {
  const preset = presetConfig("default");
  assertEquals(preset.augmentation, "simclr-seed", "augmentation");
  assertEquals(augmentPreset("simclr-seed").jitter?.p, 0.8, "jitter probability");
  assertEquals(preset.normalization, null, "normalization: the dataset's");
  assertEquals(
    preset.evaluation?.probe,
    { epochs: 50, learningRate: 1e-3, batchSize: 256, features: "standardized" },
    "probe",
  );
});

Deno.test("a configuration with an unknown view recipe or a zero std is refused", async () => {
  const out = await Deno.makeTempDir();
  // Small and local, should the checks ever let it run.
  const tiny = {
    ...presetConfig("seed"),
    method: { name: "simclr", projectionDim: 8 },
    dataset: { name: "synthetic", limit: 16 },
    backbone: { name: "resnet18", stem: "imagenet", width: 4 },
    batchSize: 8,
    epochs: 1,
    workers: 0,
    evaluation: null,
  } as const;
  const refused = async (change: object, includes: string) =>
    await assertRejects(
      () => pretrain({ ...tiny, ...change }, { out, log: () => {} }),
      SelfsupError,
      includes,
    );
  await refused({ augmentation: "simclr" }, "augmentation must be one of simclr-seed, seed");
  await refused({ normalization: { mean: [0.5, 0.5, 0.5], std: [0.5, 0, 0.5] } }, "stds > 0");
  await refused({ normalization: { mean: [0.5, 0.5], std: [0.5, 0.5, 0.5] } }, "three finite");
});
