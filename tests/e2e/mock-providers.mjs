// Mock LLM providers on 127.0.0.1 that speak the providers' real wire formats
// (OpenAI Chat Completions today; one handler table entry per format) and fail on
// demand. Used by the end-to-end tests and by scripts/dev.
//
//   const mock = await startMockProvider({ name: "primary", apiKey: "k" });
//   mock.fault({ kind: "status", status: 500, times: 1 });   // next request fails
//   mock.fault({ kind: "ok", headers: { "x-ratelimit-remaining-requests": "0" }, times: 1 });
//   mock.calls  // every request received: { method, path, headers, body, at }
//
// Faults can also be chosen by the upstream model name (`fault-500`, `fault-cut`, …)
// so a config alone can demonstrate them. Node built-ins only.
import http from "node:http";
import { createHash, createHmac } from "node:crypto";
import { crc32 } from "node:zlib";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

// Unref'd: a long fault delay (fault-stall waits 60 s) must not keep the process
// alive after close(); while a request is open its socket keeps the loop running.
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms).unref());

/** Faults selected by the request's model name. */
const MODEL_FAULTS = {
  "fault-500": { kind: "status", status: 500 },
  "fault-503": { kind: "status", status: 503 },
  "fault-429": { kind: "status", status: 429, retryAfter: "2" },
  "fault-400": { kind: "status", status: 400 },
  "fault-slow": { kind: "slow_first_byte", delayMs: 5000 },
  "fault-slow-body": { kind: "slow_body", delayMs: 5000 },
  "fault-cut": { kind: "cut_stream", afterChunks: 3 },
  "fault-stall": { kind: "stall_stream", afterChunks: 2, stallMs: 60000 },
  "fault-malformed": { kind: "malformed" },
  "fault-html": { kind: "html" },
  "fault-hang": { kind: "hang" },
  "fault-stream-error": { kind: "stream_error_event" },
};

function openAiErrorBody(status) {
  if (status === 429) return { error: { message: "Rate limit reached for requests", type: "requests", param: null, code: "rate_limit_exceeded" } };
  if (status === 401) return { error: { message: "Incorrect API key provided.", type: "invalid_request_error", param: null, code: "invalid_api_key" } };
  if (status >= 500) return { error: { message: "The server had an error while processing your request.", type: "server_error", param: null, code: null } };
  return { error: { message: "Invalid request", type: "invalid_request_error", param: null, code: null } };
}

function textOf(content) {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) return content.filter((p) => p?.type === "text").map((p) => p.text).join("");
  return "";
}

const countWords = (text) => text.split(/\s+/).filter(Boolean).length;

/** A value a JSON schema accepts (OpenAPI-style upper-case types too): what a provider's JSON mode answers. */
function sampleOf(schema) {
  switch (String(schema?.type ?? "").toLowerCase()) {
    case "object":
      return Object.fromEntries(Object.entries(schema.properties ?? {}).map(([key, property]) => [key, sampleOf(property)]));
    case "array":
      return [];
    case "integer":
    case "number":
      return 1;
    case "boolean":
      return true;
    default:
      return schema?.enum?.[0] ?? "Paris";
  }
}

/** The arguments a model calls a tool with: `{"location": "Paris"}` when the tool takes a location
 * or names no parameters (only that, even where the schema requires more: the monitoring tests'
 * inaccurate model), else a value its schema accepts (SDK tool runners validate what they run). */
function argumentsFor(schema) {
  const properties = Object.keys(schema?.properties ?? {});
  return JSON.stringify(properties.length && !properties.includes("location") ? sampleOf(schema) : { location: "Paris" });
}

/** A tool's input schema in any format's definition (OpenAI, Anthropic, Bedrock, Gemini). */
function schemaOf(definition) {
  return definition?.function?.parameters ?? definition?.input_schema ?? definition?.toolSpec?.inputSchema?.json ?? definition?.parametersJsonSchema ?? definition?.parameters;
}

