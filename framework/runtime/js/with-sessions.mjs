// The agent core with its session store: the entry the Vercel route and the streaming AWS Lambda
// import instead of agent.mjs when agent.yaml turns sessions on (an agent without them loads no store
// code: neither this file nor sessions.mjs is shipped then). Imports are evaluated first, so the store
// is registered before any request.
import { openStore } from "./sessions.mjs";
import { useSessions } from "./agent.mjs";

useSessions(openStore);

export { POST, OPTIONS, GET, PUT, PATCH, DELETE, HEAD, handle } from "./agent.mjs";
