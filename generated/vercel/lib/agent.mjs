// The agent's HTTP handler (the README's "HTTP contract"), shared verbatim by the Vercel route
// (api/agent.ts re-exports it) and the streaming AWS Lambda (index.mjs adapts function URL events
// to it). Static code: everything agent-specific comes from ../agent.json (written by the build);
// the only environment access is process.env. Web-standard APIs only (fetch, Request, Response,
// ReadableStream, AbortController, TextEncoder/Decoder, setTimeout, crypto.randomUUID), so it runs
// unchanged on Vercel's Edge and Node.js runtimes and on Lambda's Node.js runtime.
// The loop (tools over HTTP and MCP, limits, streamed steps, usage records) is docs/agent-loop.md's,
// the same as the Python runtime's.
// Plain JavaScript with JSDoc types: `tsc --noEmit` (allowJs, checkJs, strict) checks it.
// Generated; do not edit.

// The import attribute is required: on Node.js this file runs as native ESM ("type": "module"),
// where a bare JSON import throws at load (ERR_IMPORT_ATTRIBUTE_MISSING). On Edge, esbuild
// inlines the JSON.
import agent from "../agent.json" with { type: "json" };

/**
 * @typedef {object} HttpToolConfig
 * @property {string} name
 * @property {string} description
 * @property {Record<string, unknown>} parameters
 * @property {{ method: string, url: string, headers: Record<string, string>, timeout: number }} http
 */

/**
 * @typedef {object} McpConfig
 * @property {string} url
 * @property {Record<string, string>} headers
 * @property {string[] | null} tools
 * @property {number} timeout
 */

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
 * @property {HttpToolConfig[]} [tools]
 * @property {McpConfig[]} [mcp]
 * @property {{ max_steps?: number, max_request_tokens?: number | null }} [limits]
 * @property {boolean} [log_content]
 * @property {{ api_keys_env?: string, daily_tokens?: number | null } | null} [auth]
 * @property {SessionsBlock | null} [sessions]
 * @property {{ secret_env?: string } | null} [warmup]
 */

/** @typedef {{ message: string, stream: boolean, sessionId: string | null } | { error: string }} Parsed */

/**
 * agent.json's "sessions" (framework/runtime/js/sessions.mjs reads the store's own settings).
 * @typedef {{ store: string, ttl_hours: number, max_messages?: number } & Record<string, unknown>} SessionsBlock
 */

/**
 * The session store (sessions.mjs's Store), registered by lib/with-sessions.mjs when sessions are on.
 * @typedef {object} SessionStore
 * @property {number} maxBytes
 * @property {(id: string) => Promise<{ messages: Record<string, unknown>[], version: number }>} load
 * @property {(id: string, messages: Record<string, unknown>[], version: number) => Promise<number>} save
 * @property {(keyId: string, day: string, tokens: number) => Promise<number>} addTokens
 * @property {(keyId: string, day: string) => Promise<number>} tokensUsed
 */

/**
 * @typedef {(config: any, agent: string, env: Record<string, string | undefined>) => SessionStore} OpenStore
 */

/**
 * One request's conversation: the stored history as loaded, its version, the part of it sent.
 * @typedef {{ id: string, history: Record<string, unknown>[], version: number, window: Record<string, unknown>[] }} Session
 */

/** @typedef {(request: Request) => Response | Promise<Response>} Handler */

/**
 * What the host knows about this invocation (the AWS Lambda adapter passes its context's).
 * @typedef {object} Platform
 * @property {number} [remainingMs] the time left before the platform ends the invocation
 * @property {string} [requestId] the platform's request id
 */

/** @typedef {{ text: string, outcome: string }} ToolResult */

/**
 * A tool the model may be offered this request.
 * @typedef {object} Tool
 * @property {string} name
 * @property {string} description
 * @property {unknown} parameters
 * @property {number} timeoutMs
 * @property {(args: Record<string, unknown>, timeoutMs: number, signal: AbortSignal) => Promise<ToolResult>} run
 */

/** @typedef {{ id: string, type: string, function: { name: string, arguments: string } }} ToolCall */

/** @typedef {{ content: string | null, toolCalls: ToolCall[], input: number, output: number, total: number }} Step */

/**
 * What a request's stream shows of the loop (nothing, for a JSON answer).
 * @typedef {object} Sink
 * @property {() => void} stepStart
 * @property {(piece: string) => void} text
 * @property {() => void} textEnd
 * @property {(id: string, name: string, input: unknown) => void} toolInput
 * @property {(id: string, output: string) => void} toolOutput
 * @property {() => void} stepEnd
 */

/** @typedef {{ name: string, duration_ms: number, outcome: string }} ToolRecord */

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
const ALLOW_HEADERS = "Content-Type, Authorization, x-api-key";
// The OpenAI-compatible endpoint under the agent's path.
const CHAT_PATH = "/v1/chat/completions";
const MODELS_PATH = "/v1/models";
const CREATED = Math.floor(Date.now() / 1000); // /v1/models: when this instance started
// agent.yaml auth.api_keys: the variable holding the accepted keys, one per line.
const KEYS_ENV = typeof AGENT.auth?.api_keys_env === "string" && AGENT.auth.api_keys_env ? AGENT.auth.api_keys_env
  : null;
const KEYS = KEYS_ENV === null ? [] : (ENV[KEYS_ENV] ?? "").split(/\r?\n/).map((line) => line.trim())
  .filter((line) => line !== "");
const SESSIONS = isObject(AGENT.sessions) ? AGENT.sessions : null;
const MAX_MESSAGES = SESSIONS === null ? 0 : Math.max(1, Math.floor(Number(SESSIONS.max_messages) || 40));
const DAILY_TOKENS = typeof AGENT.auth?.daily_tokens === "number" && AGENT.auth.daily_tokens > 0
  ? AGENT.auth.daily_tokens : null;
const SESSION_ID = /^[A-Za-z0-9_-]{1,128}$/;
const BAD_SESSION = "the field 'session_id' must be 1 to 128 letters, digits, '_' or '-'";
const NO_SESSIONS = "this agent keeps no sessions: send the request without 'session_id'";
const SAVE_TRIES = 3; // saves of one turn (each after a fresh load) before a 409
const CUT_OFF = "the model endpoint's answer was cut off or invalid";
const NO_ANSWER = "the model endpoint ended the stream without an answer";
const encoder = new TextEncoder();
// concurrency.warm_schedule where the scheduler sends an HTTP request: the secret it sends
// (docs/agent-loop.md, "The scheduled warm-up"); unset or shorter than 16 characters: none
const WARM_SECRET_MIN = 16;
const WARM_SECRET = ((value) => (value.length >= WARM_SECRET_MIN ? value : null))(
  (ENV[AGENT.warmup?.secret_env ?? ""] ?? "").trim());

// The loop's bounds (docs/agent-loop.md).
const MAX_STEPS = Math.max(1, Math.floor(Number(AGENT.limits?.max_steps) || 8));
const MAX_REQUEST_TOKENS = typeof AGENT.limits?.max_request_tokens === "number" ? AGENT.limits.max_request_tokens : null;
const RESERVE_MS = Math.max(1000, TIMEOUT_S * 100); // max(1 s, 10 % of the timeout): kept for the final answer
const LAST_CALL_MS = 500; // under this much time left, no model call is made
const RESULT_LIMIT = 16384; // bytes of a tool's result the model reads
const CUT_MARKER = `\n[cut: the tool's answer was longer than ${RESULT_LIMIT} bytes]`;
const ERROR_BODY_CHARS = 300;
const KEEP_ALIVE_MS = 5000; // a UI stream quiet this long gets a comment (the doc's bound: 10 s)
const LOG_CONTENT = AGENT.log_content === true;
const MCP_PROTOCOL = "2025-06-18";
const TOOL_ACCEPT = "application/json, text/plain;q=0.9, */*;q=0.5";
const USER_AGENT = "agent-framework (+https://github.com)";

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
 * @param {string} [methods] the methods a preflight allows
 * @returns {Record<string, string>}
 */
