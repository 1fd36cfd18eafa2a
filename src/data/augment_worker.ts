/**
 * Worker side of `MultiViewLoader` (batcher.ts): receives the dataset's shared pixels and the
 * view groups' recipes once, then fills batch buffers with the views of each image and sends
 * them back (transferred, not copied).
 *
 * @module
 */

import { type ViewGroup, ViewWriter } from "./views.ts";

/** Messages the loader sends. */
export type WorkerRequest =
  | {
    type: "init";
    pixels: Uint8Array;
    height: number;
    width: number;
    groups: readonly ViewGroup[];
  }
  | {
    type: "job";
    id: number;
    seed: number;
    epoch: number;
    indices: Int32Array;
    buffer: ArrayBuffer;
  };

/** Messages the worker sends back. */
export type WorkerReply =
  | { id: number; buffer: ArrayBuffer }
  | { id: number; error: string };

// Typed by hand rather than with the deno.worker lib, which would change the global types of
// every module checked together with this one.
const scope = self as unknown as {
  onmessage: ((event: MessageEvent<WorkerRequest>) => void) | null;
  postMessage(message: WorkerReply, transfer?: Transferable[]): void;
};

let state: { pixels: Uint8Array; imageSize: number; writer: ViewWriter } | null = null;

scope.onmessage = (event: MessageEvent<WorkerRequest>) => {
  const msg = event.data;
  if (msg.type === "init") {
    state = {
      pixels: msg.pixels,
      imageSize: msg.height * msg.width * 3,
      writer: new ViewWriter(msg.groups, msg.height, msg.width),
    };
    return;
  }
  try {
    if (!state) throw new Error("augment worker got a job before init");
    const { pixels, imageSize, writer } = state;
    writer.write(
      (i) => pixels.subarray(i * imageSize, (i + 1) * imageSize),
      msg.seed,
      msg.epoch,
      msg.indices,
      writer.split(msg.buffer, msg.indices.length),
    );
    scope.postMessage({ id: msg.id, buffer: msg.buffer }, [msg.buffer]);
  } catch (error) {
    const text = error instanceof Error ? error.stack ?? error.message : String(error);
    scope.postMessage({ id: msg.id, error: text });
  }
};
