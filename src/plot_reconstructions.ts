import { imagescriptFramebuffer } from "./deps.ts";
import type { Reconstructions } from "./methods/method.ts";

/** An RGBA image of imagescript's, row-major, 4 bytes a pixel: the part used here. */
interface Frame {
  readonly u8: Uint8Array;
  encode(format: "png"): Uint8Array;
}
// imagescript's declarations type its default export as a CommonJS module, not the class.
const Framebuffer = imagescriptFramebuffer.default as unknown as new (
  width: number,
  height: number,
) => Frame;

/** Pixels each image pixel becomes along each side, and the gap between pictures. */
const zoom = 3;
const gap = 4;

/**
 * A PNG of a masked-image method's reconstructions (a run's `preview`), one image a row and
 * four pictures a row as MAE's demo shows them: the original, the masked input (masked
 * patches in the dataset's mean colour), the reconstruction of every patch, and the
 * reconstruction with the visible patches pasted in. `mean` and `std` are the run's
 * normalisation, undone to show the pictures; each pixel is drawn as a 3×3 block.
 */
export function reconstructionsPng(
  shown: Reconstructions,
  mean: readonly [number, number, number],
  std: readonly [number, number, number],
): Uint8Array {
  const [n, , h, w] = shown.shape;
  const pictures = [shown.original, shown.masked, shown.reconstruction, shown.pasted];
  const tileW = w * zoom, tileH = h * zoom;
  const width = pictures.length * tileW + (pictures.length + 1) * gap;
  const height = n * tileH + (n + 1) * gap;
  const frame = new Framebuffer(width, height);
  frame.u8.fill(255);
  pictures.forEach((picture, column) => {
    for (let k = 0; k < n; k++) {
      const left = gap + column * (tileW + gap);
      const top = gap + k * (tileH + gap);
      for (let y = 0; y < tileH; y++) {
        for (let x = 0; x < tileW; x++) {
          const at = 4 * ((top + y) * width + left + x);
          const source = Math.floor(y / zoom) * w + Math.floor(x / zoom);
          for (let c = 0; c < 3; c++) {
            const value = picture[(k * 3 + c) * h * w + source] * std[c] + mean[c];
            frame.u8[at + c] = Math.round(255 * Math.min(1, Math.max(0, value)));
          }
        }
      }
    }
  });
  return frame.encode("png");
}