function corsHeaders(request, preflight, methods = ALLOW) {
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
    headers["Access-Control-Allow-Methods"] = methods;
    headers["Access-Control-Allow-Headers"] = ALLOW_HEADERS;
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
 * Seconds as a short number: 10, 2.5 (one decimal at most).
 * @param {number} ms
 * @returns {string}
 */
function seconds(ms) {
  return String(Math.round(ms / 100) / 10);
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
  if (stream !== undefined && stream !== null && typeof stream !== "boolean") {
    return { error: "the field 'stream' must be true or false" };
  }
  const sessionId = body.session_id;
  if (sessionId !== undefined && sessionId !== null && !(typeof sessionId === "string" && SESSION_ID.test(sessionId))) {
    return { error: BAD_SESSION };
  }
  // null, like a missing field, asks for the agent's default (the Python runtime's rule too)
  return { message, stream: typeof stream === "boolean" ? stream : DEFAULT_STREAM,
    sessionId: typeof sessionId === "string" ? sessionId : null };
}

// -------------------------------------------------------------------- secrets

const PLACEHOLDER = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/**
 * Header values with ${NAME} replaced from the environment, once, when the function starts; a
 * header whose variable is unset is left out, and the variable named.
 * @param {Record<string, string> | undefined} headers
 * @returns {{ headers: Record<string, string>, missing: string[] }}
 */
function resolveHeaders(headers) {
  /** @type {Record<string, string>} */
  const out = {};
  /** @type {string[]} */
  const missing = [];
  for (const [name, template] of Object.entries(headers ?? {})) {
    let unset = false;
    const value = String(template).replace(PLACEHOLDER, (_, variable) => {
      const found = (ENV[variable] ?? "").trim();
      if (!found) {
        unset = true;
        if (!missing.includes(variable)) missing.push(variable);
      }
      return found;
    });
    if (!unset) out[name] = value;
  }
  return { headers: out, missing };
}

/** The values never to show: the API key and every variable a tool header names. */
const SECRETS = (() => {
  const names = new Set([API_KEY_ENV]);
  for (const entry of [...(AGENT.tools ?? []).map((t) => t.http), ...(AGENT.mcp ?? [])]) {
    for (const template of Object.values(entry?.headers ?? {})) {
      for (const match of String(template).matchAll(PLACEHOLDER)) names.add(match[1]);
    }
  }
  const values = [...names].map((name) => (ENV[name] ?? "").trim()).filter((value) => value.length > 0);
  for (const key of KEYS) if (!values.includes(key)) values.push(key);
  return values.sort((a, b) => b.length - a.length);
})();

/**
 * Text from outside (a tool's answer, an error body) with every secret value replaced.
 * @param {string} text
 * @returns {string}
 */
function redact(text) {
  let out = text;
  for (const secret of SECRETS) out = out.split(secret).join("[secret]");
  return out;
}

/**
 * A tool's result as the model reads it: at most RESULT_LIMIT bytes of UTF-8, cut at a character
 * boundary, with the marker.
 * @param {string} text
 * @returns {string}
 */
function bound(text) {
  if (text.length <= RESULT_LIMIT / 3) return text;
  const bytes = encoder.encode(text);
  if (bytes.length <= RESULT_LIMIT) return text;
  let end = RESULT_LIMIT;
  while (end > 0 && (bytes[end] & 0xc0) === 0x80) end--;
  return new TextDecoder().decode(bytes.subarray(0, end)) + CUT_MARKER;
}

// ---------------------------------------------------------- argument checks

/**
 * The first way `value` fails the lean JSON Schema subset of docs/agent-loop.md, or null.
 * @param {unknown} schema
 * @param {unknown} value
 * @param {string} path
 * @returns {string | null}
 */
function mismatch(schema, value, path) {
  if (!isObject(schema)) return null;
  const type = schema.type;
  if (type !== undefined) {
    const types = Array.isArray(type) ? type : [type];
    if (!types.some((t) => hasType(value, t))) return `${path} must be ${types.map(article).join(" or ")}`;
  }
  if (Array.isArray(schema.enum) && !schema.enum.some((option) => same(option, value))) {
    return `${path} must be one of ${schema.enum.map((option) => JSON.stringify(option)).join(", ")}`;
  }
  if ("const" in schema && !same(schema.const, value)) return `${path} must be ${JSON.stringify(schema.const)}`;
  if (typeof value === "string") {
    const length = [...value].length;
    if (typeof schema.minLength === "number" && length < schema.minLength) {
      return `${path} must be at least ${schema.minLength} characters long`;
    }
    if (typeof schema.maxLength === "number" && length > schema.maxLength) {
      return `${path} must be at most ${schema.maxLength} characters long`;
    }
    if (typeof schema.pattern === "string") {
      /** @type {RegExp | null} */
      let pattern = null;
      try {
        pattern = new RegExp(schema.pattern, "u");
      } catch {
        // a pattern this engine cannot read is not checked
      }
      if (pattern && !pattern.test(value)) return `${path} must match ${schema.pattern}`;
    }
  }
  if (typeof value === "number") {
    if (typeof schema.minimum === "number" && value < schema.minimum) return `${path} must be >= ${schema.minimum}`;
    if (typeof schema.maximum === "number" && value > schema.maximum) return `${path} must be <= ${schema.maximum}`;
    if (typeof schema.exclusiveMinimum === "number" && value <= schema.exclusiveMinimum) {
      return `${path} must be > ${schema.exclusiveMinimum}`;
    }
    if (typeof schema.exclusiveMaximum === "number" && value >= schema.exclusiveMaximum) {
      return `${path} must be < ${schema.exclusiveMaximum}`;
    }
  }
  if (Array.isArray(value)) {
    if (typeof schema.minItems === "number" && value.length < schema.minItems) {
      return `${path} must have at least ${schema.minItems} items`;
    }
    if (typeof schema.maxItems === "number" && value.length > schema.maxItems) {
      return `${path} must have at most ${schema.maxItems} items`;
    }
    if (isObject(schema.items)) {
      for (let i = 0; i < value.length; i++) {
        const why = mismatch(schema.items, value[i], `${path}[${i}]`);
        if (why) return why;
      }
    }
  }
  if (isObject(value)) {
    const prefix = path === "arguments" ? "" : `${path}.`;
    const properties = isObject(schema.properties) ? schema.properties : {};
    if (Array.isArray(schema.required)) {
      for (const name of schema.required) {
        if (typeof name === "string" && !Object.hasOwn(value, name)) return `${prefix}${name} is required`;
      }
    }
    for (const [name, sub] of Object.entries(properties)) {
      if (!Object.hasOwn(value, name)) continue;
      const why = mismatch(sub, value[name], `${prefix}${name}`);
      if (why) return why;
    }
    if (schema.additionalProperties === false) {
      const extra = Object.keys(value).find((name) => !Object.hasOwn(properties, name));
      if (extra !== undefined) return `${prefix}${extra} is not a parameter of this tool`;
    }
  }
  return null;
}

/**
 * @param {unknown} value
 * @param {unknown} type
 * @returns {boolean}
 */
function hasType(value, type) {
  switch (type) {
    case "string":
      return typeof value === "string";
    case "number":
      return typeof value === "number" && Number.isFinite(value);
    case "integer":
      return typeof value === "number" && Number.isInteger(value);
    case "boolean":
      return typeof value === "boolean";
    case "object":
      return isObject(value);
    case "array":
      return Array.isArray(value);
    case "null":
      return value === null;
    default:
      return true;
  }
}

/**
 * @param {unknown} type
 * @returns {string}
 */
function article(type) {
  const name = String(type);
  if (name === "null") return "null";
  return /^[aeiou]/.test(name) ? `an ${name}` : `a ${name}`;
}

/**
 * JSON equality (enum, const).
 * @param {unknown} a
 * @param {unknown} b
 * @returns {boolean}
 */
function same(a, b) {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  const ra = /** @type {Record<string, unknown>} */ (a);
  const rb = /** @type {Record<string, unknown>} */ (b);
  return ka.every((k) => Object.hasOwn(rb, k) && same(ra[k], rb[k]));
}

// ------------------------------------------------------------------- tool calls

class ToolFailure extends Error {
  /**
   * @param {string} outcome
   * @param {string} text
   */
  constructor(outcome, text) {
    super(text);
    /** @readonly */
    this.outcome = outcome;
  }
}

/**
 * Runs `work` with a signal aborted after `timeoutMs` or when `outer` aborts; a failure becomes a
 * ToolFailure (timeout or unreachable).
 * @template T
 * @param {number} timeoutMs
 * @param {AbortSignal} outer
 * @param {(signal: AbortSignal) => Promise<T>} work
 * @returns {Promise<T>}
 */
async function bounded(timeoutMs, outer, work) {
  const controller = new AbortController();
  let late = false;
  const timer = setTimeout(() => {
    late = true;
    controller.abort();
  }, Math.max(1, timeoutMs));
  const forward = () => controller.abort();
  outer.addEventListener("abort", forward);
  if (outer.aborted) controller.abort();
  try {
    return await work(controller.signal);
  } catch (err) {
    if (err instanceof ToolFailure) throw err;
    if (late || outer.aborted) {
      throw new ToolFailure("timeout", `error: the tool did not answer within ${seconds(timeoutMs)} s`);
    }
    throw new ToolFailure("unreachable", "error: could not reach the tool");
  } finally {
    clearTimeout(timer);
    outer.removeEventListener("abort", forward);
  }
}

/**
 * The error result for an HTTP answer that is not a 2xx (a redirect included): its status and the
 * start of its body, secrets replaced.
 * @param {Response} res
 * @returns {Promise<ToolFailure>}
 */
async function httpFailure(res) {
  const text = redact(await res.text().catch(() => "")).trim().slice(0, ERROR_BODY_CHARS);
  const status = res.type === "opaqueredirect" ? "with a redirect" : `HTTP ${res.status}`;
  return new ToolFailure("error", `error: the tool answered ${status}${text ? `: ${text}` : ""}`);
}

/**
 * Percent-encoding with nothing left unescaped but letters, digits and `-_.~`.
 * @param {string} text
 * @returns {string}
 */
function encodeStrict(text) {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase());
}

/**
 * An argument as text: strings as they are, anything else as its JSON.
 * @param {unknown} value
 * @returns {string}
 */
function asText(value) {
  return typeof value === "string" ? value : JSON.stringify(value) ?? "";
}

/**
 * An HTTP tool from agent.json: the URL's scheme, host and port are fixed; parameters fill only
 * the path's placeholders and the query (GET, DELETE) or the JSON body (POST, PUT, PATCH).
 * @param {HttpToolConfig} config
 * @returns {Tool}
 */
