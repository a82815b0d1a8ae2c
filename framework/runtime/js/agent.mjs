// The agent's HTTP handler (the README's "HTTP contract"), shared verbatim by the Vercel route
// (api/agent.ts re-exports it) and the streaming AWS Lambda (index.mjs adapts function URL events
// to it). Static code: everything agent-specific comes from ../agent.json (written by the build);
// the only environment access is process.env. Web-standard APIs only (fetch, Request, Response,
// ReadableStream, AbortController, TextEncoder/Decoder, setTimeout), so it runs unchanged on
// Vercel's Edge and Node.js runtimes and on Lambda's Node.js runtime.
// Plain JavaScript with JSDoc types: `tsc --noEmit` (allowJs, checkJs, strict) checks it.
// Generated; do not edit.

// The import attribute is required: on Node.js this file runs as native ESM ("type": "module"),
// where a bare JSON import throws at load (ERR_IMPORT_ATTRIBUTE_MISSING). On Edge, esbuild
// inlines the JSON.
import agent from "../agent.json" with { type: "json" };

/**
 * @typedef {object} AgentConfig
 * @property {string} name
 * @property {string} model
 * @property {number} max_tokens
 * @property {number | null} temperature
 * @property {string | null} base_url
 * @property {string} system_prompt
 * @property {number} timeout
 * @property {boolean} stream
 * @property {number | null} [first_byte_timeout]
 * @property {string} api_key_env
 * @property {{ origins: string[] }} cors
 * @property {number} retries
 */

/** @typedef {{ message: string, stream: boolean } | { error: string }} Parsed */

/** @typedef {(request: Request) => Response | Promise<Response>} Handler */

// ---------------------------------------------------------------- module init

// The JSON's inferred type depends on its values (e.g. `[]` is never[]), so
// view it through the declared shape instead.
const AGENT = /** @type {AgentConfig} */ (/** @type {unknown} */ (agent));

/**
 * The function's environment, read as `process.env` (a global of every runtime this runs on; the
 * apps have no @types/node, hence the one suppressed check).
 * @type {Record<string, string | undefined>}
 */
// @ts-ignore -- `process` is a runtime global, deliberately not typed by a package here
const ENV = process.env;

const TIMEOUT_S = Number(AGENT.timeout);
const DEADLINE_MS = Math.max(1, TIMEOUT_S - 1) * 1000;
// Edge must start its response within 25 s: a JSON answer, or a stream's first piece, must come by then.
const FIRST_BYTE_S = typeof AGENT.first_byte_timeout === "number" ? AGENT.first_byte_timeout : null;
const FIRST_BYTE_MS = FIRST_BYTE_S === null ? DEADLINE_MS : Math.min(DEADLINE_MS, Math.max(1, FIRST_BYTE_S - 1) * 1000);
const RETRIES = Math.max(0, Math.floor(Number(AGENT.retries) || 0));
const DEFAULT_STREAM = AGENT.stream === true;
const API_KEY_ENV = AGENT.api_key_env;
/** @type {readonly string[]} */
const ORIGINS = AGENT.cors?.origins ?? [];
const ANY_ORIGIN = ORIGINS.includes("*");
const ALLOWED_ORIGINS = new Set(ORIGINS);
const COMPLETIONS_URL =
  (AGENT.base_url || ENV.OPENAI_BASE_URL || "https://api.openai.com/v1").replace(/\/+$/, "") + "/chat/completions";
const SYSTEM_MESSAGE = { role: "system", content: AGENT.system_prompt };
const ALLOW = "POST, OPTIONS";
const CUT_OFF = "the model endpoint's answer was cut off or invalid";
const encoder = new TextEncoder();

// -------------------------------------------------------------------- helpers

class UpstreamError extends Error {
  /**
   * @param {number} status
   * @param {string} message
   */
  constructor(status, message) {
    super(message);
    /** @readonly */
    this.status = status;
  }
}

/**
 * @param {Request} request
 * @param {boolean} preflight
 * @returns {Record<string, string>}
 */
function corsHeaders(request, preflight) {
  const origin = request.headers.get("origin");
  /** @type {Record<string, string>} */
  const headers = {};
  if (ANY_ORIGIN) {
    headers["Access-Control-Allow-Origin"] = "*";
  } else if (origin !== null && ALLOWED_ORIGINS.has(origin)) {
    headers["Access-Control-Allow-Origin"] = origin;
    headers["Vary"] = "Origin";
  } else {
    return headers;
  }
  if (preflight) {
    headers["Access-Control-Allow-Methods"] = ALLOW;
    headers["Access-Control-Allow-Headers"] = "Content-Type, Authorization";
    headers["Access-Control-Max-Age"] = "600";
  }
  return headers;
}

