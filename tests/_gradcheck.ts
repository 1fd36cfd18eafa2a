// Finite-difference checks of analytic gradients: catch what fixed fixtures miss (odd sizes,
// stride 2, batch 1, channel counts that are not multiples of 4).
import { norm, randn } from "./_util.ts";

export interface GradcheckOptions {
  /** Step of the central difference. */
  eps?: number;
  /** Allowed error, relative to ‖g‖ along a direction and to max|g| at a coordinate. */
  rtol?: number;
  directions?: number;
  coordinates?: number;
  seed?: number;
}

/**
 * Compares `grad`, the claimed gradient of `loss` at `x`, with central differences of `loss`
 * along the gradient itself, along random directions and at single coordinates (the
 * largest-gradient one and random ones). `loss` must not keep `x`'s buffer: it is perturbed
 * in place between calls.
 *
 * Each directional derivative is allowed an error of rtol·‖g‖, which is its own size: along
 * the unit gradient it is ‖g‖, so a gradient off by a factor shows whatever else is right;
 * along a direction d of N(0, 1) entries both d·g and d·e, for an error e of the gradient,
 * are of the size of ‖g‖ and ‖e‖, so an error of 5% of ‖g‖ moves it about 5·rtol times the
 * bound. (A bound of rtol·‖d‖·‖g‖ grows with ‖d‖ ≈ √n: 27% of ‖g‖ for a 7×7 weight.)
 */
export async function checkGradient(
  label: string,
  loss: (x: Float32Array<ArrayBuffer>) => Promise<number>,
  x: Float32Array<ArrayBuffer>,
  grad: ArrayLike<number>,
  { eps = 1e-3, rtol = 1e-2, directions = 2, coordinates = 3, seed = 7 }: GradcheckOptions = {},
): Promise<void> {
  const base = x.slice();
  const gradNorm = norm(grad);
  const central = async (direction: (i: number) => number) => {
    const probe = base.slice();
    for (let i = 0; i < probe.length; i++) probe[i] = base[i] + eps * direction(i);
    const plus = await loss(probe);
    for (let i = 0; i < probe.length; i++) probe[i] = base[i] - eps * direction(i);
    const minus = await loss(probe);
    return (plus - minus) / (2 * eps);
  };
  const failures: string[] = [];
  const along = async (name: string, d: ArrayLike<number>) => {
    let analytic = 0;
    for (let i = 0; i < x.length; i++) analytic += d[i] * grad[i];
    const numeric = await central((i) => d[i]);
    if (!(Math.abs(numeric - analytic) <= rtol * gradNorm + 1e-6)) {
      failures.push(`${name}: finite difference ${numeric}, gradient ${analytic}`);
    }
  };
  if (gradNorm > 0) await along("along the gradient", Array.from(grad, (g) => g / gradNorm));
  for (let k = 0; k < directions; k++) await along(`direction ${k}`, randn(x.length, seed + k));
  let largest = 0;
  for (let i = 1; i < x.length; i++) if (Math.abs(grad[i]) > Math.abs(grad[largest])) largest = i;
  const picks = [largest];
  for (let k = 1; k < coordinates; k++) {
    picks.push(Math.floor(((k * 2654435761) % 4294967296) / 4294967296 * x.length));
  }
  const maxGrad = Math.abs(grad[largest]);
  for (const i of picks) {
    const numeric = await central((j) => (j === i ? 1 : 0));
    if (!(Math.abs(numeric - grad[i]) <= rtol * maxGrad + 1e-6)) {
      failures.push(`element ${i}: finite difference ${numeric}, gradient ${grad[i]}`);
    }
  }
  if (failures.length) throw new Error(`${label} gradient check failed: ${failures.join("; ")}`);
}

/** Σ r·y in float64: the scalar whose gradient with respect to y is r. */
export function dot(r: ArrayLike<number>, y: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < y.length; i++) sum += r[i] * y[i];
  return sum;
}
