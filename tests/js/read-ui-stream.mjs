#!/usr/bin/env node
// Reads a UI message stream (the Vercel AI SDK's SSE protocol, v1) with the `ai`
// package's OWN reader, as useChat's DefaultChatTransport does, and prints one JSON
// object on stdout.
//
//   node read-ui-stream.mjs < stream.sse           the SSE bytes on stdin
//   node read-ui-stream.mjs URL [JSON-BODY]        POSTs JSON-BODY (default {}) to URL with
//                                                  Content-Type: application/json and
//                                                  Accept: text/event-stream, reads the answer
//
// The pipeline is the SDK's: parseJsonEventStream({stream, schema: uiMessageChunkSchema})
// (every chunk validated; one that fails throws, as DefaultChatTransport.processResponseStream
// does), then readUIMessageStream({stream}) builds the UIMessage (processUIMessageStream:
// a text-delta without its text-start, a tool output for an unknown call, ... raise
// UIMessageStreamError).
//
// Output:
//   {"chunks": [...],        every validated chunk, in order, as parsed (type and fields)
//    "message": {...}|null,  the last UIMessage snapshot: {id, role, metadata, parts}
//                            (parts: step-start, text {text, state}, tool-NAME {toolCallId,
//                            state, input, output, errorText}, ...)
//    "metadata": ...,        message.metadata (the finish part's messageMetadata), or null
//    "error": null | {"name", "message"},   the first error the SDK raised reading the stream
//                            (invalid JSON, a chunk the schema refuses, a protocol violation);
//                            an `error` PART of the stream is not this: see errorParts
//    "errorParts": [...],    the errorText of every `error` part
//    "done": bool,           the last SSE event was `data: [DONE]` (the SDK does not check this)
//    "events": n, "comments": n,   SSE events with data, and comment lines (": keep-alive")
//    "status": n, "headers": {...}  only with a URL: the answer's status and headers (lower-case)
//   }
// The exit status is 0 whenever that object could be printed (also when "error" is set);
// 2 on a usage error or when the URL could not be fetched at all.

import { parseJsonEventStream, readUIMessageStream, uiMessageChunkSchema } from "ai";

const MAX_MESSAGE = 2000; // a schema error lists every alternative of the union: keep the start

function describe(err) {
  if (err == null) return null;
  const message = String(err.message ?? err);
  return {
    name: err.name ?? "Error",
    message: message.length > MAX_MESSAGE ? message.slice(0, MAX_MESSAGE) + " [...]" : message,
  };
}

function sseSummary(text) {
  // Our own count of the raw events, for `done`, `events` and `comments`.
  const blocks = text.replace(/\r\n?/g, "\n").split(/\n\n+/);
  let events = 0;
  let comments = 0;
  let lastData = null;
  for (const block of blocks) {
    const data = [];
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) comments++;
      else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
    }
    if (data.length) {
      events++;
      lastData = data.join("\n");
    }
  }
  return { done: lastData === "[DONE]", events, comments };
}

async function readAll(stream) {
  const reader = stream.getReader();
  const parts = [];
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
  }
  return Buffer.concat(parts.map((p) => Buffer.from(p)));
}

function bytesStream(bytes) {
  return new ReadableStream({
    start(controller) {
      if (bytes.length) controller.enqueue(new Uint8Array(bytes));
      controller.close();
    },
  });
}

async function readStdin() {
  const parts = [];
  for await (const part of process.stdin) parts.push(part);
  return Buffer.concat(parts);
}

async function readUiStream(bytes) {
  const chunks = [];
  const errorParts = [];
  let error = null;
  let message = null;
  const fail = (err) => {
    if (error === null) error = describe(err);
  };

  const chunkStream = parseJsonEventStream({ stream: bytesStream(bytes), schema: uiMessageChunkSchema }).pipeThrough(
    new TransformStream({
      transform(result, controller) {
        if (!result.success) throw result.error; // as DefaultChatTransport.processResponseStream
        chunks.push(result.value);
        if (result.value.type === "error") errorParts.push(result.value.errorText);
        controller.enqueue(result.value);
      },
    }),
  );

  const pendingErrorParts = [];
  try {
    for await (const snapshot of readUIMessageStream({
      stream: chunkStream,
      onError(err) {
        // an `error` part reaches onError as new Error(errorText): not a protocol error
        const index = pendingErrorParts.length < errorParts.length ? pendingErrorParts.length : -1;
        if (index >= 0 && err?.name === "Error" && err.message === errorParts[index]) {
          pendingErrorParts.push(err.message);
          return;
        }
        fail(err);
      },
    })) {
      message = snapshot;
    }
  } catch (err) {
    fail(err);
  }

  return {
    chunks,
    message: message && JSON.parse(JSON.stringify(message)),
    metadata: message?.metadata ?? null,
    error,
    errorParts,
    ...sseSummary(bytes.toString("utf8")),
  };
}

async function main(argv) {
  if (argv.length === 0) {
    return await readUiStream(await readStdin());
  }
  if (argv.length > 2 || !/^https?:\/\//.test(argv[0])) {
    process.stderr.write("usage: node read-ui-stream.mjs [URL [JSON-BODY]]  (no URL: the stream on stdin)\n");
    process.exit(2);
  }
  const [url, body = "{}"] = argv;
  let response;
  try {
    response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
      body,
    });
  } catch (err) {
    process.stderr.write(`could not fetch ${url}: ${err?.cause?.message ?? err.message}\n`);
    process.exit(2);
  }
  const bytes = response.body ? await readAll(response.body) : Buffer.alloc(0);
  const result = await readUiStream(bytes);
  if (!response.ok && result.error === null) {
    // DefaultChatTransport refuses a non-2xx answer with its body as the message
    result.error = { name: "HttpError", message: bytes.toString("utf8") || `HTTP ${response.status}` };
  }
  return { ...result, status: response.status, headers: Object.fromEntries(response.headers) };
}

main(process.argv.slice(2)).then(
  (result) => process.stdout.write(JSON.stringify(result) + "\n"),
  (err) => {
    process.stderr.write(`read-ui-stream: ${err?.stack ?? err}\n`);
    process.exit(2);
  },
);
