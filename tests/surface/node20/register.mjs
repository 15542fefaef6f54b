// Loaded with `node --import` to run @modelcontextprotocol/conformance on Node 20: its bundle imports
// fs.globSync (Node 22), which only its tier-check command uses. Nothing else is changed.
import { register } from "node:module";

register("./hooks.mjs", import.meta.url);