function httpTool(config) {
  const http = config.http;
  const method = String(http.method || "GET").toUpperCase();
  const withBody = method === "POST" || method === "PUT" || method === "PATCH";
  const { headers, missing } = resolveHeaders(http.headers);
  const split = /^([a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^/?#]*)(.*)$/s.exec(http.url);
  /** @type {URL | null} */
  let origin = null;
  try {
    origin = split ? new URL(split[1]) : null;
  } catch {
    origin = null;
  }
  const rest = split ? split[2] : "";
  const inPath = new Set([...rest.matchAll(/\{([^{}]+)\}/g)].map((m) => m[1]));
  const timeoutMs = (Number(http.timeout) > 0 ? Number(http.timeout) : 10) * 1000;

  /**
   * @param {Record<string, unknown>} args
   * @returns {string | null | { dots: string }} the URL; null when it leaves its origin; dots: the parameter holding a dot segment
   */
  const build = (args) => {
    if (!split || origin === null) return null;
    const hash = rest.indexOf("#");
    let path = hash >= 0 ? rest.slice(0, hash) : rest;
    // A dot segment would be resolved to the parent folder (by URL parsing here, by servers anywhere).
    const dots = [...inPath].find((name) => asText(args[name]) === "." || asText(args[name]) === "..");
    if (dots !== undefined) return { dots };
    path = path.replace(/\{([^{}]+)\}/g, (_, name) => encodeStrict(asText(args[name])));
    if (!withBody) {
      const query = Object.entries(args)
        .filter(([name, value]) => !inPath.has(name) && value !== undefined)
        .map(([name, value]) => `${encodeStrict(name)}=${encodeStrict(asText(value))}`.replace(/%20/g, "+"))
        .join("&");
      if (query) path += (path.includes("?") ? "&" : "?") + query;
    }
    try {
      const url = new URL(split[1] + path);
      if (url.protocol !== origin.protocol || url.host !== origin.host || url.username || url.password) return null;
      return url.href;
    } catch {
      return null;
    }
  };

  return {
    name: config.name,
    description: config.description,
    parameters: config.parameters,
    timeoutMs,
    async run(args, limitMs, signal) {
      const url = build(args);
      if (url === null) return { text: "error: the tool's address could not be built from these arguments", outcome: "error" };
      if (typeof url === "object") {
        return { text: `error: the arguments do not fit the tool's address: ${url.dots} may not be "." or ".."`, outcome: "error" };
      }
      /** @type {Record<string, string>} */
      const sent = { ...headers, Accept: TOOL_ACCEPT, "User-Agent": USER_AGENT };
      if (withBody) sent["Content-Type"] = "application/json";
      /** @type {ToolResult} */
      let result;
      try {
        result = await bounded(limitMs, signal, async (inner) => {
          const res = await fetch(url, {
            method,
            headers: sent,
            body: withBody ? JSON.stringify(args) : undefined,
            redirect: "manual",
            signal: inner,
          });
          if (res.status < 200 || res.status > 299) throw await httpFailure(res);
          const bytes = new Uint8Array(await res.arrayBuffer());
          return { text: new TextDecoder().decode(bytes), outcome: "ok" };
        });
      } catch (err) {
        if (!(err instanceof ToolFailure)) throw err;
        result = { text: err.message, outcome: err.outcome };
      }
      if (missing.length > 0) return { text: `error: ${missing[0]} is not set in the function's environment`, outcome: "error" };
      return result;
    },
  };
}

// ------------------------------------------------------------------- MCP client

/** @typedef {{ name: string, description: string, inputSchema: unknown }} McpToolInfo */
/** @typedef {{ sessionId: string | null, protocol: string, tools: McpToolInfo[] }} McpSession */

let rpcIds = 0;

/**
 * The JSON-RPC response to request `id` in an answer (application/json or text/event-stream).
 * @param {Response} res
 * @param {number} id
 * @returns {Promise<Record<string, unknown>>}
 */
async function readRpc(res, id) {
  /** @param {unknown} message */
  const match = (message) => {
    for (const item of Array.isArray(message) ? message : [message]) {
      if (isObject(item) && item.id === id && ("result" in item || "error" in item)) return item;
    }
    return null;
  };
  const type = res.headers.get("content-type") ?? "";
  if (!type.includes("text/event-stream")) {
    const found = match(JSON.parse(await res.text()));
    if (found) return found;
    throw new Error("no answer to the request");
  }
  if (!res.body) throw new Error("an empty stream");
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  /** @type {string[]} */
  let data = [];
  for (;;) {
    const { value, done } = await reader.read();
    buffer += done ? decoder.decode() + "\n\n" : decoder.decode(value, { stream: true });
    /** @type {number} */
    let newline;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, newline).replace(/\r$/, "");
      buffer = buffer.slice(newline + 1);
      if (line === "") {
        if (data.length > 0) {
          /** @type {Record<string, unknown> | null} */
          let found = null;
          try {
            found = match(JSON.parse(data.join("\n")));
          } catch {
            // not JSON: skip the event
          }
          data = [];
          if (found) {
            await reader.cancel().catch(() => undefined);
            return found;
          }
        }
      } else if (line.startsWith("data:")) {
        data.push(line.slice(line.startsWith("data: ") ? 6 : 5));
      }
    }
    if (done) throw new Error("the stream ended without an answer");
  }
}

/** One MCP server (Streamable HTTP transport), its session cached for the instance's life. */
class McpServer {
  /** @param {McpConfig} config */
  constructor(config) {
    this.url = config.url;
    this.headers = resolveHeaders(config.headers).headers;
    /** @type {Set<string> | null} */
    this.allow = Array.isArray(config.tools) ? new Set(config.tools) : null;
    this.timeoutMs = (Number(config.timeout) > 0 ? Number(config.timeout) : 10) * 1000;
    /** @type {Promise<McpSession> | null} */
    this.session = null;
  }

  /**
   * The session: the one being set up or ready, or a new one (one in-flight promise per server).
   * @returns {Promise<McpSession>}
   */
  connect() {
    if (this.session === null) {
      const session = this.initialize();
      this.session = session;
      session.catch(() => {
        if (this.session === session) this.session = null; // tried again on the next request
      });
    }
    return this.session;
  }

  /**
   * @param {McpSession | null} session
   * @param {Record<string, unknown>} message
   * @param {AbortSignal} signal
   * @returns {Promise<Response>}
   */
  post(session, message, signal) {
    /** @type {Record<string, string>} */
    const headers = {
      ...this.headers,
      Accept: "application/json, text/event-stream",
      "Content-Type": "application/json",
      "User-Agent": USER_AGENT,
    };
    if (session) {
      headers["MCP-Protocol-Version"] = session.protocol;
      if (session.sessionId) headers["Mcp-Session-Id"] = session.sessionId;
    }
    return fetch(this.url, { method: "POST", headers, body: JSON.stringify(message), redirect: "manual", signal });
  }

  /**
   * A JSON-RPC request's result; throws on an HTTP or JSON-RPC error.
   * @param {McpSession | null} session
   * @param {string} method
   * @param {Record<string, unknown>} params
   * @param {AbortSignal} signal
   * @returns {Promise<{ result: unknown, headers: Headers }>}
   */
  async request(session, method, params, signal) {
    const id = ++rpcIds;
    const res = await this.post(session, { jsonrpc: "2.0", id, method, params }, signal);
    if (res.status < 200 || res.status > 299) throw await httpFailure(res);
    const answer = await readRpc(res, id);
    if (isObject(answer.error)) throw new ToolFailure("error", `error: ${redact(String(answer.error.message ?? ""))}`);
    return { result: answer.result, headers: res.headers };
  }

  /** @returns {Promise<McpSession>} */
  async initialize() {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.timeoutMs);
    const signal = controller.signal;
    try {
      const init = await this.request(null, "initialize", {
        protocolVersion: MCP_PROTOCOL,
        capabilities: {},
        clientInfo: { name: "agent-framework", version: "1" },
      }, signal);
      const version = isObject(init.result) ? init.result.protocolVersion : undefined;
      /** @type {McpSession} */
      const session = {
        sessionId: init.headers.get("mcp-session-id"),
        protocol: typeof version === "string" ? version : MCP_PROTOCOL,
        tools: [],
      };
      const note = await this.post(session, { jsonrpc: "2.0", method: "notifications/initialized" }, signal);
      await note.body?.cancel().catch(() => undefined);
      if (note.status < 200 || note.status > 299) throw new Error(`HTTP ${note.status}`);
      /** @type {unknown} */
      let cursor;
      for (let page = 0; page < 100; page++) {
        const { result } = await this.request(session, "tools/list", cursor ? { cursor } : {}, signal);
        const tools = isObject(result) && Array.isArray(result.tools) ? result.tools : [];
        for (const tool of tools) {
          if (isObject(tool) && typeof tool.name === "string") {
            session.tools.push({
              name: tool.name,
              description: typeof tool.description === "string" ? tool.description : "",
              inputSchema: isObject(tool.inputSchema) ? tool.inputSchema : { type: "object" },
            });
          }
        }
        cursor = isObject(result) ? result.nextCursor : undefined;
        if (typeof cursor !== "string" || cursor === "") break;
      }
      return session;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * One tools/call; a 404 for a session means it is gone: a new one, once.
   * @param {string} name
   * @param {Record<string, unknown>} args
   * @param {number} timeoutMs
   * @param {AbortSignal} outer
   * @returns {Promise<ToolResult>}
   */
  async call(name, args, timeoutMs, outer) {
    try {
      return await bounded(timeoutMs, outer, async (signal) => {
        for (let attempt = 0; ; attempt++) {
          const pending = this.connect();
          const session = await pending;
          try {
            const { result } = await this.request(session, "tools/call", { name, arguments: args }, signal);
            const content = isObject(result) && Array.isArray(result.content) ? result.content : [];
            const text = content
              .map((item) => (isObject(item) && item.type === "text" && typeof item.text === "string" ? item.text
                : JSON.stringify(item)))
              .join("\n");
            if (isObject(result) && result.isError === true) return { text: `error: ${text}`, outcome: "error" };
            return { text, outcome: "ok" };
          } catch (err) {
            const gone = err instanceof ToolFailure && err.message.startsWith("error: the tool answered HTTP 404");
            if (!gone || !session.sessionId || attempt > 0) throw err;
            if (this.session === pending) this.session = null;
          }
        }
      });
    } catch (err) {
      if (!(err instanceof ToolFailure)) throw err;
      return { text: err.message, outcome: err.outcome };
    }
  }
}

const HTTP_TOOLS = (AGENT.tools ?? []).map(httpTool);
const MCP_SERVERS = (AGENT.mcp ?? []).map((config) => new McpServer(config));
/** @type {Set<string>} */
const CLASHES_LOGGED = new Set();

/**
 * A server's address for the log: scheme, host and path, never headers or a query.
 * @param {string} url
 * @returns {string}
 */
function shown(url) {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
  } catch {
    return "(an invalid URL)";
  }
}

