import { SelfsupError } from "../errors.ts";

/**
 * MAE's layer-wise learning-rate decay for fine-tuning a Vision Transformer (the authors'
 * util/lr_decay.py, after BEiT; FINETUNE.md uses 0.65 for ViT-B, 0.75 for ViT-L): with
 * L = depth + 1 layers, a parameter of layer ℓ learns at decay^(L − ℓ) times the run's rate.
 * The class token, the position embeddings and the patch embedding are layer 0, block i is
 * layer i + 1, and everything else (the final norm, the classifier) layer L, at the full
 * rate. Names are timm's, after `prefix` (e.g. `backbone.` for a method's block); a name
 * without the prefix is not the ViT's and learns at the full rate. The result is an
 * `OptimizerConfig.lrScale`.
 *
 * @example
 * ```ts
 * import { vitLayerDecay } from "./layer_decay.ts";
 * const scale = vitLayerDecay(4, 0.5, "backbone.");
 * const scales = ["backbone.cls_token", "backbone.blocks.3.mlp.fc1.weight", "backbone.head.bias"]
 *   .map(scale);
 * if (scales.join() !== "0.03125,0.5,1") throw new Error(`unexpected ${scales}`);
 * ```
 */
export function vitLayerDecay(
  depth: number,
  decay: number,
  prefix = "",
): (parameter: string) => number {
  if (!Number.isInteger(depth) || depth < 1) {
    throw new SelfsupError(`Layer decay needs a ViT depth ≥ 1, got ${depth}`);
  }
  if (!(decay > 0 && decay <= 1)) {
    throw new SelfsupError(`--layer-decay must be a number in (0, 1], got ${decay}`);
  }
  const layers = depth + 1;
  return (parameter) => {
    if (!parameter.startsWith(prefix)) return 1;
    const name = parameter.slice(prefix.length);
    let layer = layers;
    if (name === "cls_token" || name === "pos_embed" || name.startsWith("patch_embed.")) {
      layer = 0;
    } else if (name.startsWith("blocks.")) {
      layer = Number(name.split(".")[1]) + 1;
      if (!(layer >= 1 && layer <= depth)) {
        throw new Error(`Layer decay for a ViT of depth ${depth} got ${parameter}`);
      }
    }
    return decay ** (layers - layer);
  };
}
