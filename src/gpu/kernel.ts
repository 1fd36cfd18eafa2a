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