/**
 * The tools this request may offer: the HTTP tools, then each reachable MCP server's (within
 * min(its timeout, the time left)); a server that cannot be set up offers none this time.
 * @param {number} leftMs
 * @returns {Promise<Tool[]>}
 */
async function availableTools(leftMs) {
  /** @type {Tool[]} */
  const tools = [...HTTP_TOOLS];
  if (MCP_SERVERS.length === 0) return tools;
  const names = new Set(tools.map((tool) => tool.name));
  const sessions = await Promise.all(MCP_SERVERS.map(async (server) => {
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    let timer;
    const late = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error("timeout")), Math.max(1, Math.min(server.timeoutMs, leftMs)));
    });
    try {
      return await Promise.race([server.connect(), late]);
    } catch (err) {
      const why = err instanceof ToolFailure ? err.message.replace(/^error: /, "").slice(0, 80)
        : err instanceof Error && err.message === "timeout" ? "no answer in time" : "unreachable";
      console.error(`${AGENT.name}: the MCP server ${shown(server.url)} offers no tools this request (${why})`);
      return null;
    } finally {
      clearTimeout(timer);
    }
  }));
  MCP_SERVERS.forEach((server, index) => {
    const session = /** @type {McpSession | null} */ (sessions[index]);
    if (!session) return;
    for (const info of session.tools) {
      if (server.allow && !server.allow.has(info.name)) continue;
      if (names.has(info.name)) {
        const key = `${server.url} ${info.name}`;
        if (!CLASHES_LOGGED.has(key)) {
          CLASHES_LOGGED.add(key);
          console.error(`${AGENT.name}: the MCP tool ${info.name} of ${shown(server.url)} is not offered: ` +
            "another tool has that name");
        }
        continue;
      }
      names.add(info.name);
      tools.push({
        name: info.name,
        description: info.description,
        parameters: info.inputSchema,
        timeoutMs: server.timeoutMs,
        run: (args, limitMs, signal) => server.call(info.name, args, limitMs, signal),
      });
    }
  });
  return tools;
}

// ------------------------------------------------------------------- model calls

/**
 * One request's state: its deadline, its abort signal, what it used, what its record says.
 */
class Run {
  /**
   * @param {Request} request
   * @param {Platform} platform
   * @param {number} startMs
   */
  constructor(request, platform, startMs) {
    this.request = request;
    this.startMs = startMs;
    this.requestId = platform.requestId || request.headers.get("x-vercel-id") || crypto.randomUUID();
    const remaining = platform.remainingMs;
    // The deadline: the platform's remaining time (capped by the timeout), else the configured timeout;
    // minus one second, and never under 0.5 s, so the first model call is always made.
    this.endMs = startMs + (typeof remaining === "number" && Number.isFinite(remaining)
      ? Math.max(LAST_CALL_MS, Math.min(TIMEOUT_S * 1000, remaining) - 1000) : DEADLINE_MS);
    this.firstByteMs = Math.min(this.endMs, startMs + FIRST_BYTE_MS);
    this.stream = false;
    this.limitS = TIMEOUT_S;
    this.apiKey = "";
    /** @type {Record<string, unknown>[]} the messages after the system prompt */
    this.history = [];
    /** @type {number | null} a client's lower max_tokens (the OpenAI-compatible endpoint) */
    this.maxTokens = null;
    /** @type {string | null} "openai" on the OpenAI-compatible endpoint */
    this.endpoint = null;
    /** @type {string | null} the accepted API key's id */
    this.keyId = null;
    this.message = "";
    this.controller = new AbortController();
    this.expired = false; // set by the timers only
    /** @type {ReturnType<typeof setTimeout>[]} */
    this.timers = [];
    this.started = false;
    /** @type {() => void} */
    this.onStart = () => undefined;
    /** @type {number | null} */
    this.ttftMs = null;
    this.steps = 0;
    this.tokens = 0;
    this.inputTokens = 0;
    this.outputTokens = 0;
    this.longestModelMs = 0;
    /** @type {string | null} */
    this.stopped = null;
    /** @type {ToolRecord[]} */
    this.tools = [];
    /** @type {{ name: string, arguments: string, result: string }[]} */
    this.toolContent = [];
    this.logged = false;
    /** @type {Record<string, unknown>[]} the loop's messages, system prompt first, final answer last */
    this.messages = [];
    /** @type {Session | null} */
    this.session = null;
    this.trips = 0;
    this.storeMs = 0;
    /** @type {string | null} the UTC day whose token counter this request adds to */
    this.day = null;
    /** @type {string | null} what the store could not do after the answer (for the usage record) */
    this.storeNote = null;
  }

  /**
   * Arms the deadline timers (the first byte's too, for a stream or an Edge JSON answer).
   * @param {boolean} stream
   */
  arm(stream) {
    this.stream = stream;
    if (!stream) this.endMs = this.firstByteMs;
    this.limitS = stream || FIRST_BYTE_S === null ? TIMEOUT_S : Math.min(TIMEOUT_S, FIRST_BYTE_S);
    const expire = () => {
      this.expired = true;
      this.controller.abort();
    };
    this.timers.push(setTimeout(expire, Math.max(0, this.endMs - Date.now())));
    if (stream) this.timers.push(setTimeout(expire, Math.max(0, this.firstByteMs - Date.now())));
  }

  /** The response has started: the first byte's limit no longer applies. */
  start() {
    if (this.started) return;
    this.started = true;
    if (this.timers.length > 1) clearTimeout(/** @type {ReturnType<typeof setTimeout>} */ (this.timers.pop()));
    this.onStart();
  }

  done() {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers = [];
  }

  /** @returns {number} until when a failed model call may be retried */
  retryUntil() {
    return this.started ? this.endMs : this.firstByteMs;
  }

  timedOut() {
    return new UpstreamError(504, `the model did not answer within ${this.limitS} s`);
  }

  /**
   * The usage record: one JSON line on stdout (each platform's log), never content unless
   * log_content is set.
   * @param {number} status the HTTP status sent
   * @param {string | null} [response]
   * @param {string | null} [error] what ended a stream after its first byte (its status was 200)
   */
  log(status, response = null, error = null) {
    if (this.logged) return;
    this.logged = true;
    /** @type {Record<string, unknown>} */
    const record = {
      type: "agent.usage",
      severity: status >= 500 || error !== null ? "ERROR" : status >= 400 ? "WARNING" : "INFO",
      request_id: this.requestId,
      agent: AGENT.name,
      status,
      latency_ms: Date.now() - this.startMs,
    };
    if (this.endpoint !== null) record.endpoint = this.endpoint;
    if (this.keyId !== null) record.key_id = this.keyId;
    if (this.ttftMs !== null) record.ttft_ms = this.ttftMs;
    Object.assign(record, {
      steps: this.steps,
      stopped: this.stopped,
      "gen_ai.operation.name": "chat",
      "gen_ai.provider.name": "openai",
      "gen_ai.request.model": AGENT.model,
      "gen_ai.usage.input_tokens": this.inputTokens,
      "gen_ai.usage.output_tokens": this.outputTokens,
      tokens: this.tokens,
      tools: this.tools,
    });
    record.session = this.session !== null;
    if (this.trips > 0) {
      record.store_round_trips = this.trips;
      record.store_ms = Math.round(this.storeMs * 10) / 10;
    }
    if (error !== null) record.error = error;
    else if (this.storeNote !== null) record.error = this.storeNote;
    if (LOG_CONTENT) {
      record.content = {
        message: redact(this.message),
        response: response === null ? null : redact(response),
        tool_calls: this.toolContent,
      };
    }
    console.log(JSON.stringify(record));
  }
}

/**
 * POST to the Chat Completions endpoint, retrying 429/5xx and network errors.
 * Resolves with a 2xx Response; throws UpstreamError otherwise.
 * @param {string} payload
 * @param {Run} run
 * @returns {Promise<Response>}
 */