/** The answer a request gets: text, or a tool call when tools are offered. */
function planReply(name, body, spec) {
  const messages = Array.isArray(body.messages) ? body.messages : [];
  const last = messages.at(-1) ?? {};
  const promptTokens = Math.max(1, messages.reduce((n, m) => n + countWords(textOf(m.content)), 0));
  const lastBlocks = Array.isArray(last.content) ? last.content : [];
  const toolResult = lastBlocks.find((b) => b?.type === "tool_result");
  const noToolChoice = body.tool_choice === "none" || body.tool_choice?.type === "none";
  const names = (body.tools ?? []).map((t) => t?.function?.name ?? t?.name ?? "tool");
  // Anthropic's `any` / `tool` (Bedrock's `any` / `tool` arrive as the same): some tool must be called.
  const forced = names.length > 0 && (body.tool_choice?.type === "any" || body.tool_choice?.type === "tool");
  if (forced && toolResult && !spec?.content) {
    // After a tool's result a real model calls the tool that answers; the mock, the last one offered.
    const tool = body.tool_choice.name ?? names.at(-1);
    return { toolCall: { id: "call_mock_2", name: tool, arguments: argumentsFor(schemaOf(body.tools[names.indexOf(tool)])) }, promptTokens, completionTokens: 5 };
  }
  const wantsTool = names.length > 0 && !noToolChoice && last.role === "user" && !toolResult;
  if (toolResult && !spec?.content) {
    const content = `Tool said: ${typeof toolResult.content === "string" ? toolResult.content : textOf(toolResult.content)}`;
    return { content, promptTokens, completionTokens: countWords(content) };
  }
  if (wantsTool && !spec?.content) {
    // The tool forced by name, else the one the user names, else the first one offered.
    const tool = body.tool_choice?.name ?? names.find((n) => textOf(last.content).includes(n)) ?? names[0];
    return { toolCall: { id: "call_mock_1", name: tool, arguments: argumentsFor(schemaOf(body.tools[names.indexOf(tool)])) }, promptTokens, completionTokens: 5 };
  }
  // A JSON mode answers a JSON object (json_object asks for no particular shape): OpenAI's
  // `response_format`, Anthropic's structured outputs (`output_config.format`, the beta's `output_format`).
  const format = body.response_format ?? body.output_config?.format ?? body.output_format;
  if (!spec?.content && (format?.type === "json_schema" || format?.type === "json_object")) {
    const content = JSON.stringify(sampleOf(format.json_schema?.schema ?? format.schema ?? { type: "object", properties: { location: {} } }));
    return { content, promptTokens, completionTokens: countWords(content) };
  }
  const content = spec?.content ?? (last.role === "tool" ? `Tool said: ${textOf(last.content)}` : `Hello from ${name}! You said: ${textOf(last.content)}`);
  return { content, promptTokens, completionTokens: countWords(content) };
}

