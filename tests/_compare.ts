// Comparison with the whole-step fixtures of tests/fixtures/deterministic.py's `compact`.
import { assertClose, type Fixture, norm } from "./_util.ts";

/** 64 elements at floor(k·n/64), as the fixture script samples a large tensor. */
function sampled(values: Float32Array): Float32Array {
  const n = values.length;
  if (n <= 64) return values;
  return Float32Array.from({ length: 64 }, (_, k) => values[Math.floor((k * n) / 64)]);
}

/**
 * Compares every tensor of `actual` with the fixture's `prefix.name` (whole) or its
 * `prefix_sample.name` and `prefix_norm.name`; the fixture must hold each one. The bound is
 * what float32 can promise: four times the deviation of PyTorch's own float32 run from the
 * float64 reference (`prefix_f32err.name`), plus 1e-5 of the tensor's largest element for
 * the summation order.
 */
export function compareCompact(
  fixture: Fixture,
  prefix: string,
  actual: Map<string, Float32Array>,
): void {
  if (actual.size === 0) throw new Error(`nothing to compare under ${prefix}`);
  for (const [name, values] of actual) {
    const whole = `${prefix}.${name}`;
    const expected = fixture.has(whole)
      ? fixture.get(whole)
      : fixture.get(`${prefix}_sample.${name}`);
    const scale = expected.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    const float32 = fixture.get(`${prefix}_f32err.${name}`)[0];
    assertClose(fixture.has(whole) ? values : sampled(values), expected, {
      atol: 4 * float32 + 1e-5 * scale + 1e-9,
      rtol: 0,
      label: whole,
    });
    if (!fixture.has(whole)) {
      const expectedNorm = fixture.get(`${prefix}_norm.${name}`);
      assertClose([norm(values)], expectedNorm, {
        atol: 4 * fixture.get(`${prefix}_norm_f32err.${name}`)[0] + 1e-5 * expectedNorm[0],
        rtol: 0,
        label: `‖${whole}‖`,
      });
    }
  }
}