async function callModel(payload, run) {
  const signal = run.controller.signal;
  for (let attempt = 0; ; attempt++) {
    /** @type {UpstreamError} */
    let failure;
    let wait = 500 * 2 ** attempt;
    try {
      const res = await fetch(COMPLETIONS_URL, {
        method: "POST",
        headers: { Authorization: `Bearer ${run.apiKey}`, "Content-Type": "application/json" },
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
      if (signal.aborted) throw run.timedOut();
      failure = new UpstreamError(502, "could not reach the model endpoint");
      console.error(`${AGENT.name}: could not reach the model endpoint (attempt ${attempt + 1})`);
    }
    // Retry only while the wait still leaves time for another answer.
    if (attempt >= RETRIES || Date.now() + wait >= run.retryUntil()) throw failure;
    await sleep(wait);
    if (signal.aborted) throw run.timedOut();
  }
}

/**
 * Tool calls as the model sent them (well-formed ones only).
 * @param {unknown} calls
 * @returns {ToolCall[]}
 */
function toolCallsOf(calls) {
  if (!Array.isArray(calls)) return [];
  /** @type {ToolCall[]} */
  const out = [];
  for (const call of calls) {
    if (!isObject(call) || !isObject(call.function)) continue;
    out.push({
      id: typeof call.id === "string" ? call.id : `call_${out.length}`,
      type: typeof call.type === "string" ? call.type : "function",
      function: {
        name: String(call.function.name ?? ""),
        arguments: typeof call.function.arguments === "string" ? call.function.arguments
          : JSON.stringify(call.function.arguments ?? {}),
      },
    });
  }
  return out;
}

/**
 * @param {unknown} usage
 * @param {Step} step
 */
function countUsage(usage, step) {
  if (!isObject(usage)) return;
  if (typeof usage.total_tokens === "number") step.total = usage.total_tokens;
  if (typeof usage.prompt_tokens === "number") step.input = usage.prompt_tokens;
  if (typeof usage.completion_tokens === "number") step.output = usage.completion_tokens;
}

/**
 * One model call answered as JSON.
 * @param {Run} run
 * @param {Record<string, unknown>} payload
 * @returns {Promise<Step>}
 */
async function jsonStep(run, payload) {
  const upstream = await callModel(JSON.stringify(payload), run);
  /** @type {string} */
  let text;
  try {
    text = await upstream.text();
  } catch {
    throw run.expired ? run.timedOut() : new UpstreamError(502, CUT_OFF);
  }
  /** @type {unknown} */
  let answer;
  try {
    answer = JSON.parse(text);
  } catch {
    throw new UpstreamError(502, "the model endpoint sent a malformed answer");
  }
  const choice = isObject(answer) && Array.isArray(answer.choices) ? answer.choices[0] : undefined;
  const message = isObject(choice) ? choice.message : undefined;
  if (!isObject(message) || (typeof message.content !== "string" && message.content !== null)) {
    throw new UpstreamError(502, "the model endpoint sent a malformed answer");
  }
  /** @type {Step} */
  const step = { content: message.content, toolCalls: toolCallsOf(message.tool_calls), input: 0, output: 0, total: 0 };
  countUsage(isObject(answer) ? answer.usage : undefined, step);
  return step;
}

/**
 * One model call streamed: text pieces go to the sink as they come; tool_calls deltas are put
 * together by index (id and name from the first, arguments concatenated).
 * @param {Run} run
 * @param {Record<string, unknown>} payload
 * @param {Sink} sink
 * @returns {Promise<Step>}
 */
async function streamStep(run, payload, sink) {
  const upstream = await callModel(JSON.stringify(payload), run);
  if (!upstream.body) throw new UpstreamError(502, "the model endpoint sent an empty stream");
  const reader = upstream.body.getReader();
  const decoder = new TextDecoder();
  /** @type {Step} */
  const step = { content: null, toolCalls: [], input: 0, output: 0, total: 0 };
  /** @type {ToolCall[]} */
  const calls = [];
  let buffer = "";
  let text = "";
  try {
    for (let end = false; !end;) {
      const { value, done } = await reader.read();
      buffer += done ? decoder.decode() + "\n" : decoder.decode(value, { stream: true });
      /** @type {number} */
      let newline;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, newline).replace(/\r$/, "");
        buffer = buffer.slice(newline + 1);
        if (!line.startsWith("data:")) continue;
        const data = line.slice(5).trim();
        if (data === "[DONE]") {
          end = true;
          break;
        }
        /** @type {unknown} */
        let chunk;
        try {
          chunk = JSON.parse(data);
        } catch {
          continue; // not a JSON event: skip it
        }
        if (!isObject(chunk)) continue;
        countUsage(chunk.usage, step);
        const choice = Array.isArray(chunk.choices) ? chunk.choices[0] : undefined;
        const delta = isObject(choice) ? choice.delta : undefined;
        if (!isObject(delta)) continue;
        if (typeof delta.content === "string" && delta.content !== "") {
          text += delta.content;
          if (run.ttftMs === null) run.ttftMs = Date.now() - run.startMs;
          run.start();
          sink.text(delta.content);
        }
        if (Array.isArray(delta.tool_calls)) {
          for (const part of delta.tool_calls) {
            if (!isObject(part)) continue;
            const index = typeof part.index === "number" ? part.index : calls.length;
            const fn = isObject(part.function) ? part.function : {};
            let call = calls[index];
            if (!call) {
              call = { id: "", type: "function", function: { name: "", arguments: "" } };
              calls[index] = call;
            }
            if (typeof part.id === "string" && !call.id) call.id = part.id;
            if (typeof part.type === "string") call.type = part.type;
            if (typeof fn.name === "string" && !call.function.name) call.function.name = fn.name;
            if (typeof fn.arguments === "string") call.function.arguments += fn.arguments;
          }
          run.start();
        }
      }
      if (done) end = true;
    }
  } catch {
    throw run.expired ? run.timedOut() : new UpstreamError(502, CUT_OFF);
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  step.toolCalls = calls.filter((call) => call !== undefined).map((call, i) => ({ ...call, id: call.id || `call_${i}` }));
  step.content = text === "" && step.toolCalls.length > 0 ? null : text;
  if (!run.started && text === "" && step.toolCalls.length === 0) throw new UpstreamError(502, NO_ANSWER);
  return step;
}

// ------------------------------------------------------------------- the loop

/**
 * One tool call's result (errors are results too).
 * @param {Run} run
 * @param {Tool[]} tools
 * @param {ToolCall} call
 * @returns {Promise<ToolResult>}
 */
async function runTool(run, tools, call) {
  const name = call.function.name;
  const tool = tools.find((t) => t.name === name);
  if (!tool) return { text: `error: there is no tool named "${name}"`, outcome: "unknown_tool" };
  /** @type {unknown} */
  let args;
  try {
    args = call.function.arguments.trim() === "" ? {} : JSON.parse(call.function.arguments);
  } catch {
    args = undefined;
  }
  if (!isObject(args)) return { text: "error: the arguments are not a valid JSON object", outcome: "invalid_arguments" };
  const why = mismatch(tool.parameters, args, "arguments");
  if (why) return { text: `error: the arguments do not match the tool's parameters: ${why}`, outcome: "invalid_arguments" };
  const limitMs = Math.min(tool.timeoutMs, run.endMs - Date.now() - RESERVE_MS);
  try {
    return await tool.run(args, Math.max(1, limitMs), run.controller.signal);
  } catch {
    return { text: "error: could not reach the tool", outcome: "unreachable" };
  }
}

/**
 * The loop of docs/agent-loop.md: model calls with tools until the model answers or a limit
 * shapes the answer. Returns the response text; throws UpstreamError for a model failure.
 * @param {Run} run
 * @param {Sink | null} sink
 * @returns {Promise<string>}
 */
async function loop(run, sink) {
  /** @type {Record<string, unknown>[]} */
  const messages = [SYSTEM_MESSAGE, ...run.history];
  run.messages = messages;
  const tools = await availableTools(run.endMs - Date.now());
  const longestTool = tools.reduce((most, tool) => Math.max(most, tool.timeoutMs), 0);
  const offered = tools.map((tool) => ({
    type: "function",
    function: { name: tool.name, description: tool.description, parameters: tool.parameters },
  }));
  /** @type {string[]} */
  const texts = [];
  for (let k = 1; ; k++) {
    const left = run.endMs - Date.now();
    if (k > 1 && left < LAST_CALL_MS) {
      run.stopped = "deadline";
      messages.push({ role: "assistant", content: texts.join("") });
      return texts.join("");
    }
    let offer = tools.length > 0;
    if (offer) {
      /** @type {string | null} */
      let stop = null;
      if (k >= MAX_STEPS) stop = "max_steps";
      else if (MAX_REQUEST_TOKENS !== null && run.tokens >= MAX_REQUEST_TOKENS) stop = "token_budget";
      else if (left < RESERVE_MS + run.longestModelMs + longestTool) stop = "deadline";
      if (stop !== null) {
        run.stopped = stop;
        offer = false;
      }
    }
    /** @type {Record<string, unknown>} */
    const payload = { model: AGENT.model, messages, max_tokens: run.maxTokens ?? AGENT.max_tokens };
    if (AGENT.temperature !== null && AGENT.temperature !== undefined) payload.temperature = AGENT.temperature;
    if (run.stream) {
      payload.stream = true;
      payload.stream_options = { include_usage: true };
    }
    if (offer) payload.tools = offered;
    sink?.stepStart();
    const began = Date.now();
    const step = sink ? await streamStep(run, payload, sink) : await jsonStep(run, payload);
    run.longestModelMs = Math.max(run.longestModelMs, Date.now() - began);
    run.steps = k;
    run.tokens += step.total;
    run.inputTokens += step.input;
    run.outputTokens += step.output;
    sink?.textEnd();
    if (!offer || step.toolCalls.length === 0) {
      sink?.stepEnd();
      messages.push({ role: "assistant", content: step.content ?? "" });
      return step.content ?? "";
    }
    if (step.content) texts.push(step.content);
    messages.push({ role: "assistant", content: step.content, tool_calls: step.toolCalls });
    for (const call of step.toolCalls) {
      /** @type {unknown} */
      let input = call.function.arguments;
      try {
        input = JSON.parse(call.function.arguments);
      } catch {
        // not JSON: shown as the raw text
      }
      sink?.toolInput(call.id, call.function.name, input);
    }
    const results = await Promise.all(step.toolCalls.map(async (call) => {
      const began = Date.now();
      const result = await runTool(run, tools, call);
      return { text: bound(redact(result.text)), outcome: result.outcome, ms: Date.now() - began };
    }));
    step.toolCalls.forEach((call, i) => {
      const result = results[i];
      messages.push({ role: "tool", tool_call_id: call.id, content: result.text });
      run.tools.push({ name: call.function.name, duration_ms: result.ms, outcome: result.outcome });
      if (LOG_CONTENT) {
        run.toolContent.push({ name: call.function.name, arguments: redact(call.function.arguments), result: result.text });
      }
      sink?.toolOutput(call.id, result.text);
    });
    sink?.stepEnd();
  }
}

// ------------------------------------------------------------------- handlers

/**
 * Which endpoint a request is for: null (the agent's own contract), "chat", "models", or "other" (a
 * path under /v1/ that is neither).
 * @param {Request} request
 * @returns {string | null}
 */
function routeOf(request) {
  /** @type {string} */
  let path;
  try {
    path = new URL(request.url).pathname.replace(/\/+$/, "");
  } catch {
    return null;
  }
  if (path.endsWith(CHAT_PATH)) return "chat";
  if (path.endsWith(MODELS_PATH)) return "models";
  return `${path}/`.includes("/v1/") ? "other" : null;
}

/**
 * OpenAI's error shape. x-should-retry: false (obeyed by both official clients): every error here is
 * final, the model call having been retried already.
 * @param {Request} request
 * @param {number} status
 * @param {string} message
 * @param {string} type
 * @param {string | null} code
 * @param {Record<string, string>} [extra]
 * @param {string | null} [param]
 * @returns {Response}
 */
function openaiFail(request, status, message, type, code, extra = {}, param = null) {
  return json(request, status, { error: { message, type, param, code } }, { "x-should-retry": "false", ...extra });
}

/**
 * @param {string} text
 * @returns {Promise<Uint8Array>}
 */
async function sha256(text) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(text)));
}

