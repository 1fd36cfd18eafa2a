// A checkpoint's backbone loads into torchvision's resnet18 with strict=True (apart from fc)
// and gives the same features as selfsup's own forward pass, whatever the method (its extras
// are under method.); a fine-tuned classifier's checkpoint loads whole, fc included. Needs a
// Python with torchvision (Debian: apt install python3-torchvision); without one the test is
// skipped and says so, unless SELFSUP_REQUIRE_TORCH=1 (as .ci/run sets), where it fails.
import { augmentPreset, CIFAR_MEAN, CIFAR_STD } from "../src/data/augment.ts";
import { evalBatches } from "../src/data/batcher.ts";
import { syntheticDataset } from "../src/data/synthetic.ts";
import { limit } from "../src/data/dataset.ts";
import { captureCheckpoint, saveCheckpoint } from "../src/checkpoint.ts";
import { byol } from "../src/methods/byol.ts";
import { buildClassifier } from "../src/methods/supervised.ts";
import type { BackboneConfig } from "../src/nn/backbone.ts";
import { serializeSafetensors } from "../src/io/safetensors.ts";
import type { MethodRun } from "../src/methods/method.ts";
import { ParameterBlock } from "../src/nn/parameters.ts";
import { pythonWith, testGpu } from "./_util.ts";

const torchvision = pythonWith("torchvision");

const check = `
import json, struct, sys, torch, torchvision
def load(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    types = {"F32": torch.float32, "I64": torch.int64}
    out = {}
    for key, v in header.items():
        if key == "__metadata__": continue
        b, e = v["data_offsets"]
        t = torch.frombuffer(bytearray(data[8 + n + b:8 + n + e]), dtype=types[v["dtype"]])
        out[key] = t.reshape(v["shape"])
    return out, header.get("__metadata__", {})
state, meta = load(sys.argv[1])
arch = json.loads(meta["architecture"])
backbone = {k: v for k, v in state.items() if not k.startswith(("method.", "optimizer."))}
classes = backbone["fc.weight"].shape[0] if "fc.weight" in backbone else 1000
model = torchvision.models.resnet18(num_classes=classes)
if arch["backbone"]["stem"] == "cifar":
    model.conv1 = torch.nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    model.maxpool = torch.nn.Identity()
images, _ = load(sys.argv[2])
expected, _ = load(sys.argv[3])
if "fc.weight" in backbone:
    # A fine-tuned classifier: the whole model, logits against selfsup's features and head.
    model.load_state_dict(backbone, strict=True)
    target = expected["features"] @ backbone["fc.weight"].T + backbone["fc.bias"]
else:
    missing, unexpected = model.load_state_dict(backbone, strict=False)
    assert sorted(missing) == ["fc.bias", "fc.weight"] and not unexpected, (missing, unexpected)
    model.fc = torch.nn.Identity()
    model.load_state_dict(backbone, strict=True)
    target = expected["features"]
model.eval()
with torch.no_grad():
    features = model(images["images"])
err = (features - target).abs().max().item()
scale = expected["features"].abs().max().item()
print(json.dumps({"max_error": err, "scale": scale}))
assert err <= 1e-4 * max(1.0, scale), err
`;

const cases = [
  { stem: "cifar", what: "BYOL checkpoint" },
  { stem: "imagenet", what: "BYOL checkpoint" },
  { stem: "cifar", what: "fine-tuned classifier" },
] as const;
for (const { stem, what } of cases) {
  Deno.test({
    name: `a ${stem}-stem ${what} loads into torchvision and gives selfsup's outputs`,
    ignore: torchvision.ignore,
    async fn() {
      const python = torchvision.python();
      const gpu = await testGpu();
      const backbone: BackboneConfig = { name: "resnet18", stem, width: 64 };
      const context = { gpu, backbone, batchSize: 4, totalSteps: 1, stepsPerEpoch: 1, seed: 5 };
      const run = what === "BYOL checkpoint"
        ? byol.build(
          context,
          byol.validate({ hiddenDim: 16, predictorHiddenDim: 16, projectionDim: 8 }, 4),
        )
        : buildClassifier(context, { numClasses: 10 });
      const block = run.trainable;
      // Running statistics unlike a fresh network's zeros and ones, so eval mode uses them.
      const values = await block.read();
      block.runningStats.forEach(([name], i) => {
        const v = values.get(name)!;
        values.set(
          name,
          v.map((_, k) =>
            name.endsWith("var") ? 0.5 + ((k * 7 + i) % 5) / 4 : ((k * 3 + i) % 7 - 3) / 10
          ),
        );
      });
      block.load(values, "test");
      const dir = await Deno.makeTempDir();
      await saveCheckpoint(
        `${dir}/checkpoint.safetensors`,
        await captureCheckpoint(gpu, { blocks: new Map([["", block], ...blockState(run)]) }, {
          architecture: {
            method: what === "BYOL checkpoint" ? "byol" : "supervised",
            backbone,
            imageSize: 32,
          },
          normalization: { mean: CIFAR_MEAN, std: CIFAR_STD },
          progress: { epoch: 1, batch: 0, step: 7, done: true },
          config: {},
        }),
      );
      // Features as `deno task embed` writes them, of the first 3 synthetic test images.
      const embed = await new Deno.Command(Deno.execPath(), {
        args: [
          ...["run", "-A", new URL("../tasks/embed.ts", import.meta.url).pathname],
          ...[
            "--checkpoint",
            `${dir}/checkpoint.safetensors`,
            "--out",
            `${dir}/features.safetensors`,
          ],
          ...["--dataset", "synthetic", "--split", "test", "--limit", "3"],
        ],
        stderr: "piped",
      }).output();
      if (!embed.success) throw new Error(new TextDecoder().decode(embed.stderr));
      // The same normalised pixels go to torchvision.
      const images = limit(syntheticDataset({ split: "test" }), 3);
      const [batch] = evalBatches(images, { batchSize: 3, augment: augmentPreset("eval", 32) });
      await Deno.writeFile(
        `${dir}/images.safetensors`,
        serializeSafetensors(
          new Map([["images", { dtype: "F32", shape: [3, 3, 32, 32], data: batch.images }]]),
        ),
      );
      const result = await new Deno.Command(python, {
        args: [
          "-c",
          check,
          `${dir}/checkpoint.safetensors`,
          `${dir}/images.safetensors`,
          `${dir}/features.safetensors`,
        ],
      }).output();
      if (!result.success) {
        throw new Error(`torchvision check failed: ${new TextDecoder().decode(result.stderr)}`);
      }
      run.destroy();
    },
  });
}

/** A run's extra blocks (BYOL's target network), so the file holds method. tensors too. */
function blockState(run: MethodRun): [string, ParameterBlock][] {
  return [...run.state].filter((entry): entry is [string, ParameterBlock] =>
    entry[1] instanceof ParameterBlock
  );
}