const openai = {
  async chat(ctx) {
    const { req, res, body, fault, name } = ctx;
    const reply = planReply(name, body, fault?.kind === "ok" ? fault : null);
    const id = `chatcmpl-mock${Date.now().toString(36)}`;
    const created = Math.floor(Date.now() / 1000);
    const model = body.model;
    const usage = {
      prompt_tokens: reply.promptTokens,
      completion_tokens: reply.completionTokens,
      total_tokens: reply.promptTokens + reply.completionTokens,
      prompt_tokens_details: { cached_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 0 },
    };
    if (!body.stream) {
      const message = reply.toolCall
        ? { role: "assistant", content: null, tool_calls: [{ id: reply.toolCall.id, type: "function", function: { name: reply.toolCall.name, arguments: reply.toolCall.arguments } }], refusal: null }
        : { role: "assistant", content: reply.content, refusal: null };
      const completion = {
        id,
        object: "chat.completion",
        created,
        model,
        choices: [{ index: 0, message, logprobs: null, finish_reason: reply.toolCall ? "tool_calls" : "stop" }],
        usage,
        system_fingerprint: "fp_mock",
      };
      const text = JSON.stringify(completion);
      res.writeHead(200, { "content-type": "application/json" });
      if (fault?.kind === "slow_body") {
        // Headers now, body later: exercises a read timeout rather than a first-byte one.
        res.flushHeaders();
        await sleep(fault.delayMs ?? 5000);
        if (res.destroyed) return;
      }
      if (fault?.kind === "malformed") return res.end('{"id": "broken", ');
      if (fault?.kind === "cut_stream") {
        // Destroy only once the half is flushed, or the client never sees the headers.
        return res.write(text.slice(0, text.length >> 1), () => res.socket?.destroy());
      }
      return res.end(text);
    }

    const includeUsage = body.stream_options?.include_usage === true;
    const chunk = (delta, finish = null) => ({
      id,
      object: "chat.completion.chunk",
      created,
      model,
      system_fingerprint: "fp_mock",
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
      ...(includeUsage ? { usage: null } : {}),
    });
    const events = [chunk({ role: "assistant", content: "" })];
    if (reply.toolCall) {
      const { id: callId, name: fn, arguments: args } = reply.toolCall;
      events.push(chunk({ tool_calls: [{ index: 0, id: callId, type: "function", function: { name: fn, arguments: "" } }] }));
      for (const piece of args.match(/.{1,6}/g)) events.push(chunk({ tool_calls: [{ index: 0, function: { arguments: piece } }] }));
      events.push(chunk({}, "tool_calls"));
    } else {
      for (const word of reply.content.match(/\S+\s*/g) ?? []) events.push(chunk({ content: word }));
      events.push(chunk({}, "stop"));
    }
    if (includeUsage) events.push({ id, object: "chat.completion.chunk", created, model, system_fingerprint: "fp_mock", choices: [], usage });

    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    res.flushHeaders();
    if (fault?.kind === "slow_body") await sleep(fault.delayMs ?? 5000);
    if (fault?.kind === "stream_error_event") {
      res.write(`data: ${JSON.stringify({ error: { message: "overloaded", type: "server_error", code: "overloaded" } })}\n\n`);
      return res.end();
    }
    const gap = fault?.gapMs ?? ctx.gapMs;
    let contentSent = 0;
    for (const [i, event] of events.entries()) {
      if (res.destroyed) return;
      if (i > 0) await sleep(gap);
      const isContent = event.choices?.[0]?.delta && (event.choices[0].delta.content || event.choices[0].delta.tool_calls);
      if (fault?.kind === "cut_stream" && isContent && contentSent >= (fault.afterChunks ?? 3)) return res.socket?.destroy();
      if (fault?.kind === "stall_stream" && isContent && contentSent >= (fault.afterChunks ?? 2)) {
        await sleep(fault.stallMs ?? 60000);
        return res.end();
      }
      if (fault?.kind === "malformed" && i === (fault.atEvent ?? 1)) res.write("data: {not json}\n\n");
      res.write(`data: ${JSON.stringify(event)}\n\n`);
      if (isContent) contentSent++;
    }
    res.end("data: [DONE]\n\n");
  },

  models(ctx) {
    const data = ["gpt-4o-mini", "gpt-4o"].map((id) => ({ id, object: "model", created: 0, owned_by: ctx.name }));
    ctx.res.writeHead(200, { "content-type": "application/json" });
    ctx.res.end(JSON.stringify({ object: "list", data }));
  },

  embeddings(ctx) {
    const inputs = Array.isArray(ctx.body.input) ? ctx.body.input : [ctx.body.input];
    // A deterministic vector per input, so tests can tell inputs apart.
    const vector = (text) => Array.from({ length: ctx.body.dimensions ?? 4 }, (_, i) => ((String(text).length + i) % 7) / 7);
    // Like OpenAI: base64 of little-endian float32 when asked (the SDKs ask by default).
    const encode = (v) => (ctx.body.encoding_format === "base64" ? Buffer.from(new Float32Array(v).buffer).toString("base64") : v);
    const data = inputs.map((text, index) => ({ object: "embedding", index, embedding: encode(vector(text)) }));
    const tokens = inputs.reduce((n, t) => n + countWords(String(t)), 0);
    ctx.res.writeHead(200, { "content-type": "application/json" });
    ctx.res.end(JSON.stringify({ object: "list", data, model: ctx.body.model, usage: { prompt_tokens: tokens, total_tokens: tokens } }));
  },

  /** `responses/input_tokens` (a Responses body): the words of its input items and instructions. */
  inputTokens({ res, body }) {
    const items = typeof body?.input === "string" ? [{ content: body.input }] : Array.isArray(body?.input) ? body.input : [];
    const itemText = (item) =>
      typeof item.content === "string" ? item.content : Array.isArray(item.content) ? item.content.map((p) => p.text ?? "").join(" ") : (item.output ?? "");
    const words = items.reduce((n, item) => n + countWords(itemText(item)), 0) + countWords(body?.instructions ?? "");
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ object: "response.input_tokens", input_tokens: Math.max(1, words) }));
  },

  route(method, path) {
    // Azure OpenAI addresses a deployment: /openai/deployments/{name}/chat/completions?api-version=…
    const op = path.replace(/^\/openai\/deployments\/[^/]+\//, "/v1/");
    if (method === "POST" && op === "/v1/chat/completions") return this.chat;
    if (method === "POST" && op === "/v1/embeddings") return this.embeddings;
    if (method === "POST" && path === "/v1/responses/input_tokens") return this.inputTokens;
    if (method === "GET" && path === "/v1/models") return this.models;
    return null;
  },

  authorized(headers, apiKey) {
    return headers.authorization === `Bearer ${apiKey}` || headers["api-key"] === apiKey;
  },

  error(res, status, extraHeaders = {}, body = openAiErrorBody(status)) {
    res.writeHead(status, { "content-type": "application/json", ...extraHeaders });
    res.end(JSON.stringify(body));
  },
};

