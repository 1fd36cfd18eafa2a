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
import type { ParameterBlock } from "./nn/parameters.ts";

/** Identifies the layout of a selfsup checkpoint; bumped when it changes incompatibly. */
const checkpointFormat = "selfsup-checkpoint-1";

/** What a checkpoint records besides its tensors; stored as JSON in `__metadata__`. */
export interface CheckpointMeta {
  /** The model: enough to rebuild it and to refuse a checkpoint of another shape. */
  readonly architecture: {
    readonly method: "simclr";
    readonly backbone: "resnet18";
    readonly stem: "imagenet" | "cifar";
    readonly width: number;
    readonly projectionDim: number;
    readonly imageSize: number;
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

/** A checkpoint's contents, by selfsup's parameter names (`backbone.*`, `projector.*`). */
export interface Checkpoint {
  readonly meta: CheckpointMeta;
  readonly parameters: Map<string, Float32Array>;
  /** Shapes of the parameters and running statistics, as PyTorch has them. */
  readonly shapes: ReadonlyMap<string, readonly number[]>;
  /** Optimizer state by state name, then by parameter name. */
  readonly optimizerState: Map<string, Map<string, Float32Array>>;
}

const backbonePrefix = "backbone.";
const optimizerPrefix = "optimizer.";

/**
 * The name a parameter has in the file. The backbone's are torchvision's bare names
 * (`conv1.weight`, `layer2.0.downsample.1.running_var`), so `torchvision.models.resnet18()`
 * loads them directly; everything else keeps its prefix.
 */
function fileName(name: string): string {
  return name.startsWith(backbonePrefix) ? name.slice(backbonePrefix.length) : name;
}

function isBackbone(fileKey: string): boolean {
  return !fileKey.startsWith("projector.") && !fileKey.startsWith(optimizerPrefix);
}

/**
 * Reads the parameters, running statistics and optimizer state off the GPU into a
 * {@link Checkpoint}, with one sync for all of them.
 */
export async function captureCheckpoint(
  gpu: Gpu,
  block: ParameterBlock,
  meta: CheckpointMeta,
  optimizerState: ReadonlyMap<string, Tensor> = new Map(),
): Promise<Checkpoint> {
  const [values, stats, ...flats] = await gpu.read(
    block.values,
    block.stats,
    ...optimizerState.values(),
  ) as Float32Array[];
  const state = new Map<string, Map<string, Float32Array>>();
  [...optimizerState.keys()].forEach((stateName, i) => {
    const byParameter = new Map<string, Float32Array>();
    for (const { name, offset, size } of block.segments) {
      byParameter.set(name, flats[i].slice(offset, offset + size));
    }
    state.set(stateName, byParameter);
  });
  return {
    meta,
    parameters: block.unpack(values, stats),
    shapes: block.shapes,
    optimizerState: state,
  };
}

/** Serialises a checkpoint as safetensors bytes. */
export function encodeCheckpoint(checkpoint: Checkpoint): Uint8Array<ArrayBuffer> {
  const tensors = new Map<string, StoredTensor>();
  const steps = BigInt(checkpoint.meta.progress.step);
  for (const [name, values] of checkpoint.parameters) {
    const shape = [...(checkpoint.shapes.get(name) ?? [values.length])];
    tensors.set(fileName(name), { dtype: "F32", shape, data: values });
    if (name.startsWith(backbonePrefix) && name.endsWith(".running_var")) {
      // torchvision's state dict has a 0-d counter per batch norm; strict loading wants it.
      tensors.set(fileName(name).replace(/running_var$/, "num_batches_tracked"), {
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

/**
 * Parses checkpoint bytes. {@link ParameterBlock.load} checks the tensors against the
 * model. `source` names the file in errors.
 */
export function decodeCheckpoint(bytes: Uint8Array, source: string): Checkpoint {
  return interpret(parseSafetensors(bytes, source), source);
}

/** Reads a checkpoint file; a missing or corrupt file is a {@link SelfsupError}. */
export async function loadCheckpoint(path: string): Promise<Checkpoint> {
  return interpret(await readSafetensors(path), `checkpoint ${path}`);
}

function interpret(file: Safetensors, source: string): Checkpoint {
  if (file.metadata.format !== checkpointFormat) {
    throw new SelfsupError(`${source} is not a selfsup checkpoint (no format ${checkpointFormat})`);
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
  if (!architecture || !progress || !rgb(normalization?.mean) || !rgb(normalization?.std)) {
    throw new SelfsupError(`${source}: the checkpoint's metadata is incomplete`);
  }
  const parameters = new Map<string, Float32Array>();
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
      const name = isBackbone(key) ? backbonePrefix + key : key;
      parameters.set(name, data);
      shapes.set(name, tensor.shape);
    }
  }
  return { meta, parameters, shapes, optimizerState };
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
    if (got[key] !== expected[key]) {
      throw new SelfsupError(
        `${source} has ${key} ${JSON.stringify(got[key])}, this run needs ` +
          `${JSON.stringify(expected[key])}`,
      );
    }
  }
}

/** Uploads a checkpoint's optimizer state into the optimizer's flat state tensors. */
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
    const byParameter = checkpoint.optimizerState.get(stateName);
    if (!byParameter) throw new SelfsupError(`${source} has no optimizer state ${stateName}`);
    const flat = new Float32Array(tensor.size);
    for (const { name, offset, size } of block.segments) {
      const values = byParameter.get(name);
      if (!values || values.length !== size) {
        throw new SelfsupError(
          `${source}: optimizer state ${stateName} of ${name} is missing or misshapen`,
        );
      }
      flat.set(values, offset);
    }
    gpu.write(tensor, flat);
  }
}
