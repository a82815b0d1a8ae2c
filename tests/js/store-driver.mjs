// The store contract suite's driver for the JavaScript stores (framework/runtime/js/sessions.mjs).
// Reads one JSON request per line on stdin, answers one JSON line each on stdout, in the order the
// operations finish (requests run concurrently; answers carry the request's "id"):
//   {"id": 1, "op": "open", "config": {...}, "agent": "bot", "env": {...}}
//       -> {"id": 1, "ok": {"handle": 1, "max_bytes": N, "kind": "redis"}}
//   {"id": 2, "op": "load", "store": 1, "session_id": "s1"}  -> {"id": 2, "ok": {"messages": [...], "version": 3}}
//   {"id": 3, "op": "save", "store": 1, "session_id": "s1", "messages": [...], "version": 3} -> {"id": 3, "ok": 4}
//   {"id": 4, "op": "add_tokens", "store": 1, "key_id": "k", "day": "2026-12-02", "tokens": 5} -> {"id": 4, "ok": 12}
//   {"id": 5, "op": "tokens_used", "store": 1, "key_id": "k", "day": "2026-12-02"} -> {"id": 5, "ok": 12}
//   {"id": 6, "op": "close", "store": 1}                     -> {"id": 6, "ok": null}
//   {"id": 7, "op": "sign", "request": {signV4's arguments, "date": ISO}} -> {"id": 7, "ok": {headers}}
// A failure answers {"id", "error": {"type": "StoreConflict" | "StoreError" | "<other>", "message"}};
// every answer carries "ms", the operation's time inside this process. "env" defaults to process.env.
import { createInterface } from "node:readline";
import { openStore, signV4, StoreConflict, StoreError } from "../../framework/runtime/js/sessions.mjs";

/** @type {Map<number, import("../../framework/runtime/js/sessions.mjs").Store>} */
const stores = new Map();
let handles = 0;

/** @param {Record<string, any>} request */
async function run(request) {
  const { op } = request;
  if (op === "open") {
    const store = openStore(request.config, request.agent, request.env ?? process.env);
    stores.set(++handles, store);
    return { handle: handles, max_bytes: store.maxBytes, kind: store.kind };
  }
  if (op === "sign") {
    return signV4({ ...request.request, date: new Date(request.request.date) });
  }
  const store = stores.get(request.store);
  if (store === undefined) throw new Error(`no store ${request.store}: open one first`);
  if (op === "close") {
    stores.delete(request.store);
    return null;
  }
  if (op === "load") return store.load(request.session_id);
  if (op === "save") return store.save(request.session_id, request.messages, request.version);
  if (op === "add_tokens") return store.addTokens(request.key_id, request.day, request.tokens);
  if (op === "tokens_used") return store.tokensUsed(request.key_id, request.day);
  throw new Error(`unknown op ${JSON.stringify(op)}`);
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
lines.on("line", (line) => {
  if (!line.trim()) return;
  /** @type {Record<string, any>} */
  let request;
  try {
    request = JSON.parse(line);
  } catch {
    process.stdout.write(`${JSON.stringify({ id: null, error: { type: "Error", message: "not JSON" } })}\n`);
    return;
  }
  const started = performance.now();
  Promise.resolve().then(() => run(request)).then(
    (ok) => ({ id: request.id ?? null, ok, ms: performance.now() - started }),
    (error) => ({
      id: request.id ?? null,
      ms: performance.now() - started,
      error: {
        type: error instanceof StoreConflict ? "StoreConflict" : error instanceof StoreError ? "StoreError"
          : (error?.name ?? "Error"),
        message: String(error?.message ?? error),
      },
    }),
  ).then((answer) => process.stdout.write(`${JSON.stringify(answer)}\n`));
});
