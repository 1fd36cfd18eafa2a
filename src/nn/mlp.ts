import type { Program } from "../gpu/gpu.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { vitLinearInit } from "./attention.ts";
import { GELU } from "./gelu.ts";
import { Linear } from "./linear.ts";
import { type Entry, type Forward, type ForwardOptions, type Layer, prefixed } from "./module.ts";
import { Sequential } from "./sequential.ts";

/** A transformer block's MLP as timm's `Mlp`: `fc1` → GELU → `fc2`, on tokens [..., dim]. */
export class Mlp implements Layer {
  readonly fc1: Linear;
  readonly fc2: Linear;
  readonly #layers: Sequential;

  constructor(readonly dim: number, readonly hiddenDim: number) {
    this.fc1 = new Linear(dim, hiddenDim, vitLinearInit);
    this.fc2 = new Linear(hiddenDim, dim, vitLinearInit);
    this.#layers = new Sequential([this.fc1, new GELU(), this.fc2]);
  }

  entries(): Entry[] {
    return [...prefixed("fc1", this.fc1), ...prefixed("fc2", this.fc2)];
  }

  forward(program: Program, input: Tensor, options: ForwardOptions): Forward {
    return this.#layers.forward(program, input, options);
  }
}
