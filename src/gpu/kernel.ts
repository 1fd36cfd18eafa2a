import type { DType } from "./tensor.ts";

/**
 * A compute kernel: one WGSL entry point and the override constants that specialise it.
 * Two kernels with the same name and constants share a pipeline.
 */
export interface Kernel {
  /** Names the kernel in errors and profiles, e.g. "conv2d_forward". */
  readonly name: string;
  readonly code: string;
  readonly entryPoint?: string;
  /** WGSL `override` values: workgroup sizes, tile shapes. */
  readonly constants?: Readonly<Record<string, number>>;
}

/** An f32 member of a kernel's uniform parameter struct; plain numbers are u32. */
export class F32 {
  constructor(readonly value: number) {}
}

/** Marks a uniform parameter as f32. */
export function f32(value: number): F32 {
  return new F32(value);
}

/** The members of a kernel's `Params` uniform struct, in declaration order, all 4 bytes. */
export type Params = readonly (number | F32)[];

/** Packs {@link Params} into bytes laid out as a WGSL struct of 4-byte scalars. */
export function packParams(params: Params): Uint8Array<ArrayBuffer> {
  // Uniform buffer bindings must be a multiple of 16 bytes.
  const bytes = new Uint8Array(Math.max(16, Math.ceil((params.length * 4) / 16) * 16));
  const view = new DataView(bytes.buffer);
  params.forEach((p, i) => {
    if (p instanceof F32) {
      view.setFloat32(i * 4, p.value, true);
    } else {
      if (!Number.isInteger(p) || p < 0 || p > 0xffffffff) {
        throw new Error(`Kernel parameter ${i} must be a u32, got ${p}`);
      }
      view.setUint32(i * 4, p, true);
    }
  });
  return bytes;
}

/** The key under which a kernel's pipeline is cached. */
export function kernelKey(kernel: Kernel): string {
  const constants = Object.entries(kernel.constants ?? {}).sort(([a], [b]) => a < b ? -1 : 1);
  return `${kernel.name}:${kernel.entryPoint ?? "main"}:${JSON.stringify(constants)}`;
}

/** The storage types of activations and their gradients: f32, or f16 with `shader-f16`. */
export type Precision = "f32" | "f16";

/**
 * The side of a tiled (GPU) GEMM kernel's output tile: 64 × 64 outputs per workgroup (4 × 4
 * per invocation), or 128 × 128 (8 × 8); see src/gpu/generate/tile.ts.
 */
export type TileSide = 64 | 128;

/** The declaration by which a shader names the type it stores activations in. */
const actF32 = "alias act = f32;";

/**
 * A kernel in a precision. A shader written for both declares `alias act = f32;`, stores
 * activations (and their gradients) as `act`, converts what it loads with `f32(…)` and what
 * it stores with `act(…)`, and computes in f32; its f16 variant is the same text with
 * `enable f16;` and `alias act = f16;` (identity conversions leave the f32 kernel as it was).
 */
export function inPrecision(kernel: Kernel, precision: Precision): Kernel {
  if (precision === "f32") return kernel;
  if (!kernel.code.includes(actF32)) {
    throw new Error(`Kernel ${kernel.name} has no f16 variant (no "${actF32}")`);
  }
  const code = `enable f16;\n${kernel.code.replace(actF32, "alias act = f16;")}`;
  return { ...kernel, name: `${kernel.name}_f16`, code };
}

/** The precision of activations of these types, which must agree: f32 or f16. */
export function precisionOf(...tensors: readonly { readonly dtype: DType }[]): Precision {
  const dtype = tensors[0].dtype;
  if ((dtype !== "f32" && dtype !== "f16") || tensors.some((t) => t.dtype !== dtype)) {
    throw new Error(`Activations of types ${tensors.map((t) => t.dtype)} in one kernel`);
  }
  return dtype;
}
