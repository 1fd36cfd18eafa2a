import { SelfsupError } from "./errors.ts";
import type { Gpu } from "./gpu/gpu.ts";
import type { Tensor } from "./gpu/tensor.ts";
import { writeFileAtomically } from "./io/files.ts";
import {
  parseSafetensors,
  readSafetensors,
  type Safetensors,
  serializeSafetensors,
  type StoredTensor,
} from "./io/safetensors.ts";
import type { BackboneConfig } from "./nn/backbone.ts";
import type { TextEncoderConfig } from "./nn/text_encoder.ts";
import type { ParameterBlock } from "./nn/parameters.ts";

/**
 * Identifies the layout of a selfsup checkpoint; bumped when it changes incompatibly.
 * Format 2: every tensor that is not the backbone's is under `method.` or `optimizer.`.
 */
const checkpointFormat = "selfsup-checkpoint-2";

/** What a checkpoint records besides its tensors; stored as JSON in `__metadata__`. */
export interface CheckpointMeta {
  /** The model: enough to rebuild it and to refuse a checkpoint of another shape. */
  readonly architecture: {
    readonly method: string;
    readonly backbone: BackboneConfig;
    /** Side of the training images (absent for a text encoder). */
    readonly imageSize?: number;
    /** The text encoder beside the backbone (CLIP's). */
    readonly text?: TextEncoderConfig;
  };
  /** The per-channel normalisation the backbone was trained with, to apply at inference. */
  readonly normalization: { readonly mean: RGB; readonly std: RGB };
  /** Where training stands, for resuming: the next batch to run is `batch` of `epoch`. */
  readonly progress: {
    readonly epoch: number;
    readonly batch: number;
    readonly step: number;
    readonly done: boolean;
    /** The sum of the losses of `epoch`'s first `batch` steps, so its mean covers them all. */
    readonly lossSum?: number;
    /** The training images an epoch's batches are drawn from (not in older checkpoints). */
    readonly images?: number;
  };
  /** The optimizer whose state is stored under `optimizer.<state>.<parameter>`, if any. */
  readonly optimizer?: string;
  /** The run's configuration, for the record and for `--resume`. */
  readonly config: Record<string, unknown>;
}

/** One value per colour channel. */
export type RGB = readonly [number, number, number];

/** A checkpoint's contents: its tensors by their names in the file. */
export interface Checkpoint {
  readonly meta: CheckpointMeta;
  readonly tensors: Map<string, Float32Array>;
  /** Shapes of the tensors, as PyTorch has them. */
  readonly shapes: ReadonlyMap<string, readonly number[]>;
  /** Optimizer state by state name, then by parameter name. */
  readonly optimizerState: Map<string, Map<string, Float32Array>>;
}

/** What a checkpoint is made of on the GPU: named blocks (the trained one named "") and tensors. */
export interface CheckpointContents {
  readonly blocks: ReadonlyMap<string, ParameterBlock>;
  readonly tensors?: ReadonlyMap<string, Tensor>;
  readonly optimizerState?: ReadonlyMap<string, Tensor>;
}

const backbonePrefix = "backbone.";
const methodPrefix = "method.";
const optimizerPrefix = "optimizer.";

/**
 * The name an entry of a block has in the file. The trained block's backbone keeps
 * torchvision's (or timm's) bare names (`conv1.weight`, `layer2.0.downsample.1.running_var`)
 * so the file loads into those libraries; everything else of the method is under `method.`
 * (`method.projector.0.weight`, `method.key.backbone.conv1.weight`, `method.queue`), so one
 * prefix filter separates the backbone from any method's extras.
 */
export function fileKey(block: string, name: string): string {
  if (block === "" && name.startsWith(backbonePrefix)) return name.slice(backbonePrefix.length);
  return `${methodPrefix}${block ? `${block}.` : ""}${name}`;
}

/**
 * Reads every block, state tensor and optimizer state off the GPU into a
 * {@link Checkpoint}, with one sync for all of them.
 */
export async function captureCheckpoint(
  gpu: Gpu,
  contents: CheckpointContents,
  meta: CheckpointMeta,
): Promise<Checkpoint> {
  const blocks = [...contents.blocks];
  const extra = [...(contents.tensors ?? new Map())];
  const optimizer = [...(contents.optimizerState ?? new Map())];
  const flats = await gpu.read(
    ...blocks.flatMap(([, b]) => [b.values, b.stats]),
    ...extra.map(([, t]) => t),
    ...optimizer.map(([, t]) => t),
  ) as Float32Array[];
  const tensors = new Map<string, Float32Array>();
  const shapes = new Map<string, readonly number[]>();
  blocks.forEach(([blockName, block], i) => {
    const values = block.unpack(flats[2 * i], flats[2 * i + 1]);
    for (const [name, data] of values) {
      const key = fileKey(blockName, name);
      if (tensors.has(key)) throw new Error(`Two checkpoint tensors are named ${key}`);
      tensors.set(key, data);
      shapes.set(key, block.shapes.get(name)!);
    }
  });
  extra.forEach(([name, tensor], i) => {
    tensors.set(`${methodPrefix}${name}`, flats[2 * blocks.length + i].slice());
    shapes.set(`${methodPrefix}${name}`, tensor.shape);
  });
  const trained = contents.blocks.get("");
  const optimizerState = new Map<string, Map<string, Float32Array>>();
  optimizer.forEach(([stateName, tensor], i) => {
    const flat = flats[2 * blocks.length + extra.length + i];
    const byParameter = new Map<string, Float32Array>();
    for (const { name, begin, end } of stateRanges(trained!, tensor)) {
      byParameter.set(name, flat.slice(begin, end));
    }
    optimizerState.set(stateName, byParameter);
  });
  return { meta, tensors, shapes, optimizerState };
}