function anthropicErrorBody(status) {
  const type = { 400: "invalid_request_error", 401: "authentication_error", 403: "permission_error", 404: "not_found_error", 429: "rate_limit_error", 529: "overloaded_error" }[status] ?? "api_error";
  const message = { 401: "invalid x-api-key", 429: "Number of request tokens has exceeded your rate limit", 529: "Overloaded" }[status] ?? (status >= 500 ? "Internal server error" : "Invalid request");
  return { type: "error", error: { type, message } };
}

/** Anthropic's Messages API: JSON and its SSE event sequence. */
const anthropic = {
  async chat(ctx) {
    const { res, body, fault, name } = ctx;
    const reply = planReply(name, body, fault?.kind === "ok" ? fault : null);
    const id = `msg_mock${Date.now().toString(36)}`;
    // Prompt-cache hits and writes on demand (`fault({ kind: "ok", cacheRead, cacheWrite })`);
    // Anthropic counts them apart from input_tokens.
    const usage = {
      input_tokens: reply.promptTokens,
      output_tokens: reply.completionTokens,
      cache_creation_input_tokens: fault?.kind === "ok" ? (fault.cacheWrite ?? 0) : 0,
      cache_read_input_tokens: fault?.kind === "ok" ? (fault.cacheRead ?? 0) : 0,
    };
    const toolUse = reply.toolCall && { type: "tool_use", id: "toolu_mock_1", name: reply.toolCall.name, input: JSON.parse(reply.toolCall.arguments) };
    // As the live API: a forced tool (`any` or `tool`) is called with no text before it,
    // and cannot be combined with thinking.
    const forced = body.tool_choice?.type === "any" || body.tool_choice?.type === "tool";
    if (forced && body.thinking?.type === "enabled") {
      res.writeHead(400, { "content-type": "application/json" });
      return res.end(JSON.stringify({ type: "error", error: { type: "invalid_request_error", message: "Thinking may not be enabled when tool_choice forces tool use." } }));
    }
    if (!body.stream) {
      const content = toolUse ? [...(forced ? [] : [{ type: "text", text: "Let me check." }]), toolUse] : [{ type: "text", text: reply.content }];
      const message = { id, type: "message", role: "assistant", model: body.model, content, stop_reason: toolUse ? "tool_use" : "end_turn", stop_sequence: null, usage };
      res.writeHead(200, { "content-type": "application/json" });
      if (fault?.kind === "malformed") return res.end('{"id": "broken", ');
      return res.end(JSON.stringify(message));
    }
    const events = [["message_start", { type: "message_start", message: { id, type: "message", role: "assistant", content: [], model: body.model, stop_reason: null, stop_sequence: null, usage: { ...usage, output_tokens: 1 } } }]];
    let index = 0;
    if (toolUse) {
      events.push(["content_block_start", { type: "content_block_start", index, content_block: { ...toolUse, input: {} } }]);
      for (const piece of reply.toolCall.arguments.match(/.{1,6}/g)) {
        events.push(["content_block_delta", { type: "content_block_delta", index, delta: { type: "input_json_delta", partial_json: piece } }]);
      }
    } else {
      events.push(["content_block_start", { type: "content_block_start", index, content_block: { type: "text", text: "" } }]);
      events.push(["ping", { type: "ping" }]);
      for (const word of reply.content.match(/\S+\s*/g) ?? []) {
        events.push(["content_block_delta", { type: "content_block_delta", index, delta: { type: "text_delta", text: word } }]);
      }
    }
    events.push(["content_block_stop", { type: "content_block_stop", index }]);
    // The live API's message_delta carries the cumulative counts, input included (clients
    // such as LangChain read only these).
    events.push(["message_delta", { type: "message_delta", delta: { stop_reason: toolUse ? "tool_use" : "end_turn", stop_sequence: null }, usage }]);
    events.push(["message_stop", { type: "message_stop" }]);

    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    res.flushHeaders();
    if (fault?.kind === "slow_body") await sleep(fault.delayMs ?? 5000);
    if (fault?.kind === "stream_error_event") {
      res.write(`event: error\ndata: ${JSON.stringify({ type: "error", error: { type: "overloaded_error", message: "Overloaded" } })}\n\n`);
      return res.end();
    }
    const gap = fault?.gapMs ?? ctx.gapMs;
    let contentSent = 0;
    for (const [i, [event, data]] of events.entries()) {
      if (res.destroyed) return;
      if (i > 0) await sleep(gap);
      const isContent = event === "content_block_delta";
      if (fault?.kind === "cut_stream" && isContent && contentSent >= (fault.afterChunks ?? 3)) return res.socket?.destroy();
      res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      if (isContent) contentSent++;
    }
    res.end();
  },

  /** `count_tokens`: the words of the messages and the system prompt (what `chat` reports as input). */
  countTokens({ res, body }) {
    const messages = Array.isArray(body?.messages) ? body.messages : [];
    const words = messages.reduce((n, m) => n + countWords(textOf(m.content)), 0) + countWords(textOf(body?.system));
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ input_tokens: Math.max(1, words) }));
  },

  route(method, path) {
    if (method === "POST" && path === "/v1/messages") return this.chat;
    if (method === "POST" && path === "/v1/messages/count_tokens") return this.countTokens;
    return null;
  },

  authorized(headers, apiKey) {
    return headers["x-api-key"] === apiKey;
  },

  error(res, status, extraHeaders = {}, body = anthropicErrorBody(status)) {
    res.writeHead(status, { "content-type": "application/json", ...extraHeaders });
    res.end(JSON.stringify(body));
  },

  errorBody: anthropicErrorBody,
};

