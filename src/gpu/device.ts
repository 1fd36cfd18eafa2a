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
  provideRuntimeDir();
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

/**
 * Mesa's GL backend prints "XDG_RUNTIME_DIR is invalid or not set" on every start when a
 * headless Linux session has none (ssh, containers, CI). Give it a private one, as a login
 * session would; without permission to do so, leave things be.
 */
function provideRuntimeDir(): void {
  try {
    if (Deno.build.os !== "linux" || Deno.env.get("XDG_RUNTIME_DIR")) return;
    const dir = `/tmp/selfsup-runtime-${Deno.uid() ?? "user"}`;
    Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
    Deno.env.set("XDG_RUNTIME_DIR", dir);
  } catch {
    // No --allow-env or --allow-write: Mesa's warning is harmless.
  }
}
