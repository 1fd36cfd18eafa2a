// A checkpoint's backbone loads into torchvision's resnet18 with strict=True (apart from fc)
// and gives the same features as selfsup's own forward pass. Needs a Python with
// torchvision (Debian: apt install python3-torchvision); without one the test is skipped
// and says so.
import { augmentPreset, CIFAR_MEAN, CIFAR_STD } from "../src/data/augment.ts";
import { evalBatches } from "../src/data/batcher.ts";
import { syntheticDataset } from "../src/data/synthetic.ts";
import { captureCheckpoint, saveCheckpoint } from "../src/checkpoint.ts";
import { randomModel } from "../src/model.ts";
import { extractFeatures } from "../src/probe.ts";
import { serializeSafetensors } from "../src/io/safetensors.ts";
import { testGpu } from "./_util.ts";

const python = ["python3", "/usr/bin/python3"].find((exe) => {
  try {
    return new Deno.Command(exe, { args: ["-c", "import torchvision"], stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
});

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
backbone = {k: v for k, v in state.items() if not k.startswith(("projector.", "optimizer."))}
model = torchvision.models.resnet18()
if arch["stem"] == "cifar":
    model.conv1 = torch.nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    model.maxpool = torch.nn.Identity()
missing, unexpected = model.load_state_dict(backbone, strict=False)
assert sorted(missing) == ["fc.bias", "fc.weight"] and not unexpected, (missing, unexpected)
model.fc = torch.nn.Identity()
model.load_state_dict(backbone, strict=True)
model.eval()
images, _ = load(sys.argv[2])
expected, _ = load(sys.argv[3])
with torch.no_grad():
    features = model(images["images"])
err = (features - expected["features"]).abs().max().item()
scale = expected["features"].abs().max().item()
print(json.dumps({"max_error": err, "scale": scale}))
assert err <= 1e-4 * max(1.0, scale), err
`;

for (const stem of ["cifar", "imagenet"] as const) {
  Deno.test({
    name: `a ${stem}-stem checkpoint loads into torchvision and gives selfsup's features`,
    ignore: !python,
    async fn() {
      const gpu = await testGpu();
      const architecture = {
        method: "simclr",
        backbone: "resnet18",
        stem,
        width: 64,
        projectionDim: 16,
        imageSize: 32,
      } as const;
      const { model, block } = randomModel(
        gpu,
        architecture,
        { mean: CIFAR_MEAN, std: CIFAR_STD },
        5,
      );
      const dir = await Deno.makeTempDir();
      await saveCheckpoint(
        `${dir}/checkpoint.safetensors`,
        await captureCheckpoint(gpu, block, {
          architecture,
          normalization: { mean: CIFAR_MEAN, std: CIFAR_STD },
          progress: { epoch: 1, batch: 0, step: 7, done: true },
          config: {},
        }),
      );
      const images = syntheticDataset({ split: "test", count: 3 });
      const transform = augmentPreset("eval", 32);
      const { features, dim } = await extractFeatures(gpu, model.backbone, images, {
        batchSize: 3,
        transform,
      });
      // The same normalised pixels go to torchvision.
      const [batch] = evalBatches(images, { batchSize: 3, augment: transform });
      await Deno.writeFile(
        `${dir}/images.safetensors`,
        serializeSafetensors(
          new Map([["images", { dtype: "F32", shape: [3, 3, 32, 32], data: batch.images }]]),
        ),
      );
      await Deno.writeFile(
        `${dir}/features.safetensors`,
        serializeSafetensors(
          new Map([["features", { dtype: "F32", shape: [3, dim], data: features }]]),
        ),
      );
      const result = await new Deno.Command(python!, {
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
      block.destroy();
    },
  });
}