/**
 * @param {Request} request
 * @param {number} status
 * @param {unknown} body
 * @param {Record<string, string>} [extra]
 * @returns {Response}
 */
function json(request, status, body, extra = {}) {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json", ...corsHeaders(request, false), ...extra },
  });
}

/**
 * @param {Request} request
 * @param {number} status
 * @param {string} error
 * @returns {Response}
 */
function fail(request, status, error) {
  return json(request, status, { error });
}

/**
 * @param {unknown} value
 * @returns {value is Record<string, unknown>}
 */
function isObject(value) {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * @param {number} ms
 * @returns {Promise<void>}
 */
function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Milliseconds from a Retry-After header (delta-seconds or HTTP date), or null.
 * @param {string | null} value
 * @returns {number | null}
 */
function retryAfterMs(value) {
  if (value === null || value.trim() === "") return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, date - Date.now());
}

/**
 * @param {Request} request
 * @returns {Promise<Parsed>}
 */
async function parseRequest(request) {
  /** @type {unknown} */
  let body;
  try {
    body = JSON.parse(await request.text());
  } catch {
    return { error: "the request body is not valid JSON" };
  }
  if (!isObject(body)) return { error: "the request body must be a JSON object" };
  const { message, stream } = body;
  if (message === undefined) return { error: "the field 'message' is required" };
  if (typeof message !== "string") return { error: "the field 'message' must be a string" };
  if (message.trim() === "") return { error: "the field 'message' must not be empty" };
  // null, like a missing field, asks for the agent's default (the Python runtime's rule too)
  if (stream === undefined || stream === null) return { message, stream: DEFAULT_STREAM };
  if (typeof stream !== "boolean") return { error: "the field 'stream' must be true or false" };
  return { message, stream };
}

/**
 * POST to the Chat Completions endpoint, retrying 429/5xx and network errors.
 * Resolves with a 2xx Response; throws UpstreamError otherwise.
 * @param {string} payload
 * @param {string} apiKey
 * @param {AbortSignal} signal
 * @param {number} deadline
 * @returns {Promise<Response>}
 */
async function callModel(payload, apiKey, signal, deadline) {
  const timedOut = () => new UpstreamError(504, `the model did not answer within ${TIMEOUT_S} s`);
  for (let attempt = 0; ; attempt++) {
    /** @type {UpstreamError} */
    let failure;
    let wait = 500 * 2 ** attempt;
    try {
      const res = await fetch(COMPLETIONS_URL, {
        method: "POST",
        headers: { Authorization: `Bearer ${apiKey}`, "Content-Type": "application/json" },
        body: payload,
        signal,
      });
      if (res.ok) return res;
      await res.body?.cancel().catch(() => undefined);
      failure = new UpstreamError(502, `the model endpoint answered HTTP ${res.status}`);
      console.error(`${AGENT.name}: model endpoint answered HTTP ${res.status} (attempt ${attempt + 1})`);
      if (![408, 409, 429].includes(res.status) && res.status < 500) throw failure;
      wait = retryAfterMs(res.headers.get("retry-after")) ?? wait;
    } catch (err) {
      if (err instanceof UpstreamError) throw err;
      if (signal.aborted) throw timedOut();
      failure = new UpstreamError(502, "could not reach the model endpoint");
      console.error(`${AGENT.name}: could not reach the model endpoint (attempt ${attempt + 1})`);
    }
    // Retry only while the wait still leaves time for another answer.
    if (attempt >= RETRIES || Date.now() + wait >= deadline) throw failure;
    await sleep(wait);
    if (signal.aborted) throw timedOut();
  }
}

/**
 * Text of an upstream SSE stream: the concatenated delta.content pieces.
 * @param {ReadableStream<Uint8Array>} body
 * @param {AbortController} controller
 * @param {() => void} done
 * @returns {ReadableStream<Uint8Array>}
 */
