// The session stores of the JavaScript runtime (docs: the contract in issue 12): one conversation per
// record, written with optimistic concurrency, and the daily token counters of API keys. Two stores,
// for the platforms this runtime runs on:
//   "redis"    Upstash Redis's REST API (Vercel's marketplace store), for the Vercel route;
//   "dynamodb" DynamoDB's JSON API signed with SigV4, for the streaming AWS Lambda (no SDK is bundled).
// Web-standard APIs only (fetch, crypto.subtle, TextEncoder, AbortSignal), so it runs unchanged on
// Vercel's Edge and Node.js runtimes and on Lambda's Node.js runtime. The environment is a parameter
// (openStore's `env`): this module reads no global.
// Plain JavaScript with JSDoc types: `tsc --noEmit` (allowJs, checkJs, strict) checks it.
// Generated; do not edit.

/** @typedef {Record<string, unknown>} Message */

/**
 * agent.json's "sessions" block.
 * @typedef {object} SessionsConfig
 * @property {string} store "redis" | "dynamodb"
 * @property {number} ttl_hours
 * @property {number} [max_messages]
 * @property {string} [table] DynamoDB's table
 * @property {string} [url_env] the variable holding Upstash's REST URL
 * @property {string} [token_env] the variable holding Upstash's REST token
 */

/**
 * @typedef {object} Store
 * @property {string} kind
 * @property {number} maxBytes the largest `messages` JSON text (UTF-8 bytes) this store keeps
 * @property {(id: string) => Promise<{ messages: Message[], version: number }>} load
 *   `{messages: [], version: 0}` when absent or expired
 * @property {(id: string, messages: Message[], version: number) => Promise<number>} save
 *   writes only if the stored version is still `version` (0: no live record); returns version + 1
 * @property {(keyId: string, day: string, tokens: number) => Promise<number>} addTokens
 *   atomic; returns the day's new total
 * @property {(keyId: string, day: string) => Promise<number>} tokensUsed
 */

/** @typedef {Record<string, string | undefined>} Env */

/** The record changed since it was loaded: reload and retry, or answer 409. */
export class StoreConflict extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = "StoreConflict";
  }
}

/** The store is unreachable, refused the request, or holds an unreadable or foreign record. */
export class StoreError extends Error {
  /** @param {string} message a plain sentence, never a secret */
  constructor(message) {
    super(message);
    this.name = "StoreError";
  }
}

const SESSION_ID = /^[A-Za-z0-9_-]{1,128}$/;
const KEY_ID = /^[A-Za-z0-9_-]{1,128}$/;
const DAY = /^\d{4}-\d{2}-\d{2}$/;
const TIMEOUT_MS = 10000;
const ENCODER = new TextEncoder();

/**
 * @param {string} id
 * @returns {string}
 */
function sessionKey(id) {
  if (typeof id !== "string" || !SESSION_ID.test(id)) {
    throw new StoreError("a session id is 1 to 128 characters of A-Z, a-z, 0-9, _ and -");
  }
  return `s#${id}`;
}

/**
 * The counter's key and its expiry: two days after the start of `day` (UTC).
 * @param {string} keyId
 * @param {string} day YYYY-MM-DD
 * @returns {{ key: string, expires: number }}
 */
function counterKey(keyId, day) {
  if (typeof keyId !== "string" || !KEY_ID.test(keyId)) {
    throw new StoreError("a key id is 1 to 128 characters of A-Z, a-z, 0-9, _ and -");
  }
  const start = DAY.test(day) ? Date.parse(`${day}T00:00:00Z`) : NaN;
  if (!Number.isFinite(start) || new Date(start).toISOString().slice(0, 10) !== day) {
    throw new StoreError(`the day ${JSON.stringify(String(day).slice(0, 20))} is not a date (YYYY-MM-DD)`);
  }
  return { key: `q#${keyId}#${day}`, expires: start / 1000 + 2 * 86400 };
}

/**
 * @param {unknown} tokens
 * @returns {number}
 */
function tokenCount(tokens) {
  if (typeof tokens !== "number" || !Number.isSafeInteger(tokens) || tokens < 0) {
    throw new StoreError("a token count is a whole number, 0 or more");
  }
  return tokens;
}

/** @returns {number} now, in epoch seconds */
function nowSeconds() {
  return Date.now() / 1000;
}

