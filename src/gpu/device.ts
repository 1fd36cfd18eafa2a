import { SelfsupError } from "../errors.ts";
import { type AdapterClass, Gpu } from "./gpu.ts";

/** Options for {@link createGpu}. */
export interface GpuOptions {
  /** Force a kernel family instead of choosing from the adapter. */
  adapterClass?: AdapterClass;
  powerPreference?: GPUPowerPreference;
}

const noAdapterHelp =
  "No WebGPU adapter found. On a machine without a GPU install Mesa's software driver " +
  "(Debian/Ubuntu: apt install libgl1-mesa-dri mesa-vulkan-drivers) and, if needed, " +
  "set DENO_WEBGPU_BACKEND=vulkan or gl";

// Limits worth raising above WebGPU's defaults: the defaults cap buffers at 256 MiB and
// storage bindings at 128 MiB whatever the hardware can do.
const requestedLimits = [
  "maxBufferSize",
  "maxStorageBufferBindingSize",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxComputeWorkgroupSizeY",
  "maxComputeWorkgroupSizeZ",
  "maxStorageBuffersPerShaderStage",
  "maxComputeWorkgroupsPerDimension",
] as const;

/** Opens the default WebGPU adapter and a device that requests all of its limits. */
export async function createGpu(options: GpuOptions = {}): Promise<Gpu> {
  if (!("gpu" in navigator) || !navigator.gpu) throw new SelfsupError(noAdapterHelp);
  let adapter: GPUAdapter | null;
  try {
    adapter = await navigator.gpu.requestAdapter({ powerPreference: options.powerPreference });
  } catch {
    adapter = null;
  }
  if (!adapter) throw new SelfsupError(noAdapterHelp);
  const requiredLimits: Record<string, number> = {};
  for (const name of requestedLimits) requiredLimits[name] = adapter.limits[name];
  const requiredFeatures: GPUFeatureName[] = [];
  if (adapter.features.has("timestamp-query")) requiredFeatures.push("timestamp-query");
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
  const info = adapter.info;
  const adapterName = info.description || info.device || info.vendor || "unknown adapter";
  const adapterClass = options.adapterClass ?? classify(adapterName, info.isFallbackAdapter);
  return new Gpu(device, adapterName, adapterClass);
}

function classify(name: string, isFallback: boolean | undefined): AdapterClass {
  if (isFallback) return "cpu";
  return /llvmpipe|lavapipe|swiftshader|softpipe|warp|basic render/i.test(name) ? "cpu" : "gpu";
}
