/** Element types a tensor can hold. */
export type DType = "f32" | "i32" | "u32" | "f16";

/** Bytes per element of each type. */
export const dtypeBytes: Readonly<Record<DType, number>> = { f32: 4, i32: 4, u32: 4, f16: 2 };

/**
 * Bytes of memory for `size` elements of `dtype`: rounded up to 4, since a storage binding's
 * size must be a multiple of 4 (an odd number of f16s still binds whole).
 */
export function tensorBytes(size: number, dtype: DType): number {
  return Math.ceil((size * dtypeBytes[dtype]) / 4) * 4;
}

/**
 * The memory of a temporary tensor, which its program assigns only when it plans the
 * buffers of all its temporaries (see `Program.temp`).
 */
export class Allocation {
  buffer?: GPUBuffer;
  /** Index of the first and last operation of the owning program that use it. */
  first = Infinity;
  last = -1;
  /** Kept whole for the program's life, so the host may read or write it. */
  kept = false;

  constructor(readonly bytes: number, readonly label: string, readonly owner: object) {}
}

/**
 * A view of `size` elements of a GPU buffer, with a shape. Tensors do not own their
 * buffer: a {@link Program} or a parameter block does, so many tensors can share one buffer
 * (every parameter lives in one flat block, as do their gradients).
 */
export class Tensor {
  readonly size: number;
  readonly #memory: GPUBuffer | Allocation;

  constructor(
    memory: GPUBuffer | Allocation,
    readonly shape: readonly number[],
    /** Offset of the first element in the buffer, in elements. */
    readonly offset = 0,
    readonly dtype: DType = "f32",
  ) {
    this.#memory = memory;
    this.size = shapeSize(shape);
    const bytes = memory instanceof Allocation ? memory.bytes : memory.size;
    if (this.byteOffset + this.byteLength > bytes) {
      throw new Error(`Tensor [${shape}] at element ${offset} overruns a ${bytes}-byte buffer`);
    }
  }

  /** The temporary memory this tensor lives in, if it is a program's temporary. */
  get allocation(): Allocation | undefined {
    return this.#memory instanceof Allocation ? this.#memory : undefined;
  }

  get buffer(): GPUBuffer {
    const memory = this.#memory;
    if (!(memory instanceof Allocation)) return memory;
    if (!memory.buffer) {
      throw new Error(
        `${memory.label} is a temporary whose program has not planned its memory yet`,
      );
    }
    return memory.buffer;
  }

  get byteOffset(): number {
    return this.offset * dtypeBytes[this.dtype];
  }

  /** The bytes the elements span, rounded up to 4 (what a binding of them covers). */
  get byteLength(): number {
    return tensorBytes(this.size, this.dtype);
  }

  /** The same elements under another shape of equal size. */
  reshape(shape: readonly number[]): Tensor {
    if (shapeSize(shape) !== this.size) {
      throw new Error(`Cannot reshape [${this.shape}] to [${shape}]`);
    }
    return new Tensor(this.#memory, shape, this.offset, this.dtype);
  }

  /** `size` elements starting `offset` elements into this tensor, as a tensor of `shape`. */
  slice(offset: number, shape: readonly number[]): Tensor {
    if (offset + shapeSize(shape) > this.size) {
      throw new Error(`Slice [${shape}] at ${offset} overruns tensor [${this.shape}]`);
    }
    // Copies and bindings start at whole 4-byte words.
    if (((this.offset + offset) * dtypeBytes[this.dtype]) % 4 !== 0) {
      throw new Error(`An ${this.dtype} slice must start at an even element, not ${offset}`);
    }
    return new Tensor(this.#memory, shape, this.offset + offset, this.dtype);
  }

  binding(): GPUBufferBinding {
    return { buffer: this.buffer, offset: this.byteOffset, size: this.byteLength };
  }
}

/** The number of elements of a shape. */
export function shapeSize(shape: readonly number[]): number {
  let size = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`Invalid shape [${shape}]`);
    size *= d;
  }
  return size;
}
