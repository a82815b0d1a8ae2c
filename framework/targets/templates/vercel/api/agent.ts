export const config = { runtime: "edge" };
// ^ Line 1 is read statically by Vercel. The build rewrites "edge" to "nodejs"
//   when agent.yaml asks for the Node.js runtime; nothing else here is templated.
//
// Vercel function for one agent. Static code: everything agent-specific comes
// from ../agent.json (written by the build), the only environment access is
// process.env. Web-standard APIs only, so it runs unchanged on the Edge and
// Node.js runtimes.

// The import attribute is required: on the Node.js runtime Vercel runs this
// file as native ESM ("type": "module"), where a bare JSON import throws at
// load (ERR_IMPORT_ATTRIBUTE_MISSING). On Edge, esbuild inlines the JSON.
import agent from "../agent.json" with { type: "json" };

declare const process: { env: Record<string, string | undefined> };

interface AgentConfig {
  name: string;
  model: string;
  max_tokens: number;
  temperature: number | null;
  base_url: string | null;
  system_prompt: string;
  timeout: number;
  stream: boolean;
  first_byte_timeout?: number | null;
  api_key_env: string;
  cors: { origins: string[] };
  retries: number;
}

// ---------------------------------------------------------------- module init

// The JSON's inferred type depends on its values (e.g. `[]` is never[]), so
// view it through the declared shape instead.
const AGENT = agent as unknown as AgentConfig;

const TIMEOUT_S = Number(AGENT.timeout);
const DEADLINE_MS = Math.max(1, TIMEOUT_S - 1) * 1000;
// Edge must start its response within 25 s: a JSON answer, or a stream's first piece, must come by then.
const FIRST_BYTE_S = typeof AGENT.first_byte_timeout === "number" ? AGENT.first_byte_timeout : null;
const FIRST_BYTE_MS = FIRST_BYTE_S === null ? DEADLINE_MS : Math.min(DEADLINE_MS, Math.max(1, FIRST_BYTE_S - 1) * 1000);
const RETRIES = Math.max(0, Math.floor(Number(AGENT.retries) || 0));
const DEFAULT_STREAM = AGENT.stream === true;
const API_KEY_ENV = AGENT.api_key_env;
const ORIGINS: readonly string[] = AGENT.cors?.origins ?? [];
const ANY_ORIGIN = ORIGINS.includes("*");
const ALLOWED_ORIGINS = new Set(ORIGINS);
const COMPLETIONS_URL =
  (AGENT.base_url || process.env.OPENAI_BASE_URL || "https://api.openai.com/v1").replace(/\/+$/, "") +
  "/chat/completions";
const SYSTEM_MESSAGE = { role: "system", content: AGENT.system_prompt };
const ALLOW = "POST, OPTIONS";
const encoder = new TextEncoder();

// -------------------------------------------------------------------- helpers

class UpstreamError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function corsHeaders(request: Request, preflight: boolean): Record<string, string> {
  const origin = request.headers.get("origin");
  const headers: Record<string, string> = {};
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

function json(request: Request, status: number, body: unknown, extra: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json", ...corsHeaders(request, false), ...extra },
  });
}

function fail(request: Request, status: number, error: string): Response {
  return json(request, status, { error });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Seconds from a Retry-After header (delta-seconds or HTTP date), or null. */
function retryAfterMs(value: string | null): number | null {
  if (value === null || value.trim() === "") return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, date - Date.now());
}

type Parsed = { message: string; stream: boolean } | { error: string };

async function parseRequest(request: Request): Promise<Parsed> {
  let body: unknown;
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
  if (stream !== undefined && typeof stream !== "boolean") {
    return { error: "the field 'stream' must be true or false" };
  }
  return { message, stream: stream === undefined ? DEFAULT_STREAM : stream };
}

/**
 * POST to the Chat Completions endpoint, retrying 429/5xx and network errors.
 * Resolves with a 2xx Response; throws UpstreamError otherwise.
 */
