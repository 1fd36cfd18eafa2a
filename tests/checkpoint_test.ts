import {
  captureCheckpoint,
  type CheckpointMeta,
  decodeCheckpoint,
  encodeCheckpoint,
  loadCheckpoint,
  loadOptimizerState,
  restoreContents,
  saveCheckpoint,
} from "../src/checkpoint.ts";
import { SelfsupError } from "../src/errors.ts";
import type { Tensor } from "../src/gpu/tensor.ts";
import { parseSafetensors, serializeSafetensors } from "../src/io/safetensors.ts";
import type { MethodRun } from "../src/methods/method.ts";
import { moco } from "../src/methods/moco.ts";
import { buildClassifier } from "../src/methods/supervised.ts";
import { backboneFromCheckpoint, randomBackbone } from "../src/model.ts";
import type { BackboneConfig } from "../src/nn/backbone.ts";
import type { ParameterBlock } from "../src/nn/parameters.ts";
import { createOptimizer } from "../src/optim/optimizer.ts";
import { checkpointContents } from "../src/trainer.ts";
import { assertEquals, assertRejects, assertThrows } from "./_assert.ts";
import { testGpu } from "./_util.ts";

const backbone: BackboneConfig = { name: "resnet18", stem: "cifar", width: 4 };
const normalization = { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] } as const;

function meta(step = 3, method = "moco"): CheckpointMeta {
  return {
    architecture: { method, backbone, imageSize: 32 },
    normalization,
    progress: { epoch: 1, batch: 2, step, done: false },
    optimizer: "adam",
    config: { note: "test" },
  };
}

/** A MoCo run: a trained block, a key-encoder block and a queue, all named in the file. */
async function mocoRun(seed: number): Promise<MethodRun> {
  const gpu = await testGpu();
  const options = moco.validate({ queueSize: 16, projectionDim: 8, hiddenDim: 8, bnSplits: 2 }, 4);
  return moco.build(
    { gpu, backbone, batchSize: 4, totalSteps: 10, stepsPerEpoch: 5, seed },
    options,
  );
}

Deno.test("a checkpoint has torchvision's names for the backbone, method. and optimizer. for the rest, and round-trips exactly", async () => {
  const gpu = await testGpu();
  const run = await mocoRun(1);
  const optimizer = createOptimizer(gpu, run.trainable, { name: "adam" });
  // Adam's step count per parameter, as if some had been frozen for a while.
  const counts = Float32Array.from(run.trainable.segments, (_, i) => 3 - (i % 2)) as Float32Array<
    ArrayBuffer
  >;
  gpu.write(optimizer.state.get("step")!, counts);
  const contents = checkpointContents(run, optimizer);
  const checkpoint = await captureCheckpoint(gpu, contents, meta());
  const bytes = encodeCheckpoint(checkpoint);
  const file = parseSafetensors(bytes, "test");
  assertEquals(file.tensors.get("conv1.weight")!.shape, [4, 3, 3, 3], "conv1.weight shape");
  assertEquals(file.tensors.get("layer2.0.downsample.1.running_var")!.shape, [8], "running_var");
  const counter = file.tensors.get("layer1.0.bn2.num_batches_tracked")!;
  assertEquals([counter.dtype, counter.shape, Number(counter.data[0])], ["I64", [], 3], "counter");
  // Everything not the backbone's is under one of two prefixes, whatever the method.
  const bare = [...file.tensors.keys()].filter((k) =>
    !k.startsWith("method.") && !k.startsWith("optimizer.")
  );
  assertEquals(
    bare.every((k) => /^(conv1|bn1|layer[1-4])\./.test(k)),
    true,
    `bare names are torchvision's: ${bare.filter((k) => !/^(conv1|bn1|layer)/.test(k))}`,
  );
  for (
    const key of [
      "method.projector.0.weight",
      "method.key.backbone.conv1.weight",
      "method.key.projector.2.bias",
      "method.key.backbone.bn1.running_mean",
      "method.queue",
      "optimizer.exp_avg.backbone.conv1.weight",
      "optimizer.step.backbone.conv1.weight",
    ]
  ) {
    assertEquals(file.tensors.has(key), true, key);
  }
  assertEquals(file.tensors.get("method.queue")!.shape, [16, 8], "queue shape");
  assertEquals(file.tensors.has("fc.weight"), false, "no classifier");

  const decoded = decodeCheckpoint(bytes, "test");
  assertEquals(decoded.meta, checkpoint.meta, "metadata");
  // Every parameter and running statistic of the query encoder and its head (60 + 40 + 4
  // at width 4), the key encoder's again, and the queue; Adam's two states of each of the 64
  // trained parameters.
  const names = (m: Map<string, unknown>) => [...m.keys()].sort();
  assertEquals(checkpoint.tensors.size, 2 * 104 + 1, "tensors captured");
  assertEquals(names(decoded.tensors), names(checkpoint.tensors), "tensors decoded");
  assertEquals(
    names(decoded.optimizerState),
    ["exp_avg", "exp_avg_sq", "step"],
    "optimizer states",
  );
  assertEquals(file.tensors.get("optimizer.step.backbone.conv1.weight")!.shape, [1], "a count");
  for (const [state, byName] of checkpoint.optimizerState) {
    assertEquals(byName.size, 64, `${state} entries`);
    const other = decoded.optimizerState.get(state)!;
    assertEquals(names(other), names(byName), `${state} decoded`);
    for (const [name, values] of byName) {
      assertEquals(Array.from(other.get(name)!), Array.from(values), `${state} of ${name}`);
    }
  }
  for (const [name, values] of checkpoint.tensors) {
    assertEquals(Array.from(decoded.tensors.get(name)!), Array.from(values), name);
  }
  // Restored into a run built from another seed, every block and tensor comes back.
  const other = await mocoRun(2);
  restoreContents(gpu, decoded, checkpointContents(other, optimizer), "test");
  const again = await captureCheckpoint(gpu, checkpointContents(other, optimizer), meta());
  assertEquals(names(again.tensors), names(checkpoint.tensors), "tensors restored");
  for (const [name, values] of checkpoint.tensors) {
    assertEquals(Array.from(again.tensors.get(name)!), Array.from(values), `restored ${name}`);
  }
  // Adam's counts come back; a checkpoint from before Adam kept them resumes every
  // parameter's count at the checkpoint's step, which the host's bias corrections used.
  const resumed = createOptimizer(gpu, other.trainable, { name: "adam" });
  const count = resumed.state.get("step")!;
  loadOptimizerState(gpu, other.trainable, decoded, "adam", resumed.state, "test");
  assertEquals([...(await gpu.read(count))[0]], [...counts], "step counts restored");
  decoded.optimizerState.delete("step");
  loadOptimizerState(gpu, other.trainable, decoded, "adam", resumed.state, "test");
  assertEquals(
    [...(await gpu.read(count))[0]],
    [...counts].map(() => 3),
    "step counts of an older checkpoint",
  );
  decoded.optimizerState.delete("exp_avg");
  assertThrows(
    () => loadOptimizerState(gpu, other.trainable, decoded, "adam", resumed.state, "test"),
    SelfsupError,
    "test has no optimizer state exp_avg",
  );
  for (const r of [run, other]) r.destroy();
  for (const o of [optimizer, resumed]) o.destroy();
});