/** Serialises a checkpoint as safetensors bytes. */
export function encodeCheckpoint(checkpoint: Checkpoint): Uint8Array<ArrayBuffer> {
  const tensors = new Map<string, StoredTensor>();
  const steps = BigInt(checkpoint.meta.progress.step);
  for (const [key, values] of checkpoint.tensors) {
    const shape = [...(checkpoint.shapes.get(key) ?? [values.length])];
    tensors.set(key, { dtype: "F32", shape, data: values });
    if (!key.startsWith(methodPrefix) && key.endsWith(".running_var")) {
      // torchvision's state dict has a 0-d counter per batch norm; strict loading wants it.
      tensors.set(key.replace(/running_var$/, "num_batches_tracked"), {
        dtype: "I64",
        shape: [],
        data: BigInt64Array.of(steps),
      });
    }
  }
  for (const [stateName, byParameter] of checkpoint.optimizerState) {
    for (const [name, values] of byParameter) {
      tensors.set(`${optimizerPrefix}${stateName}.${name}`, {
        dtype: "F32",
        shape: [values.length],
        data: values,
      });
    }
  }
  const meta: Record<string, string> = { format: checkpointFormat };
  for (const [key, value] of Object.entries(checkpoint.meta)) meta[key] = JSON.stringify(value);
  return serializeSafetensors(tensors, meta);
}

/** Writes a checkpoint atomically, so a crash leaves the previous one whole. */
export async function saveCheckpoint(path: string, checkpoint: Checkpoint): Promise<void> {
  await writeFileAtomically(path, encodeCheckpoint(checkpoint));
}

/** Parses checkpoint bytes; `source` names the file in errors. */
export function decodeCheckpoint(bytes: Uint8Array, source: string): Checkpoint {
  return interpret(parseSafetensors(bytes, source), source);
}

/** Reads a checkpoint file; a missing or corrupt file is a {@link SelfsupError}. */
export async function loadCheckpoint(path: string): Promise<Checkpoint> {
  return interpret(await readSafetensors(path), `checkpoint ${path}`);
}

function interpret(file: Safetensors, source: string): Checkpoint {
  if (file.metadata.format !== checkpointFormat) {
    const found = file.metadata.format;
    throw new SelfsupError(
      found?.startsWith("selfsup-checkpoint-")
        ? `${source} is in an older layout (${found}); this selfsup reads ${checkpointFormat}`
        : `${source} is not a selfsup checkpoint (no format ${checkpointFormat})`,
    );
  }
  let meta: CheckpointMeta;
  try {
    meta = Object.fromEntries(
      Object.entries(file.metadata).filter(([k]) => k !== "format").map((
        [k, v],
      ) => [k, JSON.parse(v)]),
    ) as unknown as CheckpointMeta;
  } catch {
    throw new SelfsupError(`${source}: the checkpoint's metadata is not valid JSON`);
  }
  const rgb = (v: unknown) =>
    Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === "number" && isFinite(x));
  const { architecture, progress, normalization } = meta;
  if (
    !architecture?.backbone || typeof architecture.method !== "string" || !progress ||
    !rgb(normalization?.mean) || !rgb(normalization?.std)
  ) {
    throw new SelfsupError(`${source}: the checkpoint's metadata is incomplete`);
  }
  const tensors = new Map<string, Float32Array>();
  const shapes = new Map<string, readonly number[]>();
  const optimizerState = new Map<string, Map<string, Float32Array>>();
  for (const [key, tensor] of file.tensors) {
    if (tensor.dtype !== "F32") continue; // the num_batches_tracked counters
    const data = tensor.data as Float32Array;
    if (key.startsWith(optimizerPrefix)) {
      const rest = key.slice(optimizerPrefix.length);
      const dot = rest.indexOf(".");
      const stateName = rest.slice(0, dot);
      const byParameter = optimizerState.get(stateName) ?? new Map();
      byParameter.set(rest.slice(dot + 1), data);
      optimizerState.set(stateName, byParameter);
    } else {
      // Training never saves a non-finite parameter (trainer.ts), so one here is damage.
      const bad = data.findIndex((x) => !Number.isFinite(x));
      if (bad >= 0) {
        throw new SelfsupError(
          `${source} is damaged: ${key} holds ${
            data[bad]
          }, and a checkpoint holds only finite values`,
        );
      }
      tensors.set(key, data);
      shapes.set(key, tensor.shape);
    }
  }
  return { meta, tensors, shapes, optimizerState };
}

