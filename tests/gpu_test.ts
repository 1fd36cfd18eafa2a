import { assertEquals, assertRejects, assertThrows } from "./_assert.ts";
import { Gpu, Program } from "../src/gpu/gpu.ts";
import { f32, packParams } from "../src/gpu/kernel.ts";
import { SelfsupError } from "../src/errors.ts";
import { vulkanDriverInstalled } from "../src/gpu/device.ts";
import { add } from "../src/nn/add.ts";
import type { Tensor } from "../src/gpu/tensor.ts";
import { testGpu } from "./_util.ts";

// Each workgroup counts itself at its linear index, and the first records the grid it ran in.
const gridProbe = {
  name: "grid_probe",
  code: `
struct Params { n: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> seen: array<u32>;
@group(0) @binding(2) var<storage, read_write> grid: array<u32>;
@compute @workgroup_size(1)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  if (wid.x == 0u && wid.y == 0u && wid.z == 0u) { grid[0] = nwg.x; grid[1] = nwg.y; grid[2] = nwg.z; }
  let i = wid.x + wid.y * nwg.x;
  if (i < params.n) { seen[i] += 1u; }
}`,
};

Deno.test("a dispatch over more than 65,535 workgroups is folded into 2-D and runs whole", async () => {
  // A device with WebGPU's default limits, whatever the adapter allows: 65,535 workgroups per
  // dimension, so the fold happens on every adapter.
  const adapter = await navigator.gpu.requestAdapter();
  const gpu = new Gpu(await adapter!.requestDevice(), "default limits", "cpu");
  const max = gpu.limits.maxComputeWorkgroupsPerDimension;
  assertEquals(max, 65_535, "the default limit");
  const program = new Program(gpu, "fold test");
  // Two rows and a bit: the fold must take three rows of equal width.
  const n = 2 * max + 1_000;
  const seen = program.tensor([n], "seen", "u32");
  const grid = program.tensor([3], "grid", "u32");
  program.clear(seen);
  program.dispatch(gridProbe, [seen, grid], n, [n]);
  // And a real kernel over more elements than 65,535 workgroups of 256 cover.
  const size = max * 256 + 1_000;
  const a = program.tensor([size], "a");
  const b = program.tensor([size], "b");
  const ones = new Float32Array(size).fill(1);
  gpu.write(a, ones);
  gpu.write(b, ones);
  const y = add(program, a, b);
  program.keep(y);
  gpu.submit(program);
  const [counts, dims, values] = await gpu.read(seen, grid, y);
  const rows = Math.ceil(n / max);
  assertEquals([...dims], [Math.ceil(n / rows), rows, 1], "the folded grid");
  const wrongCount = counts.findIndex((c) => c !== 1);
  if (wrongCount >= 0) throw new Error(`workgroup ${wrongCount} ran ${counts[wrongCount]} times`);
  const wrong = values.findIndex((v) => v !== 2);
  if (wrong >= 0) throw new Error(`element ${wrong} of ${size} is ${values[wrong]}, not 2`);
  program.destroy();
  gpu.destroy();
});

Deno.test("a WGSL error names its kernel", async () => {
  const gpu = await testGpu();
  const program = new Program(gpu, "bad kernel");
  const t = program.tensor([4], "t");
  program.dispatch(
    { name: "broken_kernel", code: "@compute @workgroup_size(1) fn main( {" },
    [t],
    1,
  );
  await assertRejects(() => gpu.sync(), Error, "broken_kernel");
  program.destroy();
});

Deno.test("a tensor larger than the adapter can bind is a clear error, not a crash", async () => {
  const gpu = await testGpu();
  const tooMany = gpu.limits.maxStorageBufferBindingSize / 4 + 1024;
  assertThrows(() => gpu.tensor([tooMany], "huge activation"), SelfsupError, "smaller batch");
});

Deno.test("f16 tensors: 2-byte elements, an odd count bound and written whole, host types checked", async () => {
  const gpu = await testGpu();
  const t = gpu.tensor([5], "five f16s", "f16");
  assertEquals([t.byteLength, t.buffer.size >= 12], [12, true]);
  const values = Float16Array.of(1.5, -2, 65504, 2 ** -14, 0.1);
  gpu.write(t, values);
  const [back] = await gpu.read(t);
  assertEquals([back.constructor.name, [...back]], ["Float16Array", [...values]]);
  assertThrows(() => gpu.write(t, new Float32Array(5)), Error, "Float32Array into f16 tensor");
  // A slice at an odd element would start mid-word: no copy or binding could reach it.
  assertEquals(t.slice(2, [3]).byteOffset, 4);
  assertThrows(() => t.slice(1, [2]), Error, "must start at an even element");
  const f32Tensor = gpu.tensor([2], "f32");
  assertThrows(() => gpu.write(f32Tensor, new Float16Array(2)), Error, "f32 tensor");
  gpu.release(t.buffer);
  gpu.release(f32Tensor.buffer);
});

