import {
  captureCheckpoint,
  type CheckpointMeta,
  decodeCheckpoint,
  encodeCheckpoint,
  loadCheckpoint,
  saveCheckpoint,
} from "../src/checkpoint.ts";
import { SelfsupError } from "../src/errors.ts";
import { parseSafetensors } from "../src/io/safetensors.ts";
import { modelFromCheckpoint, randomModel } from "../src/model.ts";
import { createOptimizer } from "../src/optim/optimizer.ts";
import { assertEquals, assertRejects, assertThrows } from "./_assert.ts";
import { testGpu } from "./_util.ts";

const architecture: CheckpointMeta["architecture"] = {
  method: "simclr",
  backbone: "resnet18",
  stem: "cifar",
  width: 4,
  projectionDim: 8,
  imageSize: 32,
};
const normalization = { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] } as const;

function meta(step = 3): CheckpointMeta {
  return {
    architecture,
    normalization,
    progress: { epoch: 1, batch: 2, step, done: false },
    optimizer: "adam",
    config: { note: "test" },
  };
}

Deno.test("a checkpoint has torchvision's names and shapes, and round-trips exactly", async () => {
  const gpu = await testGpu();
  const { block } = randomModel(gpu, architecture, normalization, 1);
  const optimizer = createOptimizer(gpu, block, { name: "adam" });
  const checkpoint = await captureCheckpoint(gpu, block, meta(), optimizer.state);
  const bytes = encodeCheckpoint(checkpoint);
  const file = parseSafetensors(bytes, "test");
  const conv1 = file.tensors.get("conv1.weight")!;
  assertEquals(conv1.shape, [4, 3, 3, 3], "conv1.weight shape");
  assertEquals(file.tensors.get("layer2.0.downsample.1.running_var")!.shape, [8], "running_var");
  const counter = file.tensors.get("layer1.0.bn2.num_batches_tracked")!;
  assertEquals([counter.dtype, counter.shape, Number(counter.data[0])], ["I64", [], 3], "counter");
  assertEquals(file.tensors.has("projector.2.weight"), true, "projector kept under its prefix");
  assertEquals(file.tensors.has("optimizer.exp_avg.backbone.conv1.weight"), true, "optimizer");
  assertEquals(file.tensors.has("fc.weight"), false, "no classifier");

  const decoded = decodeCheckpoint(bytes, "test");
  assertEquals(decoded.meta, checkpoint.meta, "metadata");
  for (const [name, values] of checkpoint.parameters) {
    assertEquals(Array.from(decoded.parameters.get(name)!), Array.from(values), name);
  }
  const restored = modelFromCheckpoint(gpu, decoded, "test");
  const again = await restored.block.read();
  for (const [name, values] of checkpoint.parameters) {
    assertEquals(Array.from(again.get(name)!), Array.from(values), `restored ${name}`);
  }
  for (const b of [block, restored.block]) b.destroy();
  optimizer.destroy();
});

Deno.test("saving is atomic: the file is whole or the previous one", async () => {
  const gpu = await testGpu();
  const { block } = randomModel(gpu, architecture, normalization, 2);
  const dir = await Deno.makeTempDir();
  const path = `${dir}/checkpoint.safetensors`;
  await saveCheckpoint(path, await captureCheckpoint(gpu, block, meta(1)));
  await saveCheckpoint(path, await captureCheckpoint(gpu, block, meta(2)));
  assertEquals((await loadCheckpoint(path)).meta.progress.step, 2, "latest step");
  assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["checkpoint.safetensors"], "files");
  block.destroy();
});

Deno.test("corrupt, truncated, foreign and mismatched checkpoints are clear errors", async () => {
  const gpu = await testGpu();
  const { block } = randomModel(gpu, architecture, normalization, 3);
  const bytes = encodeCheckpoint(await captureCheckpoint(gpu, block, meta()));
  const dir = await Deno.makeTempDir();
  await assertRejects(
    () => loadCheckpoint(`${dir}/missing.safetensors`),
    SelfsupError,
    "no such file",
  );
  assertThrows(() => decodeCheckpoint(bytes.subarray(0, 5), "x"), SelfsupError, "too short");
  assertThrows(
    () => decodeCheckpoint(bytes.subarray(0, bytes.length - 100), "x"),
    SelfsupError,
    "past the end",
  );
  const huge = bytes.slice();
  new DataView(huge.buffer).setBigUint64(0, 9n * 10n ** 9n, true);
  assertThrows(() => decodeCheckpoint(huge, "x"), SelfsupError, "exceeds file size");
  const garbage = bytes.slice();
  garbage.fill(0x7b, 8, 40);
  assertThrows(() => decodeCheckpoint(garbage, "x"), SelfsupError);
  const wider = decodeCheckpoint(bytes, "x");
  const other = { ...wider, meta: { ...wider.meta, architecture: { ...architecture, width: 8 } } };
  assertThrows(
    () => modelFromCheckpoint(gpu, other, "wider.safetensors"),
    SelfsupError,
    "wider.safetensors",
  );
  block.destroy();
});