/** The values of a block's entries in a checkpoint, by the block's own names. */
function blockValues(checkpoint: Checkpoint, blockName: string, block: ParameterBlock) {
  const values = new Map<string, Float32Array>();
  for (const name of block.shapes.keys()) {
    const data = checkpoint.tensors.get(fileKey(blockName, name));
    if (data) values.set(name, data);
  }
  return values;
}

/**
 * Uploads a checkpoint's tensors into the blocks and state tensors of a run; a missing or
 * misshapen tensor is refused, naming `source`.
 */
export function restoreContents(
  gpu: Gpu,
  checkpoint: Checkpoint,
  contents: CheckpointContents,
  source: string,
): void {
  for (const [blockName, block] of contents.blocks) {
    block.load(blockValues(checkpoint, blockName, block), source);
  }
  for (const [name, tensor] of contents.tensors ?? new Map()) {
    const data = checkpoint.tensors.get(`${methodPrefix}${name}`);
    if (!data || data.length !== tensor.size) {
      throw new SelfsupError(`${source}: the method's ${name} is missing or misshapen`);
    }
    gpu.write(tensor, data as Float32Array<ArrayBuffer>);
  }
}

/**
 * Loads only the backbone — the block's entries that `names` lists, `backbone.*` — from a
 * checkpoint of any method, leaving the rest of the block (a new classifier) as it is: the
 * partial load that evaluation and fine-tuning use.
 */
export function restoreBackbone(
  checkpoint: Checkpoint,
  block: ParameterBlock,
  names: Iterable<string>,
  source: string,
): void {
  block.loadSome(blockValues(checkpoint, "", block), names, source);
}

/**
 * Refuses a checkpoint whose architecture differs from `expected`, naming the difference.
 */
export function assertArchitecture(
  checkpoint: Checkpoint,
  expected: CheckpointMeta["architecture"],
  source: string,
): void {
  const got = checkpoint.meta.architecture;
  for (const key of Object.keys(expected) as (keyof typeof expected)[]) {
    if (JSON.stringify(got[key]) !== JSON.stringify(expected[key])) {
      throw new SelfsupError(
        `${source} has ${key} ${JSON.stringify(got[key])}, this run needs ` +
          `${JSON.stringify(expected[key])}`,
      );
    }
  }
}

/**
 * Where each parameter's entry lies in an optimizer state tensor: a flat one, in the block's
 * layout, holds a range per parameter; a per-parameter one (Adam's `step`) one value each.
 */
function stateRanges(
  block: ParameterBlock,
  state: Tensor,
): { name: string; begin: number; end: number }[] {
  if (state.size === block.values.size) {
    return block.segments.map(({ name, offset, size }) => ({
      name,
      begin: offset,
      end: offset + size,
    }));
  }
  if (state.size === Math.max(block.segments.length, 1)) {
    return block.segments.map(({ name }, i) => ({ name, begin: i, end: i + 1 }));
  }
  throw new Error(`An optimizer state of ${state.size} values fits no layout of the block`);
}

/**
 * Uploads a checkpoint's optimizer state into the optimizer's state tensors. Every state must
 * be there, but for Adam's `step`: a checkpoint written before Adam counted its own steps has
 * none, and its updates took their bias corrections from the run's step, so every
 * parameter's count starts at the checkpoint's step and the run resumes as it would have.
 */
export function loadOptimizerState(
  gpu: Gpu,
  block: ParameterBlock,
  checkpoint: Checkpoint,
  optimizer: string,
  state: ReadonlyMap<string, Tensor>,
  source: string,
): void {
  if (checkpoint.meta.optimizer !== optimizer) {
    throw new SelfsupError(
      `${source} holds the state of optimizer ${checkpoint.meta.optimizer}, not ${optimizer}`,
    );
  }
  for (const [stateName, tensor] of state) {
    const stored = checkpoint.optimizerState.get(stateName);
    if (!stored && stateName === "step") {
      gpu.write(tensor, new Float32Array(tensor.size).fill(checkpoint.meta.progress.step));
      continue;
    }
    if (!stored) throw new SelfsupError(`${source} has no optimizer state ${stateName}`);
    const flat = new Float32Array(tensor.size);
    for (const { name, begin, end } of stateRanges(block, tensor)) {
      const values = stored.get(name);
      if (!values || values.length !== end - begin) {
        throw new SelfsupError(
          `${source}: optimizer state ${stateName} of ${name} is missing or misshapen`,
        );
      }
      flat.set(values, begin);
    }
    gpu.write(tensor, flat);
  }
}