function relayStream(body, controller, done) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let finished = false;
  const finish = () => {
    if (!finished) {
      finished = true;
      done();
    }
  };

  /**
   * Handles complete lines in the buffer; returns the text they carry and whether [DONE] was seen.
   * @returns {{ text: string, end: boolean }}
   */
  const drain = () => {
    let text = "";
    /** @type {number} */
    let newline;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, newline).replace(/\r$/, "");
      buffer = buffer.slice(newline + 1);
      if (!line.startsWith("data:")) continue;
      const data = line.slice(5).trim();
      if (data === "[DONE]") return { text, end: true };
      try {
        /** @type {unknown} */
        const chunk = JSON.parse(data);
        if (isObject(chunk) && Array.isArray(chunk.choices) && isObject(chunk.choices[0])) {
          const delta = chunk.choices[0].delta;
          if (isObject(delta) && typeof delta.content === "string") text += delta.content;
        }
      } catch {
        // not a JSON event: skip it
      }
    }
    return { text, end: false };
  };

  /** @type {UnderlyingDefaultSource<Uint8Array>} */
  const source = {
    async pull(out) {
      try {
        for (;;) {
          const { value, done: eof } = await reader.read();
          if (value) buffer += decoder.decode(value, { stream: true });
          if (eof) buffer += decoder.decode() + "\n";
          const { text, end } = drain();
          if (text) out.enqueue(encoder.encode(text));
          if (end || eof) {
            if (end) await reader.cancel().catch(() => undefined);
            finish();
            out.close();
            return;
          }
          if (text) return;
        }
      } catch (err) {
        // Deadline, network failure or a body that breaks off: the reader sees the error (before the
        // first piece it becomes a JSON error; after it, POST ends the stream).
        finish();
        controller.abort();
        out.error(err);
      }
    },
    cancel() {
      finish();
      controller.abort();
    },
  };
  return new ReadableStream(source);
}

// ------------------------------------------------------------------- handlers

/**
 * The contract's answer, never an exception: the host would answer an escaped one with its own page.
 * @param {Request} request
 * @returns {Promise<Response>}
 */
export async function POST(request) {
  try {
    return await respond(request);
  } catch (err) {
    // The class and the stack, not the message: one from a library may quote a header, and so the key.
    const name = err instanceof Error ? err.name : typeof err;
    const stack = err instanceof Error ? (err.stack ?? "").split("\n").slice(1).join("\n") : "";
    console.error(`${AGENT.name}: unexpected ${name} (message withheld)\n${stack}`);
    return fail(request, 500, `the agent failed unexpectedly (${name}); see the function's log`);
  }
}

/**
 * @param {Request} request
 * @returns {Promise<Response>}
 */
