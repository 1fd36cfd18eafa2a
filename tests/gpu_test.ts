import { assertRejects, assertThrows } from "./_assert.ts";
import { Program } from "../src/gpu/gpu.ts";
import { f32, packParams } from "../src/gpu/kernel.ts";
import { SelfsupError } from "../src/errors.ts";
import { add } from "../src/nn/add.ts";
import { testGpu } from "./_util.ts";

Deno.test("a dispatch over more than 65,535 workgroups is folded into 2-D and runs whole", async () => {
  const gpu = await testGpu();
  const n = 65_535 * 256 + 1_000; // one row of workgroups more than one dimension allows
  const program = new Program(gpu, "fold test");
  const a = program.tensor([n], "a");
  const b = program.tensor([n], "b");
  const ones = new Float32Array(n).fill(1);
  gpu.write(a, ones);
  gpu.write(b, ones);
  const y = add(program, a, b);
  program.keep(y);
  gpu.submit(program);
  const values = await gpu.readF32(y);
  const wrong = values.findIndex((v) => v !== 2);
  if (wrong >= 0) throw new Error(`element ${wrong} of ${n} is ${values[wrong]}, not 2`);
  program.destroy();
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
  gpu.submit(program);
  const values = await gpu.readF32(d);
  if (values.some((v) => v !== 10)) throw new Error(`d is ${values[0]}, not 10`);
  assertThrows(() => add(program, d, d), Error, "has run");
  await assertRejects(() => gpu.read(c), Error, "program.keep()");
  const other = new Program(gpu, "other");
  assertThrows(() => add(other, c, c), Error, "another program");
  for (const p of [program, other]) p.destroy();
});
