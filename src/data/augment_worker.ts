/**
 * Worker side of {@linkcode TwoViewLoader}: receives the dataset's shared pixels once, then
 * fills batch buffers with two augmented views per image and sends them back (transferred,
 * not copied).
 *
 * @module
 */

import { type AugmentConfig, Augmenter } from "./augment.ts";
import { writeTwoViews } from "./batcher.ts";

/** Messages the loader sends. */
export type WorkerRequest =
  | {
    type: "init";
    pixels: Uint8Array;
    height: number;
    width: number;
    recipes: readonly [AugmentConfig, AugmentConfig];
  }
  | {
    type: "job";
    id: number;
    seed: number;
    epoch: number;
    indices: Int32Array;
    views: Float32Array<ArrayBuffer>;
  };

/** Messages the worker sends back. */
export type WorkerReply =
  | { id: number; views: Float32Array<ArrayBuffer> }
  | { id: number; error: string };

// Typed by hand rather than with the deno.worker lib, which would change the global types of
// every module checked together with this one.
const scope = self as unknown as {
  onmessage: ((event: MessageEvent<WorkerRequest>) => void) | null;
  postMessage(message: WorkerReply, transfer?: Transferable[]): void;
};

let state: { pixels: Uint8Array; imageSize: number; augmenters: [Augmenter, Augmenter] } | null =
  null;

scope.onmessage = (event: MessageEvent<WorkerRequest>) => {
  const msg = event.data;
  if (msg.type === "init") {
    state = {
      pixels: msg.pixels,
      imageSize: msg.height * msg.width * 3,
      augmenters: [
        new Augmenter(msg.recipes[0], msg.height, msg.width),
        new Augmenter(msg.recipes[1], msg.height, msg.width),
      ],
    };
    return;
  }
  try {
    if (!state) throw new Error("augment worker got a job before init");
    const { pixels, imageSize, augmenters } = state;
    writeTwoViews(
      (i) => pixels.subarray(i * imageSize, (i + 1) * imageSize),
      augmenters,
      msg.seed,
      msg.epoch,
      msg.indices,
      msg.views,
    );
    scope.postMessage({ id: msg.id, views: msg.views }, [msg.views.buffer]);
  } catch (error) {
    const text = error instanceof Error ? error.stack ?? error.message : String(error);
    scope.postMessage({ id: msg.id, error: text });
  }
};