Deno.test("the backbone loads alone from any method's checkpoint, and a fine-tuned one keeps torchvision's fc", async () => {
  const gpu = await testGpu();
  const run = await mocoRun(3);
  const contents = { blocks: new Map([["", run.trainable]]) as Map<string, ParameterBlock> };
  const checkpoint = decodeCheckpoint(
    encodeCheckpoint(await captureCheckpoint(gpu, contents, meta())),
    "test",
  );
  const loaded = backboneFromCheckpoint(gpu, checkpoint, "test");
  const trained = await run.trainable.read();
  for (const [name, values] of await loaded.block.read()) {
    assertEquals(Array.from(values), Array.from(trained.get(name)!), name);
  }
  // A classifier's head is torchvision's fc; its backbone loads on its own as well.
  const classifier = buildClassifier(
    { gpu, backbone, batchSize: 4, totalSteps: 1, stepsPerEpoch: 1, seed: 0 },
    { numClasses: 3 },
  );
  const tuned = encodeCheckpoint(
    await captureCheckpoint(
      gpu,
      { blocks: new Map([["", classifier.trainable]]) as Map<string, ParameterBlock> },
      meta(3, "supervised"),
    ),
  );
  const file = parseSafetensors(tuned, "test");
  assertEquals(file.tensors.get("fc.weight")!.shape, [3, 32], "fc.weight");
  backboneFromCheckpoint(gpu, decodeCheckpoint(tuned, "tuned"), "tuned").block.destroy();
  for (const b of [loaded.block]) b.destroy();
  run.destroy();
  classifier.destroy();
});

Deno.test("saving is atomic: a write that fails halfway leaves the previous file whole", async () => {
  const gpu = await testGpu();
  const { block } = randomBackbone(gpu, backbone, 2);
  const contents = { blocks: new Map([["", block]]) };
  const dir = await Deno.makeTempDir();
  const path = `${dir}/checkpoint.safetensors`;
  await saveCheckpoint(path, await captureCheckpoint(gpu, contents, meta(1)));
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
      async () => saveCheckpoint(path, await captureCheckpoint(gpu, contents, meta(2))),
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
  await saveCheckpoint(path, await captureCheckpoint(gpu, contents, meta(2)));
  assertEquals((await loadCheckpoint(path)).meta.progress.step, 2, "latest step");
  assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["checkpoint.safetensors"], "files");
  block.destroy();
});

Deno.test("corrupt, truncated, foreign, old and mismatched checkpoints are clear errors", async () => {
  const gpu = await testGpu();
  const { block } = randomBackbone(gpu, backbone, 3);
  const bytes = encodeCheckpoint(
    await captureCheckpoint(gpu, { blocks: new Map([["", block]]) }, meta()),
  );
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
  const old = serializeSafetensors(new Map(), { format: "selfsup-checkpoint-1" });
  assertThrows(() => decodeCheckpoint(old, "old.safetensors"), SelfsupError, "older layout");
  const decoded = decodeCheckpoint(bytes, "x");
  const wider = {
    ...decoded,
    meta: {
      ...decoded.meta,
      architecture: { ...decoded.meta.architecture, backbone: { ...backbone, width: 8 } },
    },
  };
  assertThrows(
    () => backboneFromCheckpoint(gpu, wider, "wider.safetensors"),
    SelfsupError,
    "wider.safetensors",
  );
  const state = new Map<string, Tensor>([["queue", block.values]]);
  assertThrows(
    () => restoreContents(gpu, decoded, { blocks: new Map(), tensors: state }, "no-queue"),
    SelfsupError,
    "queue is missing",
  );
  block.destroy();
});