/**
 * Equal digests, in a time that does not depend on where they differ.
 * @param {Uint8Array} a
 * @param {Uint8Array} b
 * @returns {boolean}
 */
function sameDigest(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

/** @type {Promise<Uint8Array[]> | null} */
let keyDigests = null;

/**
 * With auth.api_keys: null when the request carries an accepted key (its id then on the run), else
 * the answer (401, or 500 when the keys' variable is unset).
 * @param {Run} run
 * @param {string | null} route
 * @returns {Promise<Response | null>}
 */
async function checkKey(run, route) {
  if (KEYS_ENV === null) return null;
  const request = run.request;
  if (KEYS.length === 0) {
    const sentence = `${KEYS_ENV} is not set in the function's environment`;
    return route ? openaiFail(request, 500, sentence, "server_error", null) : fail(request, 500, sentence);
  }
  keyDigests ??= Promise.all(KEYS.map(sha256));
  const known = await keyDigests;
  const bearer = request.headers.get("authorization") ?? "";
  const offered = [request.headers.get("x-api-key") ?? "", /^bearer /i.test(bearer) ? bearer.slice(7) : ""]
    .map((value) => value.trim());
  /** @type {string | null} */
  let found = null;
  for (const value of offered) {
    if (value === "") continue;
    const digest = await sha256(value);
    for (const key of known) { // every key compared: the time does not tell which one matched
      if (sameDigest(digest, key) && found === null) {
        found = [...key.subarray(0, 6)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
      }
    }
  }
  if (found !== null) {
    run.keyId = found;
    return null;
  }
  const sentence = offered.some((value) => value !== "") ? "the API key is not valid"
    : "an API key is required: send Authorization: Bearer KEY or x-api-key: KEY";
  const challenge = { "WWW-Authenticate": "Bearer" };
  if (route) return openaiFail(request, 401, sentence, "invalid_request_error", "invalid_api_key", challenge);
  return json(request, 401, { error: sentence }, challenge);
}

// ------------------------------------------ sessions and the daily token quota

/** The answer is ready but the conversation could not be saved (409, 503). */
class SaveError extends Error {
  /**
   * @param {number} status
   * @param {string} message
   */
  constructor(status, message) {
    super(message);
    this.name = "SaveError";
    this.status = status;
  }
}

/** @type {SessionStore | null} */
let store = null;
/** @type {string | null} */
let storeProblem = null;
// lib/with-sessions.mjs registers sessions.mjs's openStore here when sessions are on (an agent without
// them loads no store code); a registry key rather than an export keeps the core's exports the handlers.
const STORE_OPENER = Symbol.for("serverless-agent.openStore");

/** @returns {SessionStore | null} the store, opened on first use (opening makes no request) */
function sessionStore() {
  if (store !== null || storeProblem !== null) return store;
  /** @type {OpenStore | undefined} */
  const openStoreFn = /** @type {any} */ (globalThis)[STORE_OPENER];
  if (typeof openStoreFn !== "function") {
    storeProblem = "the session store is not available: lib/sessions.mjs is not part of the app";
    return null;
  }
  try {
    store = openStoreFn(SESSIONS, AGENT.name, ENV);
  } catch (err) {
    storeProblem = `the session store is not usable: ${err instanceof Error ? err.message : String(err)}`;
  }
  return store;
}

/**
 * One store request, counted and timed for the usage record.
 * @template T
 * @param {Run} run
 * @param {() => Promise<T>} operation
 * @returns {Promise<T>}
 */
async function trip(run, operation) {
  const began = performance.now();
  try {
    return await operation();
  } finally {
    run.trips += 1;
    run.storeMs += performance.now() - began;
  }
}

/**
 * @param {unknown} err
 * @param {string} name "StoreConflict" | "StoreError"
 */
function isStore(err, name) {
  return err instanceof Error && err.name === name;
}

/**
 * messages from `start`, moved on to the first user message: no tool message loses its assistant message.
 * @param {Record<string, unknown>[]} messages
 * @param {number} start
 */
function fromUser(messages, start) {
  let i = Math.max(0, start);
  while (i < messages.length && !(isObject(messages[i]) && messages[i].role === "user")) i++;
  return messages.slice(i);
}

/**
 * What a save keeps: the last max_messages, cut at a user message, within the store's maxBytes.
 * @param {Record<string, unknown>[]} messages
 * @param {number} maxBytes
 */
function kept(messages, maxBytes) {
  let out = fromUser(messages, messages.length - MAX_MESSAGES);
  while (out.length > 0 && maxBytes > 0 && encoder.encode(JSON.stringify(out)).length > maxBytes) out = fromUser(out, 1);
  return out;
}

/**
 * With auth.daily_tokens: null when the key may still spend tokens today (UTC), else the 429 (503: no store).
 * @param {Run} run
 * @param {string | null} route
 * @returns {Promise<Response | null>}
 */
async function checkQuota(run, route) {
  if (DAILY_TOKENS === null || run.keyId === null) return null;
  /** @param {number} status @param {string} sentence @param {Record<string, string>} extra */
  const refuse = (status, sentence, extra) => {
    run.done();
    run.log(status);
    if (route !== null) {
      return openaiFail(run.request, status, sentence, status === 429 ? "rate_limit_error" : "server_error",
        status === 429 ? "daily_tokens_exceeded" : "session_store_unavailable", extra);
    }
    return json(run.request, status, { error: sentence }, extra);
  };
  const opened = sessionStore();
  if (opened === null) return refuse(503, storeProblem ?? "the session store is not configured", {});
  const now = Date.now();
  run.day = new Date(now).toISOString().slice(0, 10);
  /** @type {number} */
  let used;
  try {
    used = await trip(run, () => opened.tokensUsed(/** @type {string} */ (run.keyId), /** @type {string} */ (run.day)));
  } catch (err) {
    if (!isStore(err, "StoreError")) throw err;
    return refuse(503, `the session store could not be read: ${/** @type {Error} */ (err).message}`, {});
  }
  if (used < DAILY_TOKENS) return null;
  run.day = null;
  const wait = 86400 - (Math.floor(now / 1000) % 86400);
  // x-should-retry: false, or OpenAI's clients would retry the 429 at once
  return refuse(429, `this API key has used its ${DAILY_TOKENS} tokens for today; the quota renews at midnight UTC ` +
    `(in ${wait} s)`, { "Retry-After": String(wait), "x-should-retry": "false" });
}

/**
 * The conversation (one read; a new id when the request named none), on the run; or the 503 when the
 * store cannot be reached (before the model is called).
 * @param {Run} run
 * @param {string | null} sessionId
 * @returns {Promise<Response | null>}
 */
async function loadSession(run, sessionId) {
  const opened = sessionStore();
  if (opened === null) return failed(run, 503, storeProblem ?? "the session store is not configured");
  if (sessionId === null) {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    run.session = { id: [...bytes].map((b) => b.toString(16).padStart(2, "0")).join(""), history: [], version: 0,
      window: [] };
    return null;
  }
  try {
    const { messages, version } = await trip(run, () => opened.load(sessionId));
    run.session = { id: sessionId, history: messages, version, window: fromUser(messages, messages.length - MAX_MESSAGES) };
    return null;
  } catch (err) {
    if (!isStore(err, "StoreError")) throw err;
    return failed(run, 503, `the session store could not be read: ${/** @type {Error} */ (err).message}`);
  }
}

/**
 * After the answer: this turn saved (one write with the version loaded; on a conflict appended to a
 * fresh load, SAVE_TRIES times at most) and its tokens counted. Throws SaveError (409, 503).
 * @param {Run} run
 */
async function settle(run) {
  const opened = store;
  if (opened === null) return;
  const session = run.session;
  if (session !== null) {
    const turn = run.messages.slice(1 + session.window.length); // user, assistant (+ tool calls, results), answer
    let base = session.history;
    let version = session.version;
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          session.version = await trip(run, () => opened.save(session.id, kept([...base, ...turn], opened.maxBytes), version));
          break;
        } catch (err) {
          if (!isStore(err, "StoreConflict")) throw err;
          if (attempt >= SAVE_TRIES) {
            throw new SaveError(409, "the conversation changed while this answer was saved (other requests on the " +
              "same session_id at once); send the message again");
          }
          ({ messages: base, version } = await trip(run, () => opened.load(session.id)));
        }
      }
    } catch (err) {
      if (isStore(err, "StoreError")) {
        throw new SaveError(503, `the session store could not save the conversation: ${/** @type {Error} */ (err).message}`);
      }
      throw err;
    }
  }
  if (run.day !== null && run.keyId !== null && run.tokens > 0) {
    const keyId = run.keyId;
    const day = run.day;
    try {
      await trip(run, () => opened.addTokens(keyId, day, run.tokens));
    } catch (err) {
      if (!isStore(err, "StoreError")) throw err;
      run.storeNote = `the session store could not count this request's tokens: ${/** @type {Error} */ (err).message}`;
    }
  }
}

/** @param {Run} run @returns {Record<string, string>} */
function sessionHeaders(run) {
  if (run.session === null) return {};
  /** @type {Record<string, string>} */
  const headers = { "x-session-id": run.session.id };
  if (ORIGINS.length > 0) headers["Access-Control-Expose-Headers"] = "x-session-id";
  return headers;
}

/**
 * The contract's answer, never an exception: the host would answer an escaped one with its own page.
 * @param {Request} request
 * @returns {Promise<Response>}
 */
