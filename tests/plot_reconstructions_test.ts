import { pngDecoder } from "../src/deps.ts";
import type { Reconstructions } from "../src/methods/method.ts";
import { reconstructionsPng } from "../src/plot_reconstructions.ts";
import { assertEquals } from "./_assert.ts";

Deno.test("reconstructions draw as a PNG grid: an image a row, four pictures a row", async () => {
  // Two 2×2 images, each picture of each a constant: image 1 is image 0's plus a half.
  const picture = (value: number) =>
    Float32Array.from({ length: 2 * 3 * 2 * 2 }, (_, i) => value + (i >= 12 ? 0.5 : 0));
  const shown: Reconstructions = {
    shape: [2, 3, 2, 2],
    original: picture(0),
    masked: picture(-1),
    reconstruction: picture(10),
    pasted: picture(0.5),
  };
  const mean = [0.5, 0.25, 0.75] as const;
  const std = [0.25, 0.5, 0.125] as const;
  const png = reconstructionsPng(shown, mean, std);
  const decoder = await pngDecoder.init();
  const { width, height, framebuffer } = decoder.decode(png);
  // Tiles of 6×6 pixels (each pixel 3×3), 4 pixels apart and from the edges.
  assertEquals([width, height], [4 * 6 + 5 * 4, 2 * 6 + 3 * 4], "size");
  const rgb = (
    x: number,
    y: number,
  ) => [...framebuffer.subarray(4 * (y * width + x), 4 * (y * width + x) + 3)];
  const expected = (value: number) =>
    mean.map((m, c) => Math.round(255 * Math.min(1, Math.max(0, value * std[c] + m))));
  [0, -1, 10, 0.5].forEach((value, column) => {
    for (const row of [0, 1]) {
      const x = 4 + column * 10 + 5, y = 4 + row * 10;
      assertEquals(rgb(x, y), expected(value + row / 2), `picture ${column} of image ${row}`);
    }
  });
  assertEquals(rgb(2, 2), [255, 255, 255], "the gap");
});
