#!/usr/bin/env node
// Serve a generated Vercel app's api/agent.ts locally inside Vercel's
// open-source Edge runtime (npm package `edge-runtime`).
//
//   node edge_harness.mjs <app_dir> <port> [host]
//
// Bundles <app_dir>/api/agent.ts with esbuild (JSON imports inlined as data),
// evaluates the bundle in an EdgeRuntime sandbox whose only non-Web global is
// `process = { env }` (a copy of this process's environment, as Vercel injects
// it), and dispatches each HTTP request to the export named after its method
// (POST -> POST, ...); a method without an export gets 405. Prints
// `listening http://HOST:PORT` once ready. Stops on SIGINT/SIGTERM.
import { readFileSync } from "node:fs";
import path from "node:path";
import { build } from "esbuild";
import { EdgeRuntime, runServer } from "edge-runtime";

const [appDir, portArg, host = "127.0.0.1"] = process.argv.slice(2);
if (!appDir || !portArg || !/^\d+$/.test(portArg)) {
  console.error("usage: node edge_harness.mjs <app_dir> <port> [host]");
  process.exit(2);
}
const entry = path.resolve(appDir, "api", "agent.ts");

// Vercel reads the runtime from line 1 of the function; the harness can only
// emulate the Edge runtime, so say so when the app asks for Node.js.
const firstLine = readFileSync(entry, "utf8").split("\n", 1)[0];
if (!firstLine.includes('"edge"') && !firstLine.includes("'edge'")) {
  console.error(`note: ${entry} does not declare the edge runtime; serving it in the Edge sandbox anyway`);
}

const bundle = await build({
  entryPoints: [entry],
  bundle: true,
  write: false,
  format: "iife", // the sandbox evaluates scripts, not ES modules
  globalName: "__vercelFunction",
  platform: "neutral",
  target: "es2022",
  loader: { ".json": "json" },
  logLevel: "warning",
});

// Bridges FetchEvents to the function's per-method exports, as Vercel does.
const dispatcher = `
addEventListener("fetch", (event) => {
  const handler = __vercelFunction[event.request.method];
  if (typeof handler !== "function") {
    event.respondWith(new Response(
      JSON.stringify({ error: "method " + event.request.method + " not allowed" }),
      { status: 405, headers: { "Content-Type": "application/json" } },
    ));
    return;
  }
  event.respondWith(Promise.resolve().then(() => handler(event.request)));
});
`;

const env = { ...process.env };
const runtime = new EdgeRuntime({
  extend: (context) => Object.assign(context, { process: { env } }),
});
runtime.evaluate(bundle.outputFiles[0].text);
runtime.evaluate(dispatcher);

const server = await runServer({ runtime, host, port: Number(portArg) });
console.log(`listening ${server.url.replace(/\/$/, "")}`);

const stop = () => {
  server.close().finally(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