async function callModel(payload: string, apiKey: string, signal: AbortSignal, deadline: number): Promise<Response> {
  const timedOut = () => new UpstreamError(504, `the model did not answer within ${TIMEOUT_S} s`);
  for (let attempt = 0; ; attempt++) {
    let failure: UpstreamError;
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

/** Text of an upstream SSE stream: the concatenated delta.content pieces. */
function relayStream(upstream: Response, controller: AbortController, done: () => void): ReadableStream<Uint8Array> {
  const reader = upstream.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let finished = false;
  const finish = () => {
    if (!finished) {
      finished = true;
      done();
    }
  };

  /** Handles complete lines in the buffer; returns the text they carry and whether [DONE] was seen. */
  const drain = (): { text: string; end: boolean } => {
    let text = "";
    let newline: number;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, newline).replace(/\r$/, "");
      buffer = buffer.slice(newline + 1);
      if (!line.startsWith("data:")) continue;
      const data = line.slice(5).trim();
      if (data === "[DONE]") return { text, end: true };
      try {
        const chunk: unknown = JSON.parse(data);
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

  return new ReadableStream<Uint8Array>({
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
      } catch {
        // Deadline or network failure after the first byte: end the stream.
        finish();
        controller.abort();
        try {
          out.close();
        } catch {
          // already closed
        }
      }
    },
    cancel() {
      finish();
      controller.abort();
    },
  });
}

// ------------------------------------------------------------------- handlers

export async function POST(request: Request): Promise<Response> {
  const parsed = await parseRequest(request);
  if ("error" in parsed) return fail(request, 400, parsed.error);

  const apiKey = process.env[API_KEY_ENV];
  if (!apiKey) return fail(request, 500, `${API_KEY_ENV} is not set in the function's environment`);

  const body: Record<string, unknown> = {
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
  const timer = setTimeout(() => controller.abort(), limitMs);
  const firstByteTimer = setTimeout(() => controller.abort(), FIRST_BYTE_MS);
  const done = () => {
    clearTimeout(timer);
    clearTimeout(firstByteTimer);
  };
  const timedOut = () => fail(request, 504, `the model did not answer within ${limitS} s`);

  let upstream: Response;
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
    const relay = relayStream(upstream, controller, done).getReader();
    const first = await relay.read();
    clearTimeout(firstByteTimer);
    if (first.done) {
      done();
      if (controller.signal.aborted) return timedOut();
      return fail(request, 502, "the model endpoint ended the stream without an answer");
    }
    const stream = new ReadableStream<Uint8Array>({
      start(out) {
        out.enqueue(first.value);
      },
      async pull(out) {
        const next = await relay.read();
        if (next.done) out.close();
        else out.enqueue(next.value);
      },
      cancel(reason) {
        return relay.cancel(reason);
      },
    });
    return new Response(stream, {
      status: 200,
      headers: {
        "Content-Type": "text/plain; charset=utf-8",
        "Cache-Control": "no-cache",
        ...corsHeaders(request, false),
      },
    });
  }

  let answer: unknown;
  try {
    answer = JSON.parse(await upstream.text());
  } catch {
    done();
    if (controller.signal.aborted) return timedOut();
    return fail(request, 502, "the model endpoint sent a malformed answer");
  }
  done();
  const choice = isObject(answer) && Array.isArray(answer.choices) ? answer.choices[0] : undefined;
  const message = isObject(choice) ? choice.message : undefined;
  if (!isObject(message) || (typeof message.content !== "string" && message.content !== null)) {
    return fail(request, 502, "the model endpoint sent a malformed answer");
  }
  const usage = isObject(answer) ? answer.usage : undefined;
  const tokens = isObject(usage) && typeof usage.total_tokens === "number" ? usage.total_tokens : 0;
  return json(request, 200, { response: message.content ?? "", tokens });
}

export function OPTIONS(request: Request): Response {
  return new Response(null, { status: 204, headers: corsHeaders(request, true) });
}

function notAllowed(request: Request): Response {
  const status = 405;
  const extra = { Allow: ALLOW };
  if (request.method === "HEAD") {
    return new Response(null, { status, headers: { ...corsHeaders(request, false), ...extra } });
  }
  return json(request, status, { error: `method ${request.method} not allowed; use POST` }, extra);
}

export function GET(request: Request): Response {
  return notAllowed(request);
}

export function PUT(request: Request): Response {
  return notAllowed(request);
}

export function PATCH(request: Request): Response {
  return notAllowed(request);
}

export function DELETE(request: Request): Response {
  return notAllowed(request);
}

export function HEAD(request: Request): Response {
  return notAllowed(request);
}
