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
  // Every parameter and running statistic of a ResNet-18 and its projection head (60 + 40 +
  // 4), and Adam's two states of each of the 64 parameters.
  const names = (m: Map<string, unknown>) => [...m.keys()].sort();
  assertEquals(checkpoint.parameters.size, 104, "tensors captured");
  assertEquals(names(decoded.parameters), names(checkpoint.parameters), "tensors decoded");
  assertEquals(names(decoded.optimizerState), ["exp_avg", "exp_avg_sq"], "optimizer states");
  for (const [state, byName] of checkpoint.optimizerState) {
    assertEquals(byName.size, 64, `${state} entries`);
    const other = decoded.optimizerState.get(state)!;
    assertEquals(names(other), names(byName), `${state} decoded`);
    for (const [name, values] of byName) {
      assertEquals(Array.from(other.get(name)!), Array.from(values), `${state} of ${name}`);
    }
  }
  for (const [name, values] of checkpoint.parameters) {
    assertEquals(Array.from(decoded.parameters.get(name)!), Array.from(values), name);
  }
  const restored = modelFromCheckpoint(gpu, decoded, "test");
  const again = await restored.block.read();
  assertEquals(names(again), names(checkpoint.parameters), "tensors restored");
  for (const [name, values] of checkpoint.parameters) {
    assertEquals(Array.from(again.get(name)!), Array.from(values), `restored ${name}`);
  }
  for (const b of [block, restored.block]) b.destroy();
  optimizer.destroy();
});

Deno.test("saving is atomic: a write that fails halfway leaves the previous file whole", async () => {
  const gpu = await testGpu();
  const { block } = randomModel(gpu, architecture, normalization, 2);
  const dir = await Deno.makeTempDir();
  const path = `${dir}/checkpoint.safetensors`;
  await saveCheckpoint(path, await captureCheckpoint(gpu, block, meta(1)));
  const previous = await Deno.readFile(path);
  // The disk fills up halfway through the next save: every file opened for writing takes
  // half of what is written to it, then fails.
  const open = Deno.open;
  let failed = 0;
  Deno.open = async (file, options) => {
    const handle = await open(file, options);
    if (!options?.write) return handle;
    let left = Math.floor(previous.length / 2);
    return Object.assign(Object.create(handle), {
      write: async (bytes: Uint8Array) => {
        if (left === 0) {
          failed++;
          throw new Deno.errors.WriteZero("No space left on device (os error 28)");
        }
        const written = await handle.write(bytes.subarray(0, left));
        left -= written;
        return written;
      },
      close: () => handle.close(),
    });
  };
  try {
    await assertRejects(
      async () => saveCheckpoint(path, await captureCheckpoint(gpu, block, meta(2))),
      Error,
      "No space left",
    );
  } finally {
    Deno.open = open;
  }
  assertEquals(failed, 1, "injected failures");
  assertEquals(
    (await Deno.readFile(path)).every((b, i) => b === previous[i]),
    true,
    "previous file unchanged",
  );
  assertEquals((await loadCheckpoint(path)).meta.progress.step, 1, "previous step");
  assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["checkpoint.safetensors"], "files");
  // Without a failure the new checkpoint replaces it.
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
