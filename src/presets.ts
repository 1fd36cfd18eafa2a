import { SelfsupError } from "./errors.ts";
import { type Method, optimizerRecipeKeys, type Recipe, recipeKeys } from "./methods/method.ts";
import { methodNamed } from "./methods/registry.ts";
import type { BackboneConfig } from "./nn/backbone.ts";
import type { PretrainConfig } from "./train.ts";

/** The names `--preset` takes. */
export type PresetName = "default" | "seed" | "cifar";
export const presetNames: readonly PresetName[] = ["default", "seed", "cifar"];

const defaultPreset: PretrainConfig = {
  method: { name: "simclr", temperature: 0.2, projectionDim: 128 },
  dataset: { name: "synthetic" },
  // The ImageNet stem shrinks 32×32 images to 8×8 before layer1: a width-16 network runs
  // at ~150 images/s on two CPU cores, and 5 epochs of the 5,000 images learn shapes well.
  backbone: { name: "resnet18", stem: "imagenet", width: 16 },
  epochs: 5,
  batchSize: 64,
  // A lower temperature and a higher rate than the seed's learn faster at batch 64.
  optimizer: "adam",
  learningRate: 2e-3,
  weightDecay: 0,
  warmupEpochs: 0,
  schedule: "constant",
  seed: 0,
  augmentation: "simclr-seed",
  normalization: null,
  evaluation: {
    // 5,000 images give 19 probe steps an epoch: 50 epochs let the probe converge.
    // Standardised features let one learning rate fit every backbone.
    probe: { epochs: 50, learningRate: 1e-3, batchSize: 256, features: "standardized" },
    knn: { k: 200, temperature: 0.1 },
    batchSize: 256,
    seed: 0,
  },
  baseline: true,
};

// What the seed sets differently from the default; tests/seed_preset_test.ts checks every
// field against the seed's values, and README's "The seed's recipe" names what still differs.
const seedPreset: PretrainConfig = {
  ...defaultPreset,
  method: { name: "simclr", temperature: 0.5, projectionDim: 128 },
  dataset: { name: "cifar10" },
  backbone: { name: "resnet18", stem: "imagenet", width: 64 },
  epochs: 10,
  learningRate: 1e-3,
  augmentation: "seed",
  normalization: { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] },
  evaluation: {
    ...defaultPreset.evaluation!,
    probe: { epochs: 5, learningRate: 1e-3, batchSize: 64, features: "raw" },
  },
};

// solo-learn's CIFAR setting (scripts/pretrain/cifar/*.yaml): a ResNet-18 with the CIFAR stem
// at torchvision's width, 1000 epochs of CIFAR-10; each method's recipe sets the rest.
const cifarPreset: PretrainConfig = {
  ...defaultPreset,
  dataset: { name: "cifar10" },
  backbone: { name: "resnet18", stem: "cifar", width: 64 },
  epochs: 1000,
};

/**
 * How a preset trains a Vision Transformer where the method's recipe was written for its
 * ResNet (it names no encoder): AdamW 5e-4, weight decay 0.05, a linear warm-up, then cosine.
 * SimCLR on the ViT at the default preset's Adam 2e-3 from the first step did not learn in 2
 * epochs of the synthetic set; at this recipe its features pass a random ViT's there and on
 * the CIFAR-10 slice (README, results). DINO's authors train ViTs with the same family (AdamW
 * 5e-4 × batch/256, 10 warm-up epochs, cosine, biases and norms without decay), which the
 * `cifar` preset takes at the batch of 256 of most of its recipes (unscaled for rotation's 128).
 */
// Exactly the measured run: biases and norms keep the preset's (PyTorch's) weight decay.
const transformerRecipe: Recipe = {
  optimizer: "adamw",
  learningRate: 5e-4,
  weightDecay: 0.05,
  warmupEpochs: 0.5,
  schedule: "cosine",
};
const transformerRecipes: Record<"default" | "cifar", Recipe> = {
  default: transformerRecipe,
  cifar: { ...transformerRecipe, excludeBiasAndNorm: true, warmupEpochs: 10 },
};