/**
 * The record's expiry: now + ttl, whole seconds (the TTL attribute's unit).
 * @param {number} ttlHours
 * @returns {number}
 */
function expiresAt(ttlHours) {
  return Math.floor(nowSeconds() + ttlHours * 3600);
}

/**
 * The messages' JSON text, refused when the store cannot keep it.
 * @param {Message[]} messages
 * @param {number} maxBytes
 * @param {string} kind
 * @returns {string}
 */
function messagesText(messages, maxBytes, kind) {
  if (!Array.isArray(messages) || !messages.every((m) => m !== null && typeof m === "object" && !Array.isArray(m))) {
    throw new StoreError("the messages to save are not a list of objects");
  }
  const text = JSON.stringify(messages);
  const size = ENCODER.encode(text).length;
  if (size > maxBytes) {
    throw new StoreError(`the conversation is ${size} bytes of JSON, more than the ${kind} store keeps (${maxBytes})`);
  }
  return text;
}

/**
 * @param {number} version
 * @returns {number}
 */
function checkVersion(version) {
  if (typeof version !== "number" || !Number.isSafeInteger(version) || version < 0) {
    throw new StoreError("a record version is a whole number, 0 or more");
  }
  return version;
}

/**
 * A stored record read back: its checks are the same in every store.
 * @param {string} kind
 * @param {string} id
 * @param {string} agent this agent's name
 * @param {{ agent: unknown, messages: unknown, version: unknown }} record
 * @returns {{ messages: Message[], version: number }}
 */
function readRecord(kind, id, agent, record) {
  if (record.agent !== agent) {
    throw new StoreError(`the session ${id} in the ${kind} store belongs to another agent`);
  }
  const version = Number(record.version);
  /** @type {unknown} */
  let messages = null;
  try {
    messages = typeof record.messages === "string" ? JSON.parse(record.messages) : null;
  } catch {
    messages = null;
  }
  if (!Number.isSafeInteger(version) || version < 1 || !Array.isArray(messages)
      || !messages.every((m) => m !== null && typeof m === "object" && !Array.isArray(m))) {
    throw new StoreError(`the session ${id} in the ${kind} store is unreadable (not a conversation record)`);
  }
  return { messages: /** @type {Message[]} */ (messages), version };
}

/**
 * fetch with a timeout; a network failure is a StoreError naming the store and host only.
 * @param {string} kind
 * @param {string} url
 * @param {RequestInit} init
 * @returns {Promise<Response>}
 */
async function send(kind, url, init) {
  try {
    return await fetch(url, { ...init, signal: AbortSignal.timeout(TIMEOUT_MS) });
  } catch (error) {
    const host = new URL(url).host;
    const why = error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError")
      ? `did not answer within ${TIMEOUT_MS / 1000} s` : "is unreachable";
    throw new StoreError(`the ${kind} session store at ${host} ${why}`);
  }
}

/**
 * @param {number} ms
 * @returns {Promise<void>}
 */
function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ------------------------------------------------------------------------------- Upstash Redis (REST)

// Upstash's REST API (https://upstash.com/docs/redis/features/restapi): POST <url>/ with the command
// as a JSON array and `Authorization: Bearer <token>`; 200 {"result": ...}, or {"error": "ERR ..."}
// with 400; 401 for a missing or wrong token. POST <url>/multi-exec runs a list of commands as one
// MULTI/EXEC transaction and answers a list of {"result"} / {"error"}.
// A conversation is a hash at `s#<id>` (fields agent, messages, version, expires) with EXPIREAT at its
// `expires`: Redis never returns an expired key (https://redis.io/docs/latest/commands/expireat/).
// A counter is a string at `q#<key id>#<day>` (INCRBY https://redis.io/docs/latest/commands/incrby/).

// The compare-and-set, one EVAL (https://redis.io/docs/latest/commands/eval/): the version check,
// HSET and EXPIREAT run atomically. KEYS[1] the record; ARGV: the expected version, the new one,
// the messages' JSON, expires (epoch s), the agent. Returns 1 written, 0 a conflict, -1 foreign.
const SAVE_SCRIPT = [
  "local cur = redis.call('HMGET', KEYS[1], 'version', 'agent')",
  "if cur[1] and cur[2] ~= ARGV[5] then return -1 end",
  "if (cur[1] or '0') ~= ARGV[1] then return 0 end",
  "redis.call('HSET', KEYS[1], 'agent', ARGV[5], 'messages', ARGV[3], 'version', ARGV[2], 'expires', ARGV[4])",
  "redis.call('EXPIREAT', KEYS[1], ARGV[4])",
  "return 1",
].join("\n");

