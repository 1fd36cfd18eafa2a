import { SelfsupError } from "../errors.ts";
import { fileError } from "./files.ts";

/** The safetensors element types selfsup reads and writes. */
export type SafetensorsDType = "F32" | "I64" | "I32";

/** One tensor of a safetensors file. */
export interface StoredTensor {
  dtype: SafetensorsDType;
  shape: number[];
  data: Float32Array | BigInt64Array | Int32Array;
}

/** The contents of a safetensors file. */
export interface Safetensors {
  tensors: Map<string, StoredTensor>;
  /** `__metadata__`: string values only, as the format requires. */
  metadata: Record<string, string>;
}

const elementBytes: Record<SafetensorsDType, number> = { F32: 4, I64: 8, I32: 4 };

/**
 * Parses safetensors bytes: an 8-byte little-endian header length, a JSON header, then the
 * data. `source` names the file in errors.
 */
export function parseSafetensors(bytes: Uint8Array, source: string): Safetensors {
  const fail = (why: string): never => {
    throw new SelfsupError(`Cannot read ${source}: ${why}`);
  };
  if (bytes.length < 8) fail(`${bytes.length} bytes is too short for a safetensors file`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  if (headerLength > bytes.length - 8) {
    fail(`header length ${headerLength} exceeds file size ${bytes.length}`);
  }
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)));
  } catch {
    return fail("the header is not valid JSON");
  }
  const dataStart = 8 + headerLength;
  const tensors = new Map<string, StoredTensor>();
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === "__metadata__") {
      metadata = entry as Record<string, string>;
      continue;
    }
    const { dtype, shape, data_offsets: offsets } = entry as {
      dtype: SafetensorsDType;
      shape: number[];
      data_offsets: [number, number];
    };
    if (!(dtype in elementBytes)) fail(`tensor ${name} has unsupported dtype ${dtype}`);
    const count = shape.reduce((a, b) => a * b, 1);
    const [begin, end] = offsets;
    if (end - begin !== count * elementBytes[dtype]) {
      fail(`tensor ${name} of shape [${shape}] has ${end - begin} bytes of data`);
    }
    if (dataStart + end > bytes.length) fail(`tensor ${name} runs past the end of the file`);
    // Copy: the data of a tensor need not be aligned to its element size in the file.
    const raw = bytes.slice(dataStart + begin, dataStart + end).buffer;
    const data = dtype === "F32"
      ? new Float32Array(raw)
      : dtype === "I64"
      ? new BigInt64Array(raw)
      : new Int32Array(raw);
    tensors.set(name, { dtype, shape, data });
  }
  return { tensors, metadata };
}

/** Reads and parses a safetensors file. */
export async function readSafetensors(path: string): Promise<Safetensors> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new SelfsupError(`Cannot read ${path}: no such file`);
    }
    if (error instanceof Deno.errors.IsADirectory) {
      throw new SelfsupError(`Cannot read ${path}: it is a folder, not a file`);
    }
    throw fileError("read", path, error);
  }
  return parseSafetensors(bytes, path);
}

/** Serialises tensors (in insertion order) and string metadata as safetensors bytes. */
export function serializeSafetensors(
  tensors: Map<string, StoredTensor>,
  metadata: Record<string, string> = {},
): Uint8Array<ArrayBuffer> {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of tensors) {
    const length = t.data.byteLength;
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + length] };
    offset += length;
  }
  let json = JSON.stringify(header);
  // Pad with spaces so the data starts 8-byte aligned, as the reference writer does.
  json += " ".repeat((8 - ((new TextEncoder().encode(json).length) % 8)) % 8);
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  for (const t of tensors.values()) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    at += t.data.byteLength;
  }
  return out;
}
