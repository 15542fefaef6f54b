// node:fs as the conformance suite sees it on Node 20.
import fs from "node:fs";

export * from "node:fs";
export default fs;
export function globSync() {
  throw new Error("fs.globSync needs Node 22 (only `conformance tier-check` uses it)");
}