/** Gemini's generateContent / streamGenerateContent?alt=sse. */
const gemini = {
  async chat(ctx) {
    const { req, res, body, fault, name } = ctx;
    const contents = Array.isArray(body.contents) ? body.contents : [];
    const last = contents.at(-1) ?? {};
    const parts = Array.isArray(last.parts) ? last.parts : [];
    const fnResponse = parts.find((p) => p.functionResponse)?.functionResponse;
    const text = parts.filter((p) => typeof p.text === "string").map((p) => p.text).join("");
    const declarations = body.tools?.[0]?.functionDeclarations ?? [];
    const promptTokens = Math.max(1, contents.reduce((n, c) => n + (c.parts ?? []).reduce((m, p) => m + countWords(p.text ?? ""), 0), 0));
    let answerParts;
    const jsonSchema = body.generationConfig?.responseMimeType === "application/json"
      ? (body.generationConfig.responseJsonSchema ?? body.generationConfig.responseSchema ?? { type: "object", properties: { location: {} } })
      : null;
    if (fnResponse && jsonSchema && !(fault?.kind === "ok" && fault.content)) {
      answerParts = [{ text: JSON.stringify(sampleOf(jsonSchema)) }];
    } else if (fnResponse) {
      const said = fnResponse.response?.content ?? JSON.stringify(fnResponse.response);
      answerParts = [{ text: `Tool said: ${said}` }];
    } else if (declarations.length && body.toolConfig?.functionCallingConfig?.mode !== "NONE") {
      const named = declarations.find((d) => text.includes(d.name)) ?? declarations[0];
      answerParts = [{ functionCall: { name: named.name, args: JSON.parse(argumentsFor(schemaOf(named))) }, thoughtSignature: "mock-thought-signature" }];
    } else if (fault?.kind === "ok" && fault.content) {
      answerParts = [{ text: fault.content }];
    } else if (jsonSchema) {
      answerParts = [{ text: JSON.stringify(sampleOf(jsonSchema)) }];
    } else {
      answerParts = [{ text: `Hello from ${name}! You said: ${text}` }];
    }
    const completion = answerParts.reduce((n, p) => n + countWords(p.text ?? "x"), 0);
    const usageMetadata = { promptTokenCount: promptTokens, candidatesTokenCount: completion, totalTokenCount: promptTokens + completion };
    const response = (ps, finish) => ({ candidates: [{ content: { role: "model", parts: ps }, ...(finish ? { finishReason: "STOP" } : {}), index: 0 }], usageMetadata, modelVersion: "gemini-mock" });
    if (!ctx.stream) {
      res.writeHead(200, { "content-type": "application/json" });
      return res.end(JSON.stringify(response(answerParts, true)));
    }
    res.writeHead(200, { "content-type": "text/event-stream" });
    res.flushHeaders();
    const pieces = answerParts[0].text ? answerParts[0].text.match(/\S+\s*/g).map((t) => [{ text: t }]) : [answerParts];
    let sent = 0;
    for (const [i, ps] of pieces.entries()) {
      if (res.destroyed) return;
      if (i > 0) await sleep(fault?.gapMs ?? ctx.gapMs);
      if (fault?.kind === "cut_stream" && sent >= (fault.afterChunks ?? 3)) return res.socket?.destroy();
      res.write(`data: ${JSON.stringify(response(ps, i === pieces.length - 1))}\r\n\r\n`);
      sent++;
    }
    res.end();
  },

  embed(ctx) {
    const embeddings = (ctx.body.requests ?? []).map((r) => {
      const text = r.content?.parts?.[0]?.text ?? "";
      return { values: Array.from({ length: r.outputDimensionality ?? 4 }, (_, i) => ((text.length + i) % 5) / 4) };
    });
    ctx.res.writeHead(200, { "content-type": "application/json" });
    ctx.res.end(JSON.stringify({ embeddings }));
  },

  /** countTokens with a `generateContentRequest` (which must name its model): the words of its contents and system instruction. */
  countTokens({ res, body }) {
    const request = body?.generateContentRequest;
    if (!/^models\/./.test(request?.model ?? "")) return this.error(res, 400);
    const words = (content) => (content?.parts ?? []).reduce((n, p) => n + countWords(p.text ?? ""), 0);
    const total = (request.contents ?? []).reduce((n, c) => n + words(c), 0) + words(request.systemInstruction);
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ totalTokens: total, promptTokensDetails: [{ modality: "TEXT", tokenCount: total }] }));
  },

  route(method, path) {
    const match = /^\/v1beta\/models\/[^/:]+:(generateContent|streamGenerateContent|batchEmbedContents|countTokens)$/.exec(path);
    if (method !== "POST" || !match) return null;
    if (match[1] === "batchEmbedContents") return this.embed;
    if (match[1] === "countTokens") return this.countTokens;
    const stream = match[1] === "streamGenerateContent";
    return (ctx) => this.chat({ ...ctx, stream });
  },

  authorized(headers, apiKey) {
    return headers["x-goog-api-key"] === apiKey;
  },

  error(res, status, extraHeaders = {}, body = geminiErrorBody(status)) {
    res.writeHead(status, { "content-type": "application/json", ...extraHeaders });
    res.end(JSON.stringify(body));
  },

  errorBody: (status) => geminiErrorBody(status),
};

