import {
  type Checkpoint,
  type CheckpointMeta,
  loadCheckpoint,
  restoreBackbone,
} from "./checkpoint.ts";
import { initializeBlock } from "./methods/method.ts";
import {
  type Backbone,
  type BackboneConfig,
  checkBackbone,
  createBackbone,
} from "./nn/backbone.ts";
import type { Gpu } from "./gpu/gpu.ts";
import { prefixed } from "./nn/module.ts";
import { ParameterBlock } from "./nn/parameters.ts";

/** A backbone on the GPU with its parameters (named `backbone.*`), for evaluation. */
export interface LoadedBackbone {
  readonly backbone: Backbone;
  readonly block: ParameterBlock;
  /** The checkpoint's metadata, when the backbone came from one. */
  readonly meta?: CheckpointMeta;
}

/**
 * Reads a checkpoint file of any method and loads its backbone on the GPU; `adjust` may
 * change what is no parameter of it (a text encoder's pooling).
 */
export async function loadBackbone(
  gpu: Gpu,
  path: string,
  adjust?: (config: BackboneConfig) => BackboneConfig,
): Promise<LoadedBackbone> {
  return backboneFromCheckpoint(gpu, await loadCheckpoint(path), `checkpoint ${path}`, adjust);
}

/**
 * Rebuilds the backbone a checkpoint describes and loads its parameters, leaving the
 * method's heads and state in the file (a partial load); a checkpoint whose tensors do not
 * fit that backbone is refused, naming `source`.
 */
export function backboneFromCheckpoint(
  gpu: Gpu,
  checkpoint: Checkpoint,
  source: string,
  adjust: (config: BackboneConfig) => BackboneConfig = (config) => config,
): LoadedBackbone {
  checkBackbone(checkpoint.meta.architecture.backbone, source);
  const config = adjust(checkpoint.meta.architecture.backbone);
  const backbone = createBackbone(config);
  const entries = prefixed("backbone", backbone);
  const block = new ParameterBlock(gpu, entries);
  try {
    restoreBackbone(checkpoint, block, entries.map(([name]) => name), source);
  } catch (error) {
    block.destroy();
    throw error;
  }
  return { backbone, block, meta: checkpoint.meta };
}

/**
 * A randomly initialised backbone: the one a method's training starts from with this seed
 * (every method's trained block begins with the backbone's entries, drawn first from the
 * same stream), so it is the fair baseline of an evaluation.
 */
export function randomBackbone(gpu: Gpu, config: BackboneConfig, seed: number): LoadedBackbone {
  const backbone = createBackbone(config);
  const block = new ParameterBlock(gpu, prefixed("backbone", backbone));
  initializeBlock(block, seed);
  return { backbone, block };
}
