// AWS Lambda entry point of a streaming agent (handler: index.handler, runtime nodejs22.x).
// Generated; do not edit.
//
// Lambda streams responses natively only on its managed Node.js runtimes, through
// awslambda.streamifyResponse and awslambda.HttpResponseStream, globals of that runtime:
// https://docs.aws.amazon.com/lambda/latest/dg/configuration-response-streaming.html
// The function URL (InvokeMode RESPONSE_STREAM) sends the status and headers as soon as they are
// written, then each body chunk as it arrives.
//
// This file only adapts events: the agent itself is ./lib/agent.mjs, the same Web-standard module
// as the Vercel route, configured by ./agent.json.
import { handle, warmUp } from "./lib/agent.mjs";

/**
 * @typedef {object} ResponseStream The runtime's writable response stream (a Node.js Writable).
 * @property {(chunk: Uint8Array) => boolean} write
 * @property {() => void} end
 * @property {boolean} destroyed true once the client has gone (or the stream has ended)
 */

/**
 * @typedef {object} LambdaContext The invocation's context; only the fields read here.
 * @property {() => number} getRemainingTimeInMillis
 * @property {string} awsRequestId
 */

/**
 * @typedef {object} AwsLambda The `awslambda` global of Lambda's Node.js runtime.
 * @property {(handler: (event: any, responseStream: ResponseStream, context: LambdaContext) => Promise<void>) => unknown}
 *   streamifyResponse
 * @property {{ from: (stream: ResponseStream, prelude: object) => ResponseStream }} HttpResponseStream
 */

/**
 * @typedef {object} UrlEvent A function URL event (payload format 2.0); only the fields read here.
 * @property {{ http?: { method?: string }, domainName?: string }} [requestContext]
 * @property {string} [rawPath]
 * @property {string} [rawQueryString]
 * @property {Record<string, string>} [headers]
 * @property {string[]} [cookies]
 * @property {string} [body]
 * @property {boolean} [isBase64Encoded]
 */

/** @type {AwsLambda} */
// @ts-ignore -- a global of Lambda's Node.js runtime, not declared by any package here
const lambda = awslambda;

/**
 * The Web Request for an event: a function URL event (payload 2.0) as sent, or, for a direct
 * invocation (no requestContext.http), a POST whose JSON body is the event itself.
 * @param {UrlEvent} event
 * @returns {Request}
 */
function toRequest(event) {
  const http = event?.requestContext?.http;
  if (!http) {
    return new Request("https://lambda.invalid/", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(event ?? null),
    });
  }
  const method = String(http.method || "GET").toUpperCase();
  const headers = new Headers();
  for (const [name, value] of Object.entries(event.headers ?? {})) {
    try {
      headers.append(name, String(value));
    } catch {
      // a header name or value a Web Request cannot carry: leave it out
    }
  }
  if (Array.isArray(event.cookies) && event.cookies.length > 0) headers.set("cookie", event.cookies.join("; "));
  const host = event.requestContext?.domainName || headers.get("host") || "localhost";
  const path = "/" + String(event.rawPath ?? "/").replace(/^\/+/, "");
  const query = event.rawQueryString ? `?${event.rawQueryString}` : "";
  let url = "https://localhost/";
  try {
    url = new URL(`https://${host}${path}${query}`).href;
  } catch {
    // an unusable host: the agent does not read the URL
  }
  /** @type {Uint8Array<ArrayBuffer> | string | undefined} */
  let body;
  if (method !== "GET" && method !== "HEAD" && event.body) {
    body = event.isBase64Encoded ? Uint8Array.from(atob(event.body), (c) => c.charCodeAt(0)) : event.body;
  }
  return new Request(url, { method, headers, body });
}

/**
 * concurrency.warm_schedule: the event the EventBridge Scheduler schedule invokes the function with
 * directly, {"agent-framework": "warmup"}. A function URL event always has requestContext.http, so
 * only a caller allowed lambda:InvokeFunction (the schedule's role) can send it.
 * @param {any} event
 * @returns {boolean}
 */
function isWarmEvent(event) {
  return event !== null && typeof event === "object" && !Array.isArray(event) && Object.keys(event).length === 1 &&
    event["agent-framework"] === "warmup";
}

/**
 * The agent's Response for an event; a method a Web Request cannot have (TRACE, CONNECT) is a 405.
 * The agent's deadline is the invocation's remaining time, its request id Lambda's.
 * @param {UrlEvent} event
 * @param {{ remainingMs?: number, requestId?: string }} platform
 * @returns {Promise<Response>}
 */
async function respond(event, platform) {
  if (isWarmEvent(event)) return warmUp("aws-scheduler");
  /** @type {Request} */
  let request;
  try {
    request = toRequest(event);
  } catch {
    const method = String(event?.requestContext?.http?.method);
    return new Response(JSON.stringify({ error: `method ${method} not allowed; use POST` }), {
      status: 405,
      headers: { "Content-Type": "application/json", Allow: "POST, OPTIONS" },
    });
  }
  return handle(request, platform);
}

export const handler = lambda.streamifyResponse(async (event, responseStream, context) => {
  const remainingMs = typeof context?.getRemainingTimeInMillis === "function" ? context.getRemainingTimeInMillis()
    : undefined;
  const response = await respond(event, { remainingMs, requestId: context?.awsRequestId });
  /** @type {Record<string, string>} */
  const headers = {};
  response.headers.forEach((value, name) => {
    if (name !== "set-cookie") headers[name] = value;
  });
  /** @type {{ statusCode: number, headers: Record<string, string>, cookies?: string[] }} */
  const prelude = { statusCode: response.status, headers };
  const cookies = response.headers.getSetCookie();
  if (cookies.length > 0) prelude.cookies = cookies;
  const stream = lambda.HttpResponseStream.from(responseStream, prelude);
  try {
    // The prelude goes out on the stream's first write: an empty one sends it now, so a response
    // with no body (a 204 preflight, an answer to HEAD) keeps its status and headers.
    stream.write(new Uint8Array(0));
    if (response.body) {
      // Each piece goes out as soon as the agent has it. Leaving the loop early (the client has
      // gone) cancels the body, which aborts the model call.
      for await (const chunk of response.body) {
        if (stream.destroyed) break;
        stream.write(chunk);
      }
    }
  } finally {
    stream.end();
  }
});