function geminiErrorBody(status) {
  const statusName = { 400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 503: "UNAVAILABLE" }[status] ?? "INTERNAL";
  return { error: { code: status, message: status === 429 ? "Resource has been exhausted" : `mock ${statusName}`, status: statusName } };
}

/** AWS event-stream framing: prelude, string headers, payload, CRC32s. */
function eventFrame(headers, payload) {
  const h = Buffer.concat(
    Object.entries(headers).map(([name, value]) => {
      const n = Buffer.from(name);
      const v = Buffer.from(value);
      const len = Buffer.alloc(2);
      len.writeUInt16BE(v.length);
      return Buffer.concat([Buffer.from([n.length]), n, Buffer.from([7]), len, v]);
    }),
  );
  const body = Buffer.from(payload);
  const total = 12 + h.length + body.length + 4;
  const prelude = Buffer.alloc(8);
  prelude.writeUInt32BE(total, 0);
  prelude.writeUInt32BE(h.length, 4);
  const preludeCrc = Buffer.alloc(4);
  preludeCrc.writeUInt32BE(crc32(prelude));
  const message = Buffer.concat([prelude, preludeCrc, h, body]);
  const messageCrc = Buffer.alloc(4);
  messageCrc.writeUInt32BE(crc32(message));
  return Buffer.concat([message, messageCrc]);
}

const hmac = (key, data) => createHmac("sha256", key).update(data).digest();
const sha256hex = (data) => createHash("sha256").update(data).digest("hex");
const uriEncode = (s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase());

/** Recomputes the SigV4 signature the way AWS does; true when it matches. */
export function verifySigV4(req, rawBody, accessKeyId, secretAccessKey, service = "bedrock") {
  const auth = req.headers.authorization ?? "";
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/.exec(auth);
  if (!m || m[1] !== accessKeyId || m[4] !== service) return false;
  const [, , date, region, , signedHeaders, signature] = m;
  const path = req.url.split("?")[0];
  const canonicalUri = path.split("/").map(uriEncode).join("/");
  const names = signedHeaders.split(";");
  const canonicalHeaders = names.map((n) => `${n}:${String(req.headers[n] ?? "").trim()}\n`).join("");
  const payloadHash = sha256hex(rawBody);
  if (req.headers["x-amz-content-sha256"] !== payloadHash) return false;
  const canonicalRequest = [req.method, canonicalUri, "", canonicalHeaders, signedHeaders, payloadHash].join("\n");
  const scope = `${date}/${region}/${service}/aws4_request`;
  const stringToSign = ["AWS4-HMAC-SHA256", req.headers["x-amz-date"], scope, sha256hex(canonicalRequest)].join("\n");
  let key = hmac(`AWS4${secretAccessKey}`, date);
  for (const part of [region, service, "aws4_request"]) key = hmac(key, part);
  return hmac(key, stringToSign).toString("hex") === signature;
}

