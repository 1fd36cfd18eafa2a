// The presets' recipe for a Vision Transformer: where the method's recipe was written for the
// preset's ResNet (it names no encoder), a ViT trains at the preset's transformer recipe; the
// method's options stay, and recipes that name their encoder (MAE, MLM, CLIP) stay whole. That
// the CLI passes `--backbone` here and that its flags still win is checked in cli_test.ts.
import { optimizerRecipeKeys } from "../src/methods/method.ts";
import { methods } from "../src/methods/registry.ts";
import { presetConfig } from "../src/presets.ts";
import type { PretrainConfig } from "../src/train.ts";
import { assertEquals } from "./_assert.ts";

/** The fields of a configuration that make its optimizer and schedule. */
function optimizerOf(config: PretrainConfig) {
  return Object.fromEntries(optimizerRecipeKeys.map((key) => [key, config[key]]));
}

/** A configuration without its optimizer and schedule: what a ViT must leave as it was. */
function besidesOptimizer(config: PretrainConfig) {
  const kept = Object.entries(config).filter(([key]) =>
    !(optimizerRecipeKeys as readonly string[]).includes(key)
  );
  return JSON.parse(JSON.stringify(Object.fromEntries(kept)));
}

Deno.test("SimCLR on a ViT in the default preset is the README's measured ViT run", () => {
  // The run of the README's "SimCLR (ViT)" rows: the default preset with these five flags.
  const measured: PretrainConfig = {
    ...presetConfig("default", "simclr"),
    optimizer: "adamw",
    learningRate: 5e-4,
    weightDecay: 0.05,
    warmupEpochs: 0.5,
    schedule: "cosine",
  };
  assertEquals(presetConfig("default", "simclr", { backbone: "vit" }), measured, "--backbone vit");
  for (const backbone of ["resnet18", undefined] as const) {
    assertEquals(
      presetConfig("default", "simclr", { backbone }),
      presetConfig("default", "simclr"),
      `--backbone ${backbone}`,
    );
  }
});

Deno.test("every method whose recipe names no encoder trains a ViT at the preset's transformer recipe, its own options kept", () => {
  const transformer = {
    default: { warmupEpochs: 0.5, excludeBiasAndNorm: undefined },
    cifar: { warmupEpochs: 10, excludeBiasAndNorm: true },
  };
  let checked = 0;
  for (const method of Object.values(methods)) {
    for (const preset of ["default", "cifar"] as const) {
      const recipe = preset === "default" ? method.recipes.synthetic : method.recipes.cifar;
      if (recipe?.backbone || recipe?.text || (preset === "cifar" && !recipe)) continue;
      const resnet = presetConfig(preset, method.name, { backbone: "resnet18" });
      const vit = presetConfig(preset, method.name, { backbone: "vit" });
      const label = `${preset} ${method.name}`;
      assertEquals(
        optimizerOf(vit),
        {
          optimizer: "adamw",
          betas: undefined,
          optimizerMomentum: undefined, // MoCo's and rotation's SGD momentum goes with SGD
          learningRate: 5e-4,
          weightDecay: 0.05,
          excludeBiasAndNorm: transformer[preset].excludeBiasAndNorm,
          warmupEpochs: transformer[preset].warmupEpochs,
          schedule: "cosine",
        },
        `${label}: optimizer`,
      );
      // Heads, temperatures, crops, batch and augmentations: the method's recipe's.
      assertEquals(besidesOptimizer(vit), besidesOptimizer(resnet), `${label}: the rest`);
      checked++;
    }
  }
  // SimCLR, MoCo, BYOL, DINO, SwAV and rotation in both presets.
  assertEquals(checked, 12, "methods checked");
  // A ResNet recipe's LARS and SGD are gone, SGD's momentum with it.
  assertEquals(presetConfig("cifar", "simclr").optimizer, "lars", "simclr's cifar recipe");
  assertEquals(presetConfig("cifar", "moco").optimizerMomentum, 0.9, "moco's cifar recipe");
  const moco = presetConfig("cifar", "moco", { backbone: "vit" });
  assertEquals([moco.optimizer, moco.optimizerMomentum], ["adamw", undefined], "moco on a ViT");
});

Deno.test("recipes that name their encoder, and the seed's, stay whole with a ViT", () => {
  const cases: [Parameters<typeof presetConfig>[0], string, "vit" | "text"][] = [
    ["default", "mae", "vit"],
    ["cifar", "mae", "vit"],
    ["default", "mlm", "text"],
    ["default", "mlm", "vit"],
    ["default", "clip", "vit"],
    ["seed", "simclr", "vit"],
  ];
  for (const [preset, method, backbone] of cases) {
    assertEquals(
      presetConfig(preset, method, { backbone }),
      presetConfig(preset, method),
      `${preset} ${method} --backbone ${backbone}`,
    );
  }
  // MAE's own AdamW recipe, not the transformer one.
  assertEquals(
    [presetConfig("default", "mae").learningRate, presetConfig("default", "mae").betas],
    [1.5e-3, [0.9, 0.95]],
    "mae's recipe",
  );
});
