// The official client (@upstash/redis, https://upstash.com/docs/redis/sdks/ts/overview) against a
// REST front: node check-front.mjs URL TOKEN prints one JSON object of what each call returned.
import { Redis } from "@upstash/redis";

const [url, token] = process.argv.slice(2);
const redis = new Redis({ url, token, retry: false });
/** @type {Record<string, unknown>} */
const out = {};
/** @param {string} name @param {() => Promise<unknown>} run */
async function step(name, run) {
  try {
    out[name] = await run();
  } catch (error) {
    out[name] = { error: String(error instanceof Error ? error.message : error) };
  }
}
await step("set", () => redis.set("check:s", "héllo 🤖", { ex: 100 }));
await step("get", () => redis.get("check:s"));
await step("json", async () => { await redis.set("check:j", { a: [1, "two"] }); return redis.get("check:j"); });
await step("missing", () => redis.get("check:none"));
await step("hset", () => redis.hset("check:h", { agent: "bot", version: 3 }));
await step("hgetall", () => redis.hgetall("check:h"));
await step("incrby", () => redis.incrby("check:n", 5));
await step("ttl", () => redis.ttl("check:s"));
await step("eval", () => redis.eval("return {KEYS[1], ARGV[1], redis.call('INCR', KEYS[1])}", ["check:e"], ["x"]));
await step("multi", () => redis.multi().incrby("check:m", 2).expire("check:m", 60).get("check:m").exec());
await step("pipeline", () => redis.pipeline().set("check:p", "v").get("check:p").exec());
await step("wrongtype", () => redis.incr("check:h"));
await step("unauthorized", () => new Redis({ url, token: "wrong", retry: false }).get("check:s"));
process.stdout.write(`${JSON.stringify(out)}\n`);
