// A ViT's parameters, written with their bare names, load into a PyTorch VisionTransformer
// with timm's module names (tests/fixtures/timm_vit.py; timm itself is not packaged for
// Debian) with strict=True and give selfsup's features. Needs a Python with torch
// (Debian: apt install python3-torch); without one the test is skipped and says so, unless
// SELFSUP_REQUIRE_TORCH=1 (as .ci/run sets), where it fails.
import { Program } from "../src/gpu/gpu.ts";
import { serializeSafetensors, type StoredTensor } from "../src/io/safetensors.ts";
import { ParameterBlock } from "../src/nn/parameters.ts";
import { VisionTransformer, type VitConfig } from "../src/nn/vit.ts";
import { pythonWith, randn, testGpu } from "./_util.ts";

const torch = pythonWith("torch");

const check = `
import json, sys, torch
sys.path.insert(0, sys.argv[1])
from timm_vit import VisionTransformer, read_safetensors
for path in sys.argv[2:]:
    state, meta = read_safetensors(path + ".safetensors")
    c = json.loads(meta["config"])
    model = VisionTransformer(c["imageSize"], c["patchSize"], c["dim"], c["depth"], c["heads"])
    model.load_state_dict(state, strict=True)
    test, _ = read_safetensors(path + "_test.safetensors")
    images, features = test["images"], test["features"]
    with torch.no_grad():
        err = (model(images) - features).abs().max().item()
    print(json.dumps({"file": path, "max_error": err}))
    assert err <= 1e-4, f"{path}: features differ by {err}"
`;

const configs: VitConfig[] = [
  { imageSize: 32, patchSize: 4, dim: 64, depth: 2, heads: 4 },
  { imageSize: 24, patchSize: 8, dim: 36, depth: 1, heads: 3, positions: "sincos" },
];

Deno.test({
  name: "ViT parameters load into a timm-named PyTorch ViT (strict) and give the same features",
  ignore: torch.ignore,
  async fn() {
    const python = torch.python();
    const gpu = await testGpu();
    const dir = await Deno.makeTempDir();
    const files: string[] = [];
    for (const [i, config] of configs.entries()) {
      const model = new VisionTransformer(config);
      const block = new ParameterBlock(gpu, model.entries());
      block.initialize(Math.random);
      // Values of unit-like scale everywhere (timm's zero biases would hide a swapped name).
      gpu.write(block.values, randn(block.values.size, 10 + i, 0.3));
      const program = new Program(gpu, "vit interop");
      const size = config.imageSize;
      const images = program.tensor([3, 3, size, size], "images");
      const pass = model.forward(program, images, { train: false, inputGrad: false });
      program.keep(pass.output);
      const pixels = randn(images.size, 20 + i);
      gpu.write(images, pixels);
      gpu.submit(program);
      const features = await gpu.readF32(pass.output);
      const tensors = new Map<string, StoredTensor>();
      for (const [name, data] of await block.read()) {
        tensors.set(name, { dtype: "F32", shape: [...block.shapes.get(name)!], data });
      }
      const file = `${dir}/vit${i}`;
      const meta = { config: JSON.stringify(config) };
      await Deno.writeFile(`${file}.safetensors`, serializeSafetensors(tensors, meta));
      const test = new Map<string, StoredTensor>([
        ["images", { dtype: "F32", shape: [...images.shape], data: pixels }],
        ["features", { dtype: "F32", shape: [3, config.dim], data: features }],
      ]);
      await Deno.writeFile(`${file}_test.safetensors`, serializeSafetensors(test));
      files.push(file);
      program.destroy();
      block.destroy();
    }
    const result = await new Deno.Command(python, {
      args: ["-c", check, new URL("./fixtures", import.meta.url).pathname, ...files],
    }).output();
    if (!result.success) {
      throw new Error(`PyTorch check failed: ${new TextDecoder().decode(result.stderr)}`);
    }
    await Deno.remove(dir, { recursive: true });
  },
});
