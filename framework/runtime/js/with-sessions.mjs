// The agent core with its session store: the entry the Vercel route and the streaming AWS Lambda
// import instead of agent.mjs when agent.yaml turns sessions on (an agent without them loads no store
// code: neither this file nor sessions.mjs is shipped then). The core opens the store on its first
// request, from the opener registered here.
import { openStore } from "./sessions.mjs";

/** @type {any} */ (globalThis)[Symbol.for("serverless-agent.openStore")] = openStore;

export { POST, OPTIONS, GET, PUT, PATCH, DELETE, HEAD, handle, warmUp } from "./agent.mjs";