async function respond(request) {
  const parsed = await parseRequest(request);
  if ("error" in parsed) return fail(request, 400, parsed.error);

  // A key saved from a file often ends in a newline; one that cannot be sent gets the Python runtime's answer.
  const apiKey = (ENV[API_KEY_ENV] ?? "").trim();
  if (!apiKey) return fail(request, 500, `${API_KEY_ENV} is not set in the function's environment`);
  if (/[^\x20-\x7e]/.test(apiKey)) {
    return fail(request, 500, `${API_KEY_ENV} holds characters not allowed in an API key ` +
      "(a line break, a control or a non-ASCII character)");
  }

  /** @type {Record<string, unknown>} */
  const body = {
    model: AGENT.model,
    messages: [SYSTEM_MESSAGE, { role: "user", content: parsed.message }],
    max_tokens: AGENT.max_tokens,
  };
  if (AGENT.temperature !== null && AGENT.temperature !== undefined) body.temperature = AGENT.temperature;
  if (parsed.stream) {
    body.stream = true;
    body.stream_options = { include_usage: true };
  }

  // Until the first byte the tighter limit applies; a stream may then go on until the deadline.
  const limitMs = parsed.stream ? DEADLINE_MS : FIRST_BYTE_MS;
  const limitS = parsed.stream || FIRST_BYTE_S === null ? TIMEOUT_S : Math.min(TIMEOUT_S, FIRST_BYTE_S);
  const deadline = Date.now() + Math.min(limitMs, FIRST_BYTE_MS);
  const controller = new AbortController();
  // Set by the timers only: relayStream also aborts, when the model's body fails.
  let expired = false;
  const expire = () => {
    expired = true;
    controller.abort();
  };
  const timer = setTimeout(expire, limitMs);
  const firstByteTimer = setTimeout(expire, FIRST_BYTE_MS);
  const done = () => {
    clearTimeout(timer);
    clearTimeout(firstByteTimer);
  };
  const timedOut = () => fail(request, 504, `the model did not answer within ${limitS} s`);

  /** @type {Response} */
  let upstream;
  try {
    upstream = await callModel(JSON.stringify(body), apiKey, controller.signal, deadline);
  } catch (err) {
    done();
    if (err instanceof UpstreamError) return fail(request, err.status, err.message);
    return fail(request, 502, "could not reach the model endpoint");
  }

  if (parsed.stream) {
    if (!upstream.body) {
      done();
      return fail(request, 502, "the model endpoint sent an empty stream");
    }
    // Await the first piece here, so that a failure before it is still a JSON error with its status.
    const relay = relayStream(upstream.body, controller, done).getReader();
    /** @type {ReadableStreamReadResult<Uint8Array>} */
    let first;
    try {
      first = await relay.read();
    } catch {
      done();
      return expired ? timedOut() : fail(request, 502, CUT_OFF);
    }
    clearTimeout(firstByteTimer);
    if (first.done) {
      done();
      return fail(request, 502, "the model endpoint ended the stream without an answer");
    }
    /** @type {UnderlyingDefaultSource<Uint8Array>} */
    const source = {
      start(out) {
        out.enqueue(first.value);
      },
      async pull(out) {
        try {
          const next = await relay.read();
          if (next.done) out.close();
          else out.enqueue(next.value);
        } catch {
          out.close(); // the status is sent already: end the text where it broke
        }
      },
      cancel(reason) {
        return relay.cancel(reason);
      },
    };
    return new Response(new ReadableStream(source), {
      status: 200,
      headers: {
        "Content-Type": "text/plain; charset=utf-8",
        "Cache-Control": "no-cache",
        ...corsHeaders(request, false),
      },
    });
  }

  /** @type {string} */
  let text;
  try {
    text = await upstream.text();
  } catch {
    done();
    return expired ? timedOut() : fail(request, 502, CUT_OFF);
  }
  done();
  /** @type {unknown} */
  let answer;
  try {
    answer = JSON.parse(text);
  } catch {
    return fail(request, 502, "the model endpoint sent a malformed answer");
  }
  const choice = isObject(answer) && Array.isArray(answer.choices) ? answer.choices[0] : undefined;
  const message = isObject(choice) ? choice.message : undefined;
  if (!isObject(message) || (typeof message.content !== "string" && message.content !== null)) {
    return fail(request, 502, "the model endpoint sent a malformed answer");
  }
  const usage = isObject(answer) ? answer.usage : undefined;
  const tokens = isObject(usage) && typeof usage.total_tokens === "number" ? usage.total_tokens : 0;
  return json(request, 200, { response: message.content ?? "", tokens });
}

/**
 * @param {Request} request
 * @returns {Response}
 */
export function OPTIONS(request) {
  return new Response(null, { status: 204, headers: corsHeaders(request, true) });
}

/**
 * @param {Request} request
 * @returns {Response}
 */
function notAllowed(request) {
  const status = 405;
  const extra = { Allow: ALLOW };
  if (request.method === "HEAD") {
    return new Response(null, { status, headers: { ...corsHeaders(request, false), ...extra } });
  }
  return json(request, status, { error: `method ${request.method} not allowed; use POST` }, extra);
}

/**
 * @param {Request} request
 * @returns {Response}
 */
export function GET(request) {
  return notAllowed(request);
}

/**
 * @param {Request} request
 * @returns {Response}
 */
export function PUT(request) {
  return notAllowed(request);
}

/**
 * @param {Request} request
 * @returns {Response}
 */
export function PATCH(request) {
  return notAllowed(request);
}

/**
 * @param {Request} request
 * @returns {Response}
 */
export function DELETE(request) {
  return notAllowed(request);
}

/**
 * @param {Request} request
 * @returns {Response}
 */
export function HEAD(request) {
  return notAllowed(request);
}

/** @type {Readonly<Record<string, Handler>>} */
const HANDLERS = { POST, OPTIONS, GET, PUT, PATCH, DELETE, HEAD };

/**
 * One entry point for hosts that do not dispatch by method themselves (the AWS Lambda adapter):
 * the export named after the request's method, or 405 for any other method.
 * @param {Request} request
 * @returns {Promise<Response>}
 */
export async function handle(request) {
  const handler = Object.hasOwn(HANDLERS, request.method) ? HANDLERS[request.method] : notAllowed;
  return handler(request);
}
