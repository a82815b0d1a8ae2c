export const config = { runtime: "edge" };
// ^ Line 1 is read statically by Vercel. The build rewrites "edge" to "nodejs"
//   when agent.yaml asks for the Node.js runtime; nothing else here is templated.
//
// Vercel function for one agent: Vercel calls the export named after the request's method.
// The handlers live in ../lib/agent.mjs (Web-standard Request/Response, shared verbatim with
// the streaming AWS Lambda app); files under lib/ are not functions themselves. The Edge build
// bundles the import (esbuild), the Node.js build traces it (@vercel/node).
export { POST, OPTIONS, GET, PUT, PATCH, DELETE, HEAD } from "../lib/agent.mjs";