// Upstash's request limit depends on the plan (1 MB and more); keep the JSON under it with room for
// the command around it.
const REDIS_MAX_BYTES = 900000;

/**
 * @param {SessionsConfig} config
 * @param {string} agent
 * @param {Env} env
 * @returns {Store}
 */
function redisStore(config, agent, env) {
  const kind = "redis";
  const urlEnv = config.url_env || "KV_REST_API_URL";
  const tokenEnv = config.token_env || "KV_REST_API_TOKEN";
  // The marketplace integration sets KV_REST_API_URL / KV_REST_API_TOKEN
  // (https://upstash.com/docs/redis/howto/vercelintegration).
  const url = (env[urlEnv] || env.KV_REST_API_URL || "").replace(/\/+$/, "");
  const token = env[tokenEnv] || env.KV_REST_API_TOKEN || "";
  if (!url || !token) {
    throw new StoreError(`the redis session store needs its REST URL and token in ${urlEnv} and ${tokenEnv}`);
  }
  try {
    new URL(url);
  } catch {
    throw new StoreError(`${urlEnv} is not a URL`);
  }
  const ttlHours = Number(config.ttl_hours);

  /**
   * @param {string} path "" or "multi-exec"
   * @param {unknown[]} body
   * @returns {Promise<unknown>}
   */
  async function call(path, body) {
    const response = await send(kind, `${url}/${path}`, {
      method: "POST",
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const text = await response.text();
    /** @type {unknown} */
    let answer = null;
    try {
      answer = JSON.parse(text);
    } catch {
      answer = null;
    }
    if (response.status === 401 || response.status === 403) {
      throw new StoreError(`the redis session store refused the token in ${tokenEnv} (HTTP ${response.status})`);
    }
    const error = answer !== null && typeof answer === "object" && !Array.isArray(answer)
      ? /** @type {{ error?: unknown }} */ (answer).error : undefined;
    if (!response.ok || typeof error === "string") {
      const detail = typeof error === "string" ? `: ${error.slice(0, 200)}` : "";
      throw new StoreError(`the redis session store answered HTTP ${response.status}${detail}`);
    }
    if (Array.isArray(answer)) {
      return answer.map((item) => {
        const entry = /** @type {{ result?: unknown, error?: unknown }} */ (item ?? {});
        if (typeof entry.error === "string") {
          throw new StoreError(`the redis session store refused a command: ${entry.error.slice(0, 200)}`);
        }
        return entry.result;
      });
    }
    if (answer === null || typeof answer !== "object" || !("result" in answer)) {
      throw new StoreError(`the redis session store answered HTTP ${response.status} without a result`);
    }
    return /** @type {{ result: unknown }} */ (answer).result;
  }

  return {
    kind,
    maxBytes: REDIS_MAX_BYTES,

    async load(id) {
      const key = sessionKey(id);
      let result;
      try {
        result = await call("", ["HMGET", key, "agent", "messages", "version"]);
      } catch (error) {
        if (error instanceof StoreError && error.message.includes("WRONGTYPE")) {
          throw new StoreError(`the session ${id} in the redis store is unreadable (not a conversation record)`);
        }
        throw error;
      }
      const [recordAgent, messages, version] = Array.isArray(result) ? result : [];
      if (recordAgent == null && messages == null && version == null) return { messages: [], version: 0 };
      return readRecord(kind, id, agent, { agent: recordAgent, messages, version });
    },

    async save(id, messages, version) {
      const key = sessionKey(id);
      checkVersion(version);
      const text = messagesText(messages, REDIS_MAX_BYTES, kind);
      const expires = expiresAt(ttlHours);
      let result;
      try {
        result = await call("", ["EVAL", SAVE_SCRIPT, "1", key, String(version), String(version + 1), text,
          String(expires), agent]);
      } catch (error) {
        if (error instanceof StoreError && error.message.includes("WRONGTYPE")) {
          throw new StoreError(`the session ${id} in the redis store is unreadable (not a conversation record)`);
        }
        throw error;
      }
      if (result === -1) throw new StoreError(`the session ${id} in the redis store belongs to another agent`);
      if (result !== 1) throw new StoreConflict(`the session ${id} changed since version ${version} was loaded`);
      return version + 1;
    },

    async addTokens(keyId, day, tokens) {
      const { key, expires } = counterKey(keyId, day);
      const [total] = /** @type {unknown[]} */ (await call("multi-exec", [
        ["INCRBY", key, String(tokenCount(tokens))],
        ["EXPIREAT", key, String(expires)],
      ]));
      if (typeof total !== "number") throw new StoreError("the redis session store answered a counter that is not a number");
      return total;
    },

    async tokensUsed(keyId, day) {
      const { key } = counterKey(keyId, day);
      const value = await call("", ["GET", key]);
      if (value == null) return 0;
      const used = Number(value);
      if (!Number.isSafeInteger(used)) throw new StoreError(`the token counter of ${day} in the redis store is unreadable`);
      return used;
    },
  };
}

// ------------------------------------------------------------------------------------ DynamoDB (JSON)

// The low-level API (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.LowLevelAPI.html):
// POST / to https://dynamodb.<region>.amazonaws.com, `Content-Type: application/x-amz-json-1.0`,
// `X-Amz-Target: DynamoDB_20120810.<Operation>`, signed with SigV4; errors are 400 with
// {"__type": "com.amazonaws.dynamodb.v20120810#<Code>", "message"}.
// Items: `pk` "s#<id>" (agent S, messages S, version N, expires N) and "q#<key id>#<day>" (tokens N,
// expires N). `expires` is the table's TTL attribute, epoch seconds; expired items can still be read
// for about two days, so load checks it
// (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ttl-expired-items.html).
// Writes are conditional on `version`
// (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html).

// 400 KB per item, names and values (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Constraints.html).
const DYNAMODB_MAX_BYTES = 350000;
const RETRIED = new Set(["ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
  "InternalServerError", "ServiceUnavailable"]);

/**
 * @typedef {object} Credentials
 * @property {string} accessKeyId
 * @property {string} secretAccessKey
 * @property {string} [sessionToken]
 */

/**
 * @param {ArrayBuffer | Uint8Array} bytes
 * @returns {string}
 */
function hex(bytes) {
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * @param {string} text
 * @returns {Promise<string>}
 */
async function sha256Hex(text) {
  return hex(await crypto.subtle.digest("SHA-256", ENCODER.encode(text)));
}

/**
 * @param {BufferSource} key
 * @param {string} data
 * @returns {Promise<ArrayBuffer>}
 */
async function hmac(key, data) {
  const k = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return crypto.subtle.sign("HMAC", k, ENCODER.encode(data));
}

/**
 * RFC 3986 encoding of a path, `/` kept (SigV4's canonical URI, the path encoded once as botocore does
 * for services other than S3).
 * @param {string} path
 * @returns {string}
 */
function canonicalPath(path) {
  return encodeURIComponent(decodeURIComponent(path || "/")).replace(/%2F/g, "/")
    .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/**
 * Sign a request with AWS Signature Version 4
 * (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html):
 * the canonical request, the string to sign, the derived key and the Authorization header. The
 * session token is signed, as the SDKs do. Returns the headers to send (without Host, which fetch
 * sets from the URL: the same value as signed).
 * @param {object} request
 * @param {string} request.method
 * @param {string} request.url
 * @param {Record<string, string>} request.headers
 * @param {string} request.body
 * @param {string} request.region
 * @param {string} request.service
 * @param {Credentials} request.credentials
 * @param {Date} [request.date]
 * @returns {Promise<Record<string, string>>}
 */
export async function signV4({ method, url, headers, body, region, service, credentials, date }) {
  const target = new URL(url);
  const amzDate = (date ?? new Date()).toISOString().replace(/[-:]/g, "").replace(/\.\d+/, "");
  const day = amzDate.slice(0, 8);
  /** @type {Record<string, string>} */
  const signed = {};
  for (const [name, value] of Object.entries(headers)) signed[name.toLowerCase()] = String(value).trim().replace(/\s+/g, " ");
  signed.host = target.host;
  signed["x-amz-date"] = amzDate;
  if (credentials.sessionToken) signed["x-amz-security-token"] = credentials.sessionToken;
  const names = Object.keys(signed).sort();
  /** @type {string[][]} */
  const pairs = [];
  target.searchParams.forEach((v, k) => pairs.push([encodeURIComponent(k), encodeURIComponent(v)]));
  const query = pairs
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`).join("&");
  const canonical = [
    method.toUpperCase(),
    canonicalPath(target.pathname),
    query,
    names.map((n) => `${n}:${signed[n]}\n`).join(""),
    names.join(";"),
    await sha256Hex(body),
  ].join("\n");
  const scope = `${day}/${region}/${service}/aws4_request`;
  const toSign = ["AWS4-HMAC-SHA256", amzDate, scope, await sha256Hex(canonical)].join("\n");
  let key = await hmac(ENCODER.encode(`AWS4${credentials.secretAccessKey}`), day);
  for (const part of [region, service, "aws4_request"]) key = await hmac(key, part);
  const signature = hex(await hmac(key, toSign));
  const out = { ...signed };
  delete out.host;
  out.authorization = `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${scope}, `
    + `SignedHeaders=${names.join(";")}, Signature=${signature}`;
  return out;
}

/**
 * @param {SessionsConfig} config
 * @param {string} agent
 * @param {Env} env
 * @returns {Store}
 */
function dynamodbStore(config, agent, env) {
  const kind = "dynamodb";
  const table = config.table;
  if (typeof table !== "string" || !table) throw new StoreError("the dynamodb session store needs its table name");
  const region = env.AWS_REGION || env.AWS_DEFAULT_REGION || "";
  if (!region) throw new StoreError("the dynamodb session store needs AWS_REGION");
  const accessKeyId = env.AWS_ACCESS_KEY_ID || "";
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY || "";
  if (!accessKeyId || !secretAccessKey) {
    throw new StoreError("the dynamodb session store needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
  }
  /** @type {Credentials} */
  const credentials = { accessKeyId, secretAccessKey, sessionToken: env.AWS_SESSION_TOKEN || undefined };
  // The endpoint variables of the SDKs' configuration
  // (https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html): the service's own first.
  const endpoint = (env.AWS_ENDPOINT_URL_DYNAMODB || env.AWS_ENDPOINT_URL || `https://dynamodb.${region}.amazonaws.com`)
    .replace(/\/+$/, "");
  try {
    new URL(endpoint);
  } catch {
    throw new StoreError("AWS_ENDPOINT_URL is not a URL");
  }
  const url = `${endpoint}/`;
  const ttlHours = Number(config.ttl_hours);

  /**
   * One operation; throttling and 5xx retried twice with backoff. A failed condition comes back as
   * `{conditionFailed: item or null}`.
   * @param {string} operation
   * @param {Record<string, unknown>} payload
   * @returns {Promise<Record<string, any>>}
   */
  async function call(operation, payload) {
    const body = JSON.stringify({ TableName: table, ...payload });
    for (let attempt = 0; ; attempt++) {
      const headers = await signV4({
        method: "POST", url, body, region, service: "dynamodb", credentials,
        headers: { "content-type": "application/x-amz-json-1.0", "x-amz-target": `DynamoDB_20120810.${operation}` },
      });
      const response = await send(kind, url, { method: "POST", headers, body });
      const text = await response.text();
      /** @type {Record<string, any> | null} */
      let answer = null;
      try {
        const parsed = JSON.parse(text);
        answer = parsed !== null && typeof parsed === "object" && !Array.isArray(parsed) ? parsed : null;
      } catch {
        answer = null;
      }
      if (response.ok && answer) return answer;
      const code = String(answer?.__type ?? "").split("#").pop() || `HTTP ${response.status}`;
      if (code === "ConditionalCheckFailedException") return { conditionFailed: answer?.Item ?? null };
      if ((RETRIED.has(code) || response.status >= 500) && attempt < 2) {
        await sleep(50 * 2 ** attempt + Math.random() * 50);
        continue;
      }
      if (code === "ResourceNotFoundException") throw new StoreError(`the dynamodb table ${table} does not exist`);
      if (["UnrecognizedClientException", "InvalidSignatureException", "AccessDeniedException",
        "MissingAuthenticationTokenException", "ExpiredTokenException"].includes(code) || response.status === 403) {
        throw new StoreError(`the dynamodb session store refused the credentials (${code})`);
      }
      const message = typeof answer?.message === "string" ? `: ${answer.message.slice(0, 200)}` : "";
      throw new StoreError(`the dynamodb session store answered ${code}${message}`);
    }
  }

  /**
   * @param {Record<string, any> | undefined} item
   * @returns {boolean}
   */
  function live(item) {
    const expires = Number(item?.expires?.N);
    return !Number.isFinite(expires) || expires > nowSeconds();
  }

  return {
    kind,
    maxBytes: DYNAMODB_MAX_BYTES,

    async load(id) {
      const pk = sessionKey(id);
      // https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_GetItem.html
      const { Item: item } = await call("GetItem", { Key: { pk: { S: pk } }, ConsistentRead: true });
      if (!item || !live(item)) return { messages: [], version: 0 };
      return readRecord(kind, id, agent, { agent: item.agent?.S, messages: item.messages?.S, version: item.version?.N });
    },

    async save(id, messages, version) {
      const pk = sessionKey(id);
      checkVersion(version);
      const text = messagesText(messages, DYNAMODB_MAX_BYTES, kind);
      const now = Math.floor(nowSeconds());
      // Version 0: no record, or an expired one. Else: this agent's live record at `version`.
      // ALL_OLD returns the item a failed condition saw, which tells a conflict from a foreign record
      // (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_PutItem.html).
      const condition = version === 0
        ? { ConditionExpression: "attribute_not_exists(pk) OR #e <= :now",
          ExpressionAttributeNames: { "#e": "expires" }, ExpressionAttributeValues: { ":now": { N: String(now) } } }
        : { ConditionExpression: "#v = :v AND #a = :a AND #e > :now",
          ExpressionAttributeNames: { "#v": "version", "#a": "agent", "#e": "expires" },
          ExpressionAttributeValues: { ":v": { N: String(version) }, ":a": { S: agent }, ":now": { N: String(now) } } };
      const answer = await call("PutItem", {
        Item: {
          pk: { S: pk }, agent: { S: agent }, messages: { S: text },
          version: { N: String(version + 1) }, expires: { N: String(expiresAt(ttlHours)) },
        },
        ...condition,
        ReturnValuesOnConditionCheckFailure: "ALL_OLD",
      });
      if ("conditionFailed" in answer) {
        const old = answer.conditionFailed;
        if (old && live(old) && old.agent?.S !== agent) {
          throw new StoreError(`the session ${id} in the dynamodb store belongs to another agent`);
        }
        throw new StoreConflict(`the session ${id} changed since version ${version} was loaded`);
      }
      return version + 1;
    },

    async addTokens(keyId, day, tokens) {
      const { key, expires } = counterKey(keyId, day);
      // ADD is atomic (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.UpdateExpressions.html#Expressions.UpdateExpressions.ADD).
      const answer = await call("UpdateItem", {
        Key: { pk: { S: key } },
        UpdateExpression: "ADD #t :n SET #e = :e",
        ExpressionAttributeNames: { "#t": "tokens", "#e": "expires" },
        ExpressionAttributeValues: { ":n": { N: String(tokenCount(tokens)) }, ":e": { N: String(expires) } },
        ReturnValues: "UPDATED_NEW",
      });
      const total = Number(answer.Attributes?.tokens?.N);
      if (!Number.isSafeInteger(total)) throw new StoreError("the dynamodb session store answered a counter that is not a number");
      return total;
    },

    async tokensUsed(keyId, day) {
      const { key } = counterKey(keyId, day);
      const { Item: item } = await call("GetItem", { Key: { pk: { S: key } }, ConsistentRead: true });
      if (!item) return 0;
      const used = Number(item.tokens?.N ?? 0);
      if (!Number.isSafeInteger(used)) throw new StoreError(`the token counter of ${day} in the dynamodb store is unreadable`);
      return used;
    },
  };
}

/**
 * The store agent.json's "sessions" block names, for this agent.
 * @param {SessionsConfig} config
 * @param {string} agent the agent's name (another agent's records are refused)
 * @param {Env} env the environment (process.env on Node.js and Edge)
 * @returns {Store}
 */
export function openStore(config, agent, env) {
  const store = config?.store;
  if (store === "redis") return redisStore(config, agent, env);
  if (store === "dynamodb") return dynamodbStore(config, agent, env);
  throw new StoreError(`the JavaScript runtime has no ${JSON.stringify(String(store))} session store (redis, dynamodb)`);
}
