// Initial values of parameters and statistics, as PyTorch's nn.init makes them. `random` is
// uniform on [0, 1).
import type { Initializer } from "./module.ts";

/** Every value `value` (ones for norm weights, zeros for biases). */
export const constant = (value: number): Initializer => (size) =>
  new Float32Array(size).fill(value);

/** Uniform on ±bound: PyTorch's default for Linear and Conv2d (bound 1/√fan_in). */
export function uniform(bound: number): Initializer {
  return (size, random) => Float32Array.from({ length: size }, () => (2 * random() - 1) * bound);
}

/**
 * Uniform on ±√(6 / (fanIn + fanOut)): PyTorch's `xavier_uniform_` (gain 1), which MAE uses
 * for every linear layer and the patch embedding (as a [D, C·p·p] matrix).
 */
export function xavierUniform(fanIn: number, fanOut: number): Initializer {
  return uniform(Math.sqrt(6 / (fanIn + fanOut)));
}

/** Normal with mean 0 and standard deviation `std`. */
export function normal(std: number): Initializer {
  return (size, random) => {
    const values = new Float32Array(size);
    // Box–Muller: two independent normals from two uniforms; 1 − u keeps log away from 0.
    for (let i = 0; i < size; i += 2) {
      const radius = std * Math.sqrt(-2 * Math.log(1 - random()));
      const angle = 2 * Math.PI * random();
      values[i] = radius * Math.cos(angle);
      if (i + 1 < size) values[i + 1] = radius * Math.sin(angle);
    }
    return values;
  };
}

/**
 * Normal with standard deviation `std`, redrawn outside ±bound: timm's `trunc_normal_`,
 * whose bounds are absolute (±2 by default, which at std 0.02 is 100 standard deviations).
 */
export function truncatedNormal(std: number, bound = 2): Initializer {
  const draw = normal(std);
  return (size, random) => {
    const values = draw(size, random);
    for (let i = 0; i < size; i++) {
      while (Math.abs(values[i]) > bound) values[i] = draw(1, random)[0];
    }
    return values;
  };
}
