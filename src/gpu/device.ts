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
  const vulkanAlone = preferVulkan();
  let adapter: GPUAdapter | null;
  try {
    adapter = await navigator.gpu.requestAdapter({ powerPreference: options.powerPreference });
  } catch {
    adapter = null;
  }
  if (!adapter) {
    throw new SelfsupError(
      vulkanAlone
        ? `${noAdapterHelp}. selfsup asked for Vulkan alone, as a Vulkan driver is installed: ` +
          "DENO_WEBGPU_BACKEND=gl uses GL instead"
        : noAdapterHelp,
    );
  }
  const requiredLimits: Record<string, number> = {};
  for (const name of requestedLimits) requiredLimits[name] = adapter.limits[name];
  // Timestamps for the profile; f16 storage and arithmetic for the f16 kernels.
  const wanted: GPUFeatureName[] = ["timestamp-query", "shader-f16"];
  const requiredFeatures = wanted.filter((name) => adapter.features.has(name));
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

// Where Linux's Vulkan loader finds installed drivers (their JSON manifests).
const vulkanDriverFolders = [
  "/usr/share/vulkan/icd.d",
  "/usr/local/share/vulkan/icd.d",
  "/etc/vulkan/icd.d",
];

/**
 * On Linux wgpu lists GL adapters through EGL beside the Vulkan ones, which loads Mesa's GL
 * stack even when the adapter it returns is a Vulkan one; a process with several JavaScript
 * threads that did so (the test runner's modules, workers) can then abort as it exits, in
 * glibc ("double free or corruption": a thread's EGL state freed while the process unloads
 * EGL). Six test modules using WebGPU aborted at exit in 6–8 of 100 runs, none in 100 with
 * Vulkan alone. So where a Vulkan driver is installed and the user chose no backend, ask for
 * Vulkan alone; returns whether it did. Without permission to read the environment and the
 * driver folders, leaves the choice to wgpu, prompting for nothing.
 */
function preferVulkan(): boolean {
  const variable = "DENO_WEBGPU_BACKEND";
  try {
    if (!granted({ name: "env", variable }) || Deno.env.get(variable)) return false;
    if (!vulkanDriverInstalled()) return false;
    Deno.env.set(variable, "vulkan");
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether Linux's Vulkan loader finds an installed driver: one named by VK_DRIVER_FILES or
 * VK_ICD_FILENAMES, or a manifest in its standard folders; false where it may not look (a
 * library caller without permission is not prompted for it).
 */
export function vulkanDriverInstalled(): boolean {
  if (Deno.build.os !== "linux") return false;
  const named = ["VK_DRIVER_FILES", "VK_ICD_FILENAMES"].some((variable) =>
    granted({ name: "env", variable }) && Boolean(Deno.env.get(variable))
  );
  return named || vulkanDriverFolders.some((path) => {
    try {
      if (!granted({ name: "read", path })) return false;
      return [...Deno.readDirSync(path)].some((entry) => entry.name.endsWith(".json"));
    } catch {
      return false;
    }
  });
}

function granted(permission: Deno.PermissionDescriptor): boolean {
  return Deno.permissions.querySync(permission).state === "granted";
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
