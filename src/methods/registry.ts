import { SelfsupError } from "../errors.ts";
import { byol } from "./byol.ts";
import { clip } from "./clip.ts";
import { dino } from "./dino.ts";
import { mae } from "./mae.ts";
import { mlm } from "./mlm.ts";
import type { Method } from "./method.ts";
import { moco } from "./moco.ts";
import { rotation } from "./rotation.ts";
import { simclr } from "./simclr.ts";
import { swav } from "./swav.ts";

/** Every method `--method` takes, by name: adding a method is adding it here. */
// deno-lint-ignore no-explicit-any
export const methods: Readonly<Record<string, Method<any>>> = {
  simclr,
  moco,
  byol,
  dino,
  swav,
  rotation,
  mae,
  mlm,
  clip,
};

/** The names `--method` takes. */
export const methodNames: readonly string[] = Object.keys(methods);

/** The method of that name; an unknown name is a one-line error listing the known ones. */
// deno-lint-ignore no-explicit-any
export function methodNamed(name: string): Method<any> {
  const method = Object.hasOwn(methods, name) ? methods[name] : undefined;
  if (!method) {
    throw new SelfsupError(`Unknown method ${name}: use ${methodNames.join(", ")}`);
  }
  return method;
}