/** What the flags choose beside the preset and the method, which the preset's recipe depends on. */
export interface PresetChoices {
  /** The encoder the run trains (`--backbone`); absent: the preset's or the method's. */
  readonly backbone?: BackboneConfig["name"];
}

/**
 * The starting configuration of `deno task pretrain --preset <name> --method <method>`:
 *
 * - `default`: the built-in synthetic set with a narrow ResNet-18, sized so that the bare
 *   command finishes in minutes on a CPU through a software WebGPU adapter and still shows
 *   features well above a random network's; a method's `synthetic` recipe adjusts it.
 * - `seed`: the seed project's recipe (SimCLR only) — ResNet-18 (ImageNet stem, width 64) on
 *   CIFAR-10, batch 64, Adam at 1e-3, temperature 0.5, 10 epochs, its augmentations and its
 *   (0.5, 0.5, 0.5) normalisation, then its linear probe: Adam at 1e-3 for 5 epochs at batch
 *   64 on raw features.
 * - `cifar`: the method's CIFAR-10 recipe from solo-learn (ResNet-18 with the CIFAR stem,
 *   1000 epochs, the method's optimizer, learning rate, batch, heads and augmentations).
 *
 * With a ViT (`choices.backbone`) and a method whose recipe names no encoder of its own,
 * `default` and `cifar` train with their transformer recipe in place of the method's optimizer
 * and schedule; the method's options, batch and augmentations stay. MAE's recipe names its
 * ViT, MLM's and CLIP's their text encoders: theirs stay whole. `seed` stays the seed's.
 */
export function presetConfig(
  name: PresetName,
  methodName = "simclr",
  choices: PresetChoices = {},
): PretrainConfig {
  const method = methodNamed(methodName);
  switch (name) {
    case "default":
      return withRecipe(
        defaultPreset,
        method,
        recipeFor(method.recipes.synthetic ?? {}, defaultPreset, "default", choices),
      );
    case "seed":
      if (method.name !== "simclr") {
        throw new SelfsupError(
          `--preset seed is the seed project's SimCLR recipe: it takes no --method ${methodName}`,
        );
      }
      return seedPreset;
    case "cifar":
      if (!method.recipes.cifar) {
        throw new SelfsupError(
          `--preset cifar is a CIFAR-10 recipe: ${method.title} trains on ${method.modality}, use --preset default`,
        );
      }
      return withRecipe(
        cifarPreset,
        method,
        recipeFor(method.recipes.cifar, cifarPreset, "cifar", choices),
      );
  }
}

/**
 * A method's recipe for a preset as the run trains it: where the run's encoder is a ViT the
 * recipe names none of its own for, the preset's transformer recipe in place of its optimizer
 * and schedule.
 */
function recipeFor(
  recipe: Recipe,
  base: PretrainConfig,
  preset: keyof typeof transformerRecipes,
  choices: PresetChoices,
): Recipe {
  if (recipe.backbone || recipe.text) return recipe;
  if ((choices.backbone ?? base.backbone.name) !== "vit") return recipe;
  const rest = Object.entries(recipe).filter(([key]) =>
    !(optimizerRecipeKeys as readonly string[]).includes(key)
  );
  return { ...Object.fromEntries(rest), ...transformerRecipes[preset] };
}

/** A preset with a method's recipe applied: training settings to the run, the rest to the method. */
// deno-lint-ignore no-explicit-any
function withRecipe(base: PretrainConfig, method: Method<any>, recipe: Recipe): PretrainConfig {
  const training: Record<string, unknown> = {};
  const options: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(recipe)) {
    if ((recipeKeys as readonly string[]).includes(key)) training[key] = value;
    else options[key] = value;
  }
  const sameMethod = base.method.name === method.name;
  return {
    ...base,
    ...training,
    method: { ...(sameMethod ? base.method : {}), ...options, name: method.name },
  };
}