export async function POST(request) {
  return serve(request, {});
}

/**
 * Every request but a preflight: the key checked (with auth.api_keys), then the agent's contract or
 * the OpenAI-compatible endpoint.
 * @param {Request} request
 * @param {Platform} platform
 * @returns {Promise<Response>}
 */
async function serve(request, platform) {
  if (WARM_SECRET !== null && request.method === "GET" && await warmMarked(request)) return warmUp("scheduler");
  const run = new Run(request, platform, Date.now());
  const route = routeOf(request);
  if (route !== null) run.endpoint = "openai";
  const post = request.method === "POST" && (route === null || route === "chat");
  try {
    const refused = await checkKey(run, route);
    if (refused !== null) {
      if (post) run.log(refused.status);
      return refused;
    }
    if (route !== null) return await openai(run, route);
    if (request.method !== "POST") return notAllowed(request);
    return await respond(run);
  } catch (err) {
    run.done();
    // The class and the stack, not the message: one from a library may quote a header, and so the key.
    const name = err instanceof Error ? err.name : typeof err;
    const stack = err instanceof Error ? (err.stack ?? "").split("\n").slice(1).join("\n") : "";
    console.error(`${AGENT.name}: unexpected ${name} (message withheld)\n${stack}`);
    if (post) run.log(500);
    const sentence = `the agent failed unexpectedly (${name}); see the function's log`;
    return route !== null ? openaiFail(request, 500, sentence, "server_error", null) : fail(request, 500, sentence);
  }
}

/**
 * @param {Run} run
 * @param {number} status
 * @param {string} error
 * @returns {Response}
 */
function failed(run, status, error) {
  run.done();
  run.log(status);
  return fail(run.request, status, error);
}

/**
 * The model API key, set on the run; or why it cannot be used.
 * @param {Run} run
 * @returns {string | null}
 */
function modelKey(run) {
  // A key saved from a file often ends in a newline; one that cannot be sent gets the Python runtime's answer.
  const apiKey = (ENV[API_KEY_ENV] ?? "").trim();
  if (!apiKey) return `${API_KEY_ENV} is not set in the function's environment`;
  if (/[^\x20-\x7e]/.test(apiKey)) {
    return `${API_KEY_ENV} holds characters not allowed in an API key ` +
      "(a line break, a control or a non-ASCII character)";
  }
  run.apiKey = apiKey;
  return null;
}

/**
 * @param {Run} run
 * @returns {Promise<Response>}
 */
async function respond(run) {
  const request = run.request;
  const parsed = await parseRequest(request);
  if ("error" in parsed) return failed(run, 400, parsed.error);
  if (parsed.sessionId !== null && SESSIONS === null) return failed(run, 400, NO_SESSIONS);
  run.message = parsed.message;
  const user = { role: "user", content: parsed.message };
  run.history = [user];

  const problem = modelKey(run);
  if (problem !== null) return failed(run, 500, problem);
  const refused = await checkQuota(run, null);
  if (refused !== null) return refused;
  if (SESSIONS !== null) {
    const unavailable = await loadSession(run, parsed.sessionId);
    if (unavailable !== null) return unavailable;
    run.history = [...(run.session?.window ?? []), user];
  }
  run.arm(parsed.stream);

  if (!parsed.stream) {
    /** @type {string} */
    let response;
    try {
      response = await loop(run, null);
      await settle(run);
    } catch (err) {
      if (err instanceof UpstreamError || err instanceof SaveError) return failed(run, err.status, err.message);
      throw err;
    }
    run.done();
    /** @type {Record<string, unknown>} */
    const answer = { response, tokens: run.tokens, steps: run.steps };
    if (run.stopped !== null) answer.stopped = run.stopped;
    if (run.session !== null) answer.session_id = run.session.id;
    run.log(200, response);
    return json(request, 200, answer, sessionHeaders(run));
  }
  return streamed(run, (request.headers.get("accept") ?? "").includes("text/event-stream") ? "ui" : "text");
}

// ------------------------------------------------ the OpenAI-compatible endpoint

const ROLES = new Set(["system", "developer", "user", "assistant", "tool"]);

/**
 * @typedef {{ messages: Record<string, unknown>[], stream: boolean, includeUsage: boolean, maxTokens: number | null }} ChatAsk
 */

/**
 * A chat completion request, or why it cannot be served: [status, message, param, code].
 * @param {string} text
 * @returns {ChatAsk | [number, string, string | null, string | null]}
 */
function parseChat(text) {
  /** @type {unknown} */
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    return [400, "the request body is not valid JSON", null, null];
  }
  if (!isObject(body)) return [400, "the request body must be a JSON object", null, null];
  const model = body.model;
  if (typeof model !== "string" || model === "") {
    return [400, "the field 'model' is required: this agent's name, as /v1/models lists it", "model", null];
  }
  if (model !== AGENT.name) {
    return [404, `The model \`${model.slice(0, 100)}\` does not exist: this endpoint serves \`${AGENT.name}\``, "model",
      "model_not_found"];
  }
  const messages = body.messages;
  if (!Array.isArray(messages) || messages.length === 0) {
    return [400, "the field 'messages' must be a non-empty array", "messages", null];
  }
  for (let i = 0; i < messages.length; i++) {
    const item = messages[i];
    if (!isObject(item) || typeof item.role !== "string" || !ROLES.has(item.role)) {
      return [400, `messages[${i}] must be an object with a role of system, developer, user, assistant or tool`,
        `messages[${i}]`, null];
    }
    const content = item.content;
    if (content !== undefined && content !== null && typeof content !== "string" && !Array.isArray(content)) {
      return [400, `messages[${i}].content must be a string or an array`, `messages[${i}].content`, null];
    }
  }
  if (Array.isArray(body.tools) ? body.tools.length > 0 : body.tools !== undefined && body.tools !== null) {
    return [400, "this agent runs its own tools: send no 'tools'", "tools", null];
  }
  const stream = body.stream;
  if (stream !== undefined && stream !== null && typeof stream !== "boolean") {
    return [400, "the field 'stream' must be true or false", "stream", null];
  }
  const options = body.stream_options;
  if (options !== undefined && options !== null && !isObject(options)) {
    return [400, "the field 'stream_options' must be an object", "stream_options", null];
  }
  /** @type {number | null} */
  let maxTokens = null;
  for (const field of ["max_completion_tokens", "max_tokens"]) {
    const value = body[field];
    if (value === undefined || value === null) continue;
    if (typeof value !== "number" || !Number.isInteger(value) || value < 1) {
      return [400, `the field '${field}' must be a positive integer`, field, null];
    }
    maxTokens = maxTokens === null ? value : Math.min(maxTokens, value);
  }
  return {
    messages: /** @type {Record<string, unknown>[]} */ (messages),
    stream: stream === true,
    includeUsage: stream === true && isObject(options) && options.include_usage === true,
    maxTokens,
  };
}

/**
 * The last user message's text, for the usage line's content (log_content only).
 * @param {Record<string, unknown>[]} messages
 * @returns {string}
 */
function lastText(messages) {
  for (let i = messages.length - 1; i >= 0; i--) {
    if (messages[i].role === "user") {
      const content = messages[i].content;
      return typeof content === "string" ? content : JSON.stringify(content ?? null);
    }
  }
  return "";
}

/**
 * @param {Run} run
 * @returns {{ prompt_tokens: number, completion_tokens: number, total_tokens: number }}
 */
function usageOf(run) {
  return { prompt_tokens: run.inputTokens, completion_tokens: run.outputTokens, total_tokens: run.tokens };
}

/**
 * GET /v1/models and POST /v1/chat/completions under the agent's path.
 * @param {Run} run
 * @param {string} route
 * @returns {Promise<Response>}
 */
async function openai(run, route) {
  const request = run.request;
  const method = request.method;
  if (route === "other") {
    return openaiFail(request, 404, "there is no such path under /v1: use /v1/chat/completions or /v1/models",
      "invalid_request_error", "unknown_url");
  }
  if (route === "models") {
    if (method !== "GET" && method !== "HEAD") {
      return openaiFail(request, 405, `method ${method} not allowed; use GET`, "invalid_request_error",
        "method_not_allowed", { Allow: "GET, OPTIONS" });
    }
    return json(request, 200, {
      object: "list",
      data: [{ id: AGENT.name, object: "model", created: CREATED, owned_by: AGENT.name }],
    });
  }
  if (method !== "POST") {
    return openaiFail(request, 405, `method ${method} not allowed; use POST`, "invalid_request_error",
      "method_not_allowed", { Allow: ALLOW });
  }
  /** @param {number} status @param {string} message @param {string} type @param {string | null} code @param {string | null} [param] */
  const refuse = (status, message, type, code, param = null) => {
    run.done();
    run.log(status);
    return openaiFail(request, status, message, type, code, {}, param);
  };
  const asked = parseChat(await request.text());
  if (Array.isArray(asked)) {
    const [status, message, param, code] = asked;
    return refuse(status, message, "invalid_request_error", code, param);
  }
  const problem = modelKey(run);
  if (problem !== null) return refuse(500, problem, "server_error", null);
  const overQuota = await checkQuota(run, route);
  if (overQuota !== null) return overQuota;
  run.history = asked.messages;
  run.message = lastText(asked.messages);
  run.maxTokens = asked.maxTokens === null ? null : Math.min(asked.maxTokens, AGENT.max_tokens);
  run.arm(asked.stream);
  if (asked.stream) return streamed(run, "chat", asked.includeUsage);
  /** @type {string} */
  let response;
  try {
    response = await loop(run, null);
    await settle(run);
  } catch (err) {
    if (err instanceof UpstreamError) {
      return refuse(err.status, err.message, "api_error", err.status === 504 ? "timeout" : "model_error");
    }
    throw err;
  }
  run.done();
  run.log(200, response);
  return json(request, 200, {
    id: chatId(run),
    object: "chat.completion",
    created: Math.floor(run.startMs / 1000),
    model: AGENT.name,
    choices: [{ index: 0, message: { role: "assistant", content: response, refusal: null }, finish_reason: "stop",
      logprobs: null }],
    usage: usageOf(run),
  }, { "x-request-id": run.requestId });
}