/** AWS Bedrock's Converse / ConverseStream, SigV4-checked. */
const bedrock = {
  async chat(ctx) {
    const { res, body, fault, name } = ctx;
    const messages = (body.messages ?? []).map((m) => ({
      role: m.role,
      content: (m.content ?? []).map((b) => (b.text !== undefined ? { type: "text", text: b.text } : b.toolResult ? { type: "tool_result", content: b.toolResult.content?.[0]?.text } : {})),
    }));
    const tools = (body.toolConfig?.tools ?? []).map((t) => ({ name: t.toolSpec?.name, input_schema: t.toolSpec?.inputSchema?.json }));
    const forced = body.toolConfig?.toolChoice?.any || body.toolConfig?.toolChoice?.tool;
    if (forced && body.additionalModelRequestFields?.thinking?.type === "enabled") {
      res.writeHead(400, { "content-type": "application/json", "x-amzn-errortype": "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/" });
      return res.end(JSON.stringify({ message: "The model returned the following errors: Thinking may not be enabled when tool_choice forces tool use." }));
    }
    const choice = body.toolConfig?.toolChoice;
    const tool_choice = choice?.any ? { type: "any" } : choice?.tool ? { type: "tool", name: choice.tool.name } : undefined;
    const reply = planReply(name, { messages, tools: tools.length ? tools : undefined, tool_choice }, fault?.kind === "ok" ? fault : null);
    const usage = { inputTokens: reply.promptTokens, outputTokens: reply.completionTokens, totalTokens: reply.promptTokens + reply.completionTokens };
    const toolUse = reply.toolCall && { toolUseId: "tooluse_mock_1", name: reply.toolCall.name, input: JSON.parse(reply.toolCall.arguments) };
    if (!ctx.stream) {
      const content = toolUse ? [{ toolUse }] : [{ text: reply.content }];
      res.writeHead(200, { "content-type": "application/json" });
      return res.end(JSON.stringify({ output: { message: { role: "assistant", content } }, stopReason: toolUse ? "tool_use" : "end_turn", usage, metrics: { latencyMs: 5 } }));
    }
    res.writeHead(200, { "content-type": "application/vnd.amazon.eventstream" });
    res.flushHeaders();
    const event = (type, payload) => eventFrame({ ":event-type": type, ":content-type": "application/json", ":message-type": "event" }, JSON.stringify(payload));
    if (fault?.kind === "stream_error_event") {
      res.write(eventFrame({ ":exception-type": "throttlingException", ":content-type": "application/json", ":message-type": "exception" }, JSON.stringify({ message: "Too many requests" })));
      return res.end();
    }
    const frames = [event("messageStart", { role: "assistant" })];
    if (toolUse) {
      frames.push(event("contentBlockStart", { contentBlockIndex: 0, start: { toolUse: { toolUseId: toolUse.toolUseId, name: toolUse.name } } }));
      frames.push(event("contentBlockDelta", { contentBlockIndex: 0, delta: { toolUse: { input: JSON.stringify(toolUse.input) } } }));
    } else {
      for (const word of reply.content.match(/\S+\s*/g) ?? []) frames.push(event("contentBlockDelta", { contentBlockIndex: 0, delta: { text: word } }));
    }
    frames.push(event("contentBlockStop", { contentBlockIndex: 0 }));
    frames.push(event("messageStop", { stopReason: toolUse ? "tool_use" : "end_turn" }));
    frames.push(event("metadata", { usage, metrics: { latencyMs: 5 } }));
    for (const [i, frame] of frames.entries()) {
      if (res.destroyed) return;
      if (i > 0) await sleep(fault?.gapMs ?? ctx.gapMs);
      if (fault?.kind === "cut_stream" && i >= (fault.afterChunks ?? 3)) return res.socket?.destroy();
      res.write(frame);
    }
    res.end();
  },

  /** CountTokens with a Converse input (its input parts only): the words of its messages and system blocks. */
  countTokens({ res, body }) {
    const converse = body?.input?.converse;
    const allowed = ["messages", "system", "toolConfig", "additionalModelRequestFields"];
    if (!converse || Object.keys(converse).some((k) => !allowed.includes(k))) return this.error(res, 400);
    const words = (blocks) => (blocks ?? []).reduce((n, b) => n + countWords(b.text ?? ""), 0);
    const total = (converse.messages ?? []).reduce((n, m) => n + words(m.content), 0) + words(converse.system);
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ inputTokens: total }));
  },

  route(method, path) {
    const match = /^\/model\/[^/]+\/(converse|converse-stream|count-tokens)$/.exec(path);
    if (method !== "POST" || !match) return null;
    if (match[1] === "count-tokens") return this.countTokens;
    return (ctx) => this.chat({ ...ctx, stream: match[1] === "converse-stream" });
  },

  /** apiKey is "ACCESS_KEY_ID:SECRET": the request must carry a valid SigV4 signature. */
  authorized(headers, apiKey, req, raw) {
    const [id, secret] = apiKey.split(":");
    return verifySigV4(req, raw, id, secret);
  },

  error(res, status, extraHeaders = {}, body = { message: status === 429 ? "Too many requests" : `mock error ${status}` }) {
    const type = { 400: "ValidationException", 403: "AccessDeniedException", 429: "ThrottlingException", 503: "ServiceUnavailableException" }[status] ?? "InternalServerException";
    res.writeHead(status, { "content-type": "application/json", "x-amzn-errortype": type, ...extraHeaders });
    res.end(JSON.stringify(body));
  },
};

