import type { Program } from "../gpu/gpu.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { type Entry, type Forward, type ForwardOptions, type Layer, prefixed } from "./module.ts";

/** Layers applied in order; backward runs them in exact reverse order. Children are named 0, 1, …. */
export class Sequential implements Layer {
  constructor(readonly layers: readonly Layer[]) {}

  entries(): Entry[] {
    return this.layers.flatMap((layer, i) => prefixed(String(i), layer));
  }

  forward(program: Program, input: Tensor, options: ForwardOptions): Forward {
    const passes: Forward[] = [];
    let x = input;
    for (const [i, layer] of this.layers.entries()) {
      const pass = layer.forward(program, x, { ...options, inputGrad: i > 0 || options.inputGrad });
      passes.push(pass);
      x = pass.output;
    }
    return {
      output: x,
      backward: (p, gradOutput) => {
        let grad: Tensor | undefined = gradOutput;
        for (let i = passes.length - 1; i >= 0 && grad; i--) grad = passes[i].backward(p, grad);
        return grad;
      },
    };
  }
}
