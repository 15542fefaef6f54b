// Module hook: the conformance bundle's `fs` is node:fs plus a globSync that says what it needs.
export async function resolve(specifier, context, next) {
  const fromSuite = context.parentURL && context.parentURL.includes("/@modelcontextprotocol/conformance/");
  if (fromSuite && (specifier === "fs" || specifier === "node:fs")) {
    return { url: new URL("./fs.mjs", import.meta.url).href, shortCircuit: true };
  }
  return next(specifier, context);
}
