// erfc for the GELU kernels, which src/gpu/kernels/transformer.ts prepends to their source.
// WGSL has no erf. This is Numerical Recipes' Chebyshev fit (erfcc), whose fractional error
// is under 1.2e-7 for every argument, so a tail such as x·Φ(x) for negative x keeps its
// relative accuracy instead of cancelling in 1 + erf(x/√2).
fn erfc(z: f32) -> f32 {
  let a = abs(z);
  let t = 1.0 / (1.0 + 0.5 * a);
  let p = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
    + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  let r = t * exp(p - a * a);
  return select(2.0 - r, r, z >= 0.0);
}