/**
 * @param {Run} run
 * @returns {string}
 */
function chatId(run) {
  return `chatcmpl-${run.requestId.replace(/[^A-Za-z0-9]/g, "")}`;
}

/**
 * A streamed answer: the AI SDK's UI message stream (v1) when asked for with Accept:
 * text/event-stream ("ui"), the text as it comes ("text"), or OpenAI's chat.completion.chunk events
 * ("chat"). It starts once the first model call has answered (text or tool calls); a failure before
 * that is the JSON error with its status.
 * @param {Run} run
 * @param {"ui" | "text" | "chat"} mode
 * @param {boolean} [includeUsage] chat: the usage chunk before [DONE]
 * @returns {Promise<Response>}
 */
async function streamed(run, mode, includeUsage = false) {
  const ui = mode === "ui";
  /** @type {ReadableStreamDefaultController<Uint8Array> | null} */
  let out = null;
  let closed = false;
  let lastWrite = Date.now();
  /** @type {ReadableStream<Uint8Array>} */
  const body = new ReadableStream({
    start(controller) {
      out = controller;
    },
    cancel() {
      closed = true;
      run.controller.abort(); // the client has gone: stop the model and the tools
    },
  });
  /** @param {string} text */
  const write = (text) => {
    if (closed || out === null) return;
    lastWrite = Date.now();
    out.enqueue(encoder.encode(text));
  };
  /** @param {Record<string, unknown>} part */
  const send = (part) => write(`data: ${JSON.stringify(part)}\n\n`);
  const close = () => {
    if (closed || out === null) return;
    closed = true;
    out.close();
  };
  const meta = { id: chatId(run), object: "chat.completion.chunk", created: Math.floor(run.startMs / 1000),
    model: AGENT.name };
  /**
   * @param {Record<string, unknown>} delta
   * @param {string | null} [finish]
   */
  const chunk = (delta, finish = null) => {
    /** @type {Record<string, unknown>} */
    const part = { ...meta, choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }] };
    if (includeUsage) part.usage = null;
    send(part);
  };
  let answer = "";
  const nothing = () => undefined;
  /** @type {Sink} */
  let sink;
  /** @type {ReturnType<typeof setInterval> | undefined} */
  let keepAlive;
  if (ui) {
    let texts = 0;
    /** @type {string | null} */
    let textId = null;
    send({ type: "start", messageId: `msg-${crypto.randomUUID()}`,
      ...(run.session !== null ? { messageMetadata: { session_id: run.session.id } } : {}) });
    sink = {
      stepStart: () => send({ type: "start-step" }),
      text(piece) {
        if (textId === null) {
          textId = `text-${++texts}`;
          send({ type: "text-start", id: textId });
        }
        send({ type: "text-delta", id: textId, delta: piece });
      },
      textEnd() {
        if (textId !== null) send({ type: "text-end", id: textId });
        textId = null;
      },
      toolInput: (id, name, input) => send({ type: "tool-input-available", toolCallId: id, toolName: name, input }),
      toolOutput: (id, output) => send({ type: "tool-output-available", toolCallId: id, output }),
      stepEnd: () => send({ type: "finish-step" }),
    };
  } else {
    if (mode === "chat") chunk({ role: "assistant", content: "" });
    sink = {
      stepStart: nothing,
      text(piece) {
        answer += piece;
        if (mode === "chat") chunk({ content: piece });
        else write(piece);
      },
      textEnd: nothing,
      toolInput: nothing,
      toolOutput: nothing,
      stepEnd: nothing,
    };
  }
  if (mode !== "text") {
    keepAlive = setInterval(() => {
      if (Date.now() - lastWrite >= KEEP_ALIVE_MS) write(": keep-alive\n\n");
    }, 1000);
  }

  /** @type {Promise<void>} */
  const started = new Promise((resolve) => {
    run.onStart = resolve;
  });
  /** @type {Promise<{ response: string } | { error: unknown }>} */
  const task = loop(run, sink).then(async (response) => {
    await settle(run);
    return { response };
  }).then((done) => done, (error) => ({ error }));
  const early = await Promise.race([started.then(() => null), task]);
  if (early !== null && "error" in early) {
    clearInterval(keepAlive);
    closed = true;
    const err = early.error;
    if (err instanceof UpstreamError || err instanceof SaveError) {
      if (mode !== "chat") return failed(run, err.status, err.message);
      run.done();
      run.log(err.status);
      return openaiFail(run.request, err.status, err.message, "api_error", err.status === 504 ? "timeout" : "model_error");
    }
    throw err;
  }
  run.start(); // a loop that ended before any output (no time left) still answers

  task.then((outcome) => {
    clearInterval(keepAlive);
    run.done();
    if ("error" in outcome) {
      const err = outcome.error;
      const text = err instanceof UpstreamError || err instanceof SaveError ? err.message
        : `the agent failed unexpectedly (${err instanceof Error ? err.name : typeof err}); see the function's log`;
      if (ui) {
        send({ type: "error", errorText: text });
        write("data: [DONE]\n\n");
      } else if (mode === "chat") {
        const code = err instanceof UpstreamError ? (err.status === 504 ? "timeout" : "model_error") : null;
        send({ error: { message: text, type: err instanceof UpstreamError ? "api_error" : "server_error", param: null,
          code } });
        write("data: [DONE]\n\n");
      }
      close(); // plain text: the status is sent already, so the text ends where it broke
      run.log(200, ui ? null : answer, text);
      return;
    }
    /** @type {Record<string, unknown>} */
    const metadata = { tokens: run.tokens, steps: run.steps };
    if (run.stopped !== null) metadata.stopped = run.stopped;
    if (ui) {
      send({ type: "finish", messageMetadata: metadata });
      write("data: [DONE]\n\n");
    } else if (mode === "chat") {
      chunk({}, "stop");
      if (includeUsage) send({ ...meta, choices: [], usage: usageOf(run) });
      write("data: [DONE]\n\n");
    }
    close();
    run.log(200, mode === "ui" ? outcome.response : mode === "chat" ? outcome.response : answer);
  });

  /** @type {Record<string, string>} */
  const headers = ui
    ? { "Content-Type": "text/event-stream", "Cache-Control": "no-cache", "x-vercel-ai-ui-message-stream": "v1" }
    : mode === "chat" ? { "Content-Type": "text/event-stream", "Cache-Control": "no-cache", "x-request-id": run.requestId }
      : { "Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-cache" };
  return new Response(body, { status: 200, headers: { ...headers, ...sessionHeaders(run), ...corsHeaders(run.request, false) } });
}

/**
 * A CORS preflight: answered without a key.
 * @param {Request} request
 * @returns {Response}
 */
export function OPTIONS(request) {
  const methods = routeOf(request) === "models" ? "GET, OPTIONS" : ALLOW;
  return new Response(null, { status: 204, headers: corsHeaders(request, true, methods) });
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
 * GET: /v1/models; elsewhere a 405 (after the key check, with auth.api_keys).
 * @param {Request} request
 * @returns {Promise<Response>}
 */
export function GET(request) {
  return serve(request, {});
}

/**
 * @param {Request} request
 * @returns {Promise<Response>}
 */
export function PUT(request) {
  return serve(request, {});
}

/**
 * @param {Request} request
 * @returns {Promise<Response>}
 */
export function PATCH(request) {
  return serve(request, {});
}

/**
 * @param {Request} request
 * @returns {Promise<Response>}
 */
export function DELETE(request) {
  return serve(request, {});
}

/**
 * @param {Request} request
 * @returns {Promise<Response>}
 */
export function HEAD(request) {
  return serve(request, {});
}

// ------------------------------------------------- the scheduled warm-up (issue 14)

/**
 * Whether a GET carries the warm-up secret: `x-agent-warmup: <secret>` (the Cloud Scheduler job's
 * header) or `Authorization: Bearer <secret>` (what Vercel Cron sends from CRON_SECRET). Compared as
 * digests in constant time; any other GET is an ordinary request.
 * @param {Request} request
 * @returns {Promise<boolean>}
 */
async function warmMarked(request) {
  if (WARM_SECRET === null) return false;
  const bearer = request.headers.get("authorization") ?? "";
  const offered = [request.headers.get("x-agent-warmup") ?? "",
    bearer.slice(0, 7).toLowerCase() === "bearer " ? bearer.slice(7) : ""];
  const expected = await sha256(WARM_SECRET);
  let marked = false;
  for (const value of offered) {
    if (value.trim() !== "" && sameDigest(await sha256(value.trim()), expected)) marked = true;
  }
  return marked;
}

/**
 * The scheduler's warm-up: reaching this code is the point (the instance is loaded and stays warm), so
 * it calls no model, spends no tokens and writes no usage record, one `agent.warmup` line instead.
 * @param {string} source what sent it (aws-scheduler, scheduler)
 * @returns {Response}
 */
export function warmUp(source) {
  console.log(JSON.stringify({ type: "agent.warmup", severity: "DEBUG", agent: AGENT.name, source }));
  return new Response(JSON.stringify({ warm: true }), { status: 200, headers: { "Content-Type": "application/json" } });
}

/**
 * One entry point for hosts that do not dispatch by method themselves (the AWS Lambda adapter):
 * a preflight, or every other method through the key check to the contract (405 for a method it does
 * not take). `platform` carries what the host knows: the time it leaves the invocation and its
 * request id.
 * @param {Request} request
 * @param {Platform} [platform]
 * @returns {Promise<Response>}
 */
export async function handle(request, platform = {}) {
  if (request.method === "OPTIONS") return OPTIONS(request);
  return serve(request, platform);
}
