import assert from "node:assert/strict";
import { SelfsupError } from "../src/errors.ts";
import {
  type ImageDataset,
  limit,
  packDataset,
  PackedImageDataset,
  subset,
} from "../src/data/dataset.ts";

function tiny(n: number): PackedImageDataset {
  const pixels = new Uint8Array(n * 12).map((_, k) => k % 256);
  const labels = Int32Array.from({ length: n }, (_, i) => i % 3);
  return new PackedImageDataset(pixels, labels, 2, 2, ["a", "b", "c"]);
}

Deno.test("limit takes the first n images as a view; subset copies chosen ones", () => {
  const ds = tiny(10);
  const first = limit(ds, 4) as PackedImageDataset;
  assert.equal(first.length, 4);
  assert.equal(first.pixels.buffer, ds.pixels.buffer);
  assert.deepEqual(first.image(3), ds.image(3));
  assert.equal(limit(ds, 50), ds);
  const picked = subset(ds, [7, 2]);
  assert.deepEqual([picked.label(0), picked.label(1)], [1, 2]);
  assert.deepEqual(picked.image(0), ds.image(7));
  assert.ok(picked.pixels.buffer instanceof SharedArrayBuffer);
  assert.throws(() => subset(ds, [10]), SelfsupError);
  assert.throws(() => limit(ds, -1), SelfsupError);
  assert.throws(
    () => new PackedImageDataset(new Uint8Array(5), new Int32Array(1), 2, 2, []),
    RangeError,
  );
});

Deno.test("packDataset copies any dataset into shared memory once", () => {
  const plain: ImageDataset = {
    length: 3,
    height: 1,
    width: 2,
    classNames: ["x", "y"],
    image: (i) => new Uint8Array(6).fill(i + 1),
    label: (i) => i % 2,
  };
  const packed = packDataset(plain);
  assert.ok(packed.pixels.buffer instanceof SharedArrayBuffer);
  assert.deepEqual([...packed.image(2)], [3, 3, 3, 3, 3, 3]);
  assert.deepEqual([...packed.labels], [0, 1, 0]);
  assert.equal(packDataset(packed), packed);
  // A limited view of a limited dataset is still a view (from the shared set) and is kept.
  const limited = limit(packed, 2) as PackedImageDataset;
  assert.equal(packDataset(limited), limited);
});