export const formats = { openai, anthropic, gemini, bedrock };

export async function startMockProvider({ port = 0, name = "mock", apiKey = null, format = "openai", gapMs = 5 } = {}) {
  const handler = formats[format];
  if (!handler) throw new Error(`unknown mock format ${format}`);
  const calls = [];
  let faults = [];
  const sockets = new Set();

  function nextFault(body) {
    const byModel = typeof body?.model === "string" ? MODEL_FAULTS[body.model] : undefined;
    while (faults.length) {
      const head = faults[0];
      if (head.times === 0) {
        faults.shift();
        continue;
      }
      if (Number.isFinite(head.times)) head.times -= 1;
      return head;
    }
    return byModel ?? null;
  }

  const server = http.createServer(async (req, res) => {
    let raw = "";
    for await (const piece of req) raw += piece;
    let body = raw;
    try {
      body = raw ? JSON.parse(raw) : null;
    } catch {}
    const path = req.url.split("?")[0];
    const query = Object.fromEntries(new URL(req.url, "http://mock").searchParams);
    const call = { method: req.method, path, query, headers: { ...req.headers }, body, at: Date.now(), aborted: false };
    calls.push(call);
    // The client (the gateway) went away before the answer was complete.
    res.on("close", () => {
      if (!res.writableEnded) call.aborted = true;
    });

    if (apiKey && !handler.authorized(req.headers, apiKey, req, raw)) return handler.error(res, format === "bedrock" ? 403 : 401);
    const route = handler.route(req.method, path);
    if (!route) return handler.error(res, 404, {}, { error: { message: `Unknown route ${req.method} ${path}`, type: "invalid_request_error", param: null, code: null } });

    const fault = nextFault(body);
    // Extra response headers on any answer, e.g. a provider's rate-limit headers:
    // fault({ kind: "ok", headers: { "x-ratelimit-remaining-requests": "0" } }).
    for (const [header, value] of Object.entries(fault?.headers ?? {})) res.setHeader(header, value);
    try {
      switch (fault?.kind) {
        case "hang":
          return; // never answer; close() ends it
        case "slow_first_byte":
          await sleep(fault.delayMs ?? 5000);
          break;
        case "status":
          return handler.error(res, fault.status, fault.retryAfter ? { "retry-after": fault.retryAfter } : {}, fault.body ?? (handler.errorBody ?? openAiErrorBody)(fault.status));
        case "html":
          res.writeHead(502, { "content-type": "text/html" });
          return res.end("<html><body>Bad Gateway</body></html>");
      }
      if (fault?.delayMs && fault.kind === "ok") await sleep(fault.delayMs);
      if (res.destroyed) return;
      await route.call(handler, { req, res, body, fault, name, gapMs });
    } catch (err) {
      if (!res.headersSent) handler.error(res, 500);
      else res.destroy(err);
    }
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", resolve);
  });
  const actualPort = server.address().port;
  const url = `http://127.0.0.1:${actualPort}`;

  return {
    name,
    port: actualPort,
    url,
    baseUrl: `${url}/v1`,
    calls,
    /** Queues a fault for the next `times` requests (default: until clearFaults()). */
    fault(spec) {
      faults.push({ times: Infinity, ...spec });
    },
    clearFaults() {
      faults = [];
    },
    reset() {
      calls.length = 0;
      faults = [];
    },
    close() {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

// CLI: node tests/e2e/mock-providers.mjs --listen mock-us=9911 --listen mock-eu=9912 [--key K]
if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const { values } = parseArgs({ options: { listen: { type: "string", multiple: true, default: ["mock=9911"] }, key: { type: "string" } } });
  const mocks = [];
  for (const entry of values.listen) {
    const [name, port] = entry.split("=");
    const mock = await startMockProvider({ name, port: Number(port), apiKey: values.key ?? null });
    mocks.push(mock);
    console.log(`mock ${name} listening on ${mock.url}`);
  }
  const stop = async () => {
    await Promise.all(mocks.map((m) => m.close()));
    process.exit(0);
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}