Deno.test("guarded dispatches run only while their flag is 0, decided on the GPU", async () => {
  const gpu = await testGpu();
  const program = new Program(gpu, "guard test");
  const a = program.tensor([300], "a");
  const b = program.tensor([300], "b");
  const flag = program.tensor([1], "flag", "u32");
  const sum = add(program, a, b); // a temporary used inside the guard as well
  let twice!: Tensor;
  program.guard(flag, () => {
    twice = add(program, sum, b);
  });
  const after = add(program, sum, a); // after the guard: always runs
  program.keep(sum, twice, after);
  assertEquals(program.dispatchCount, 4); // the gate included
  const run = async (av: number, flagValue: number) => {
    gpu.write(a, new Float32Array(300).fill(av));
    gpu.write(b, new Float32Array(300).fill(1));
    gpu.write(flag, Uint32Array.of(flagValue));
    gpu.submit(program);
    return (await gpu.read(sum, twice, after)).map((t) => [t[0], t[299]]);
  };
  assertEquals(await run(1, 0), [[2, 2], [3, 3], [3, 3]]);
  assertEquals(await run(5, 1), [[6, 6], [3, 3], [11, 11]]); // the guarded add kept its old values
  assertEquals(await run(2, 0), [[3, 3], [4, 4], [5, 5]]);
  assertThrows(() => program.guard(sum as Tensor, () => {}), Error, "has run");
  program.destroy();
});

Deno.test("kernel parameters pack as 4-byte scalars padded to 16 bytes", () => {
  const bytes = packParams([3, f32(0.5), 7]);
  const view = new DataView(bytes.buffer);
  if (bytes.length !== 16) throw new Error(`length ${bytes.length}`);
  if (view.getUint32(0, true) !== 3 || view.getFloat32(4, true) !== 0.5) throw new Error("packing");
  assertThrows(() => packParams([-1]), Error, "u32");
});

Deno.test("temporaries share memory only once their uses are over", async () => {
  const gpu = await testGpu();
  const program = new Program(gpu, "plan test");
  const x = program.tensor([1000], "x");
  const ones = new Float32Array(1000).fill(1);
  gpu.write(x, ones);
  // a = x + x (2), b = a + a (4), c = b + x (5), d = c + c (10): a dies when b is made,
  // b when c is, so c may take a's buffer but never b's, and d may take b's.
  const a = add(program, x, x);
  const b = add(program, a, a);
  const c = add(program, b, x);
  const d = add(program, c, c);
  program.keep(d);
  assertThrows(() => gpu.write(a, ones), Error, "program.keep()");
  const before = gpu.bytesInUse;
  gpu.submit(program);
  const values = await gpu.readF32(d);
  if (values.some((v) => v !== 10)) throw new Error(`d is ${values[0]}, not 10`);
  // Planned on the first submit: c took a's buffer and b has its own (d, kept, has had its
  // own since keep()).
  assertEquals([c.buffer === a.buffer, b.buffer !== a.buffer], [true, true], "shared buffers");
  assertEquals(gpu.bytesInUse - before, 2 * 4096, "bytes of a's buffer (c's too) and b's");
  assertThrows(() => add(program, d, d), Error, "has run");
  await assertRejects(() => gpu.read(c), Error, "program.keep()");
  const other = new Program(gpu, "other");
  assertThrows(() => add(other, c, c), Error, "another program");
  for (const p of [program, other]) p.destroy();
});

// Linux with a Vulkan driver installed (this CI's lavapipe): createGpu asks for Vulkan alone,
// so Mesa's GL stack is never loaded (see preferVulkan in src/gpu/device.ts); a backend the
// user chose is left alone.
Deno.test({
  name: "with a Vulkan driver on Linux, createGpu asks for Vulkan alone unless told otherwise",
  ignore: !vulkanDriverInstalled(),
  fn: async () => {
    const script = await Deno.makeTempFile({ suffix: ".ts" });
    const device = new URL("../src/gpu/device.ts", import.meta.url).href;
    await Deno.writeTextFile(
      script,
      `import { createGpu } from "${device}";\n` +
        "await createGpu();\n" +
        'const egl = Deno.readTextFileSync("/proc/self/maps").includes("libEGL");\n' +
        'console.log(JSON.stringify([Deno.env.get("DENO_WEBGPU_BACKEND") ?? null, egl]));\n',
    );
    const run = async (backend?: string) => {
      const env = { ...Deno.env.toObject() };
      delete env.DENO_WEBGPU_BACKEND;
      if (backend) env.DENO_WEBGPU_BACKEND = backend;
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", script],
        env,
        clearEnv: true,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stderr = new TextDecoder().decode(out.stderr);
      assertEquals(out.code, 0, `createGpu with backend ${backend ?? "unset"}: ${stderr}`);
      return JSON.parse(new TextDecoder().decode(out.stdout));
    };
    try {
      assertEquals(await run(), ["vulkan", false], "no backend chosen: [backend, EGL loaded]");
      assertEquals(await run("gl"), ["gl", true], "GL chosen: [backend, EGL loaded]");
    } finally {
      await Deno.remove(script);
    }
  },
});
