import { type Checkpoint, type CheckpointMeta, loadCheckpoint } from "./checkpoint.ts";
import { SelfsupError } from "./errors.ts";
import { Random } from "./data/random.ts";
import type { Gpu } from "./gpu/gpu.ts";
import { SimclrModel } from "./methods/simclr.ts";
import { ParameterBlock } from "./nn/parameters.ts";

/** A model on the GPU with its parameters. */
export interface LoadedModel {
  readonly model: SimclrModel;
  readonly block: ParameterBlock;
  readonly architecture: CheckpointMeta["architecture"];
  readonly normalization: CheckpointMeta["normalization"];
  /** The checkpoint's metadata, when the model came from one. */
  readonly meta?: CheckpointMeta;
}

/** Reads a checkpoint file and rebuilds its model on the GPU. */
export async function loadModel(gpu: Gpu, path: string): Promise<LoadedModel> {
  return modelFromCheckpoint(gpu, await loadCheckpoint(path), `checkpoint ${path}`);
}

/**
 * Rebuilds the model a checkpoint describes and loads its parameters; a checkpoint whose
 * tensors do not fit that model is refused, naming `source`.
 */
export function modelFromCheckpoint(gpu: Gpu, checkpoint: Checkpoint, source: string): LoadedModel {
  const { architecture, normalization } = checkpoint.meta;
  const { stem, width, projectionDim } = architecture;
  const valid = (n: unknown) => Number.isInteger(n) && (n as number) > 0;
  if ((stem !== "cifar" && stem !== "imagenet") || !valid(width) || !valid(projectionDim)) {
    throw new SelfsupError(
      `${source} describes an unknown architecture ${JSON.stringify(architecture)}`,
    );
  }
  const model = new SimclrModel({ backbone: { stem, width }, projectionDim });
  const block = new ParameterBlock(gpu, model.entries());
  try {
    block.load(checkpoint.parameters, source);
  } catch (error) {
    block.destroy();
    throw error;
  }
  return { model, block, architecture, normalization, meta: checkpoint.meta };
}

/** A randomly initialised model, as training starts from: the baseline of an evaluation. */
export function randomModel(
  gpu: Gpu,
  architecture: CheckpointMeta["architecture"],
  normalization: CheckpointMeta["normalization"],
  seed: number,
): LoadedModel {
  const model = new SimclrModel({
    backbone: { stem: architecture.stem, width: architecture.width },
    projectionDim: architecture.projectionDim,
  });
  const block = new ParameterBlock(gpu, model.entries());
  const random = new Random(seed, 0x1417);
  block.initialize(() => random.float());
  return { model, block, architecture, normalization };
}
