// Deterministic initial values that tests/fixtures/make_method_steps.py makes bit for bit in
// PyTorch, so that whole-step fixtures need not store the networks' initial parameters.
import { Parameter } from "../src/nn/module.ts";
import type { Entry } from "../src/nn/module.ts";

/** n values in [0, 1) with 24 bits: xorshift32 from a seed, integer arithmetic only. */
function uniforms(seed: number, n: number): Float64Array {
  let s = (Number((BigInt(seed) * 2654435761n + 1n) & 0xffffffffn) >>> 0) || 1;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    s = (s ^ (s << 13)) >>> 0;
    s = (s ^ (s >>> 17)) >>> 0;
    s = (s ^ (s << 5)) >>> 0;
    out[i] = (s >>> 8) / 16777216;
  }
  return out;
}

/**
 * Initial values of a network's entries, by role: batch-norm γ near 1 and β near 0, running
 * mean near 0 and variance in [1, 1.5), weights uniform on ±1/√fan_in, biases on ±1/4. Each
 * tensor is seeded by the index of its name in the sorted names of `entries` with `strip`
 * removed from their front (the names of the PyTorch module the fixture initialised).
 */
export function deterministicValues(
  entries: readonly Entry[],
  strip = "",
): Map<string, Float32Array> {
  const names = entries.map(([name]) => name.slice(strip.length));
  const order = [...names].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const out = new Map<string, Float32Array>();
  entries.forEach(([name, entry], i) => {
    const shape = entry.shape;
    const size = shape.reduce((a, b) => a * b, 1);
    const u = uniforms(order.indexOf(names[i]) + 1, size);
    const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
    const value = (x: number) => {
      const sym = 2 * x - 1;
      if (name.endsWith("running_mean")) return 0.1 * sym;
      if (name.endsWith("running_var")) return 1 + 0.5 * x;
      if (entry instanceof Parameter && entry.kind === "norm") {
        return name.endsWith("weight") ? 1 + 0.1 * sym : 0.1 * sym;
      }
      return shape.length > 1 ? sym / Math.sqrt(fanIn) : sym / 4;
    };
    out.set(name, Float32Array.from(u, value));
  });
  return out;
}
