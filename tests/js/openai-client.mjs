// Drives an agent's OpenAI-compatible endpoint with the official `openai` npm package, as a user would:
//
//   node openai-client.mjs <agent URL> <api key> <model> <tag>
//
// Prints one JSON object: the models listed, a chat completion (no stream), a streamed one with the
// usage chunk, and the error a wrong model gets (status, code, the x-should-retry header), with the
// number of HTTP requests the client sent for it (its retries included).
import OpenAI from "openai";

const [agentUrl, apiKey, model, tag] = process.argv.slice(2);
let requests = 0;
/** @type {typeof fetch} */
const counting = (input, init) => {
  requests++;
  return fetch(input, init);
};
const client = new OpenAI({ baseURL: `${agentUrl.replace(/\/+$/, "")}/v1`, apiKey, fetch: counting, maxRetries: 2 });

const out = {};
out.models = (await client.models.list()).data.map((m) => ({ id: m.id, object: m.object, owned_by: m.owned_by }));

const completion = await client.chat.completions.create({ model, messages: [{ role: "user", content: `${tag} json` }] });
out.completion = {
  object: completion.object,
  model: completion.model,
  content: completion.choices[0].message.content,
  finish_reason: completion.choices[0].finish_reason,
  usage: completion.usage,
};

const stream = await client.chat.completions.create({
  model,
  messages: [{ role: "user", content: `${tag} stream` }],
  stream: true,
  stream_options: { include_usage: true },
});
const chunks = [];
for await (const chunk of stream) chunks.push(chunk);
out.stream = {
  objects: [...new Set(chunks.map((c) => c.object))],
  text: chunks.map((c) => c.choices[0]?.delta?.content ?? "").join(""),
  role: chunks[0]?.choices[0]?.delta?.role ?? null,
  finish: chunks.map((c) => c.choices[0]?.finish_reason).filter((f) => f),
  last: { choices: chunks.at(-1)?.choices, usage: chunks.at(-1)?.usage },
};

requests = 0;
try {
  await client.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: tag }] });
  out.wrong_model = null;
} catch (err) {
  const e = /** @type {any} */ (err);
  out.wrong_model = { name: e.constructor.name, status: e.status, code: e.code ?? null,
    retry: e.headers?.get?.("x-should-retry") ?? null, requests };
}
console.log(JSON.stringify(out));
