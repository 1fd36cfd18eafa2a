// Every third-party import goes through this file with a full, versioned specifier, because
// deno.json "imports" do not apply when a module is run from a remote URL.
export { Command, InvalidArgumentError, Option } from "npm:@commander-js/extra-typings@15.1.0";
