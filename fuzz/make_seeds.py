#!/usr/bin/env python3
"""Writes the committed seed corpora (fuzz/seeds/<target>/), modelled on the golden
tests' wire samples. Rerun after changing it; seeds stay small (a few KB each)."""
import json, os, struct, zlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds")

def write(target, name, data):
    os.makedirs(os.path.join(ROOT, target), exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(ROOT, target, name), "wb") as f:
        f.write(data)

def frame(headers, payload):
    """One AWS event-stream message (string headers), as src/providers/bedrock/eventstream.rs encodes."""
    hb = b"".join(bytes([len(n)]) + n.encode() + b"\x07" + struct.pack(">H", len(v)) + v.encode() for n, v in headers)
    total = 16 + len(hb) + len(payload)
    prelude = struct.pack(">II", total, len(hb))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    body = prelude + hb + payload
    return body + struct.pack(">I", zlib.crc32(body))

def bedrock_event(kind, value):
    headers = [(":event-type", kind), (":content-type", "application/json"), (":message-type", "event")]
    return frame(headers, json.dumps(value).encode())

def sse(events):
    return "".join((f"event: {e}\n" if e else "") + f"data: {json.dumps(d) if not isinstance(d, str) else d}\n\n" for e, d in events)

OPENAI = sse([
    (None, {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}),
    (None, {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": {"content": "Hello"}, "finish_reason": None}]}),
    (None, {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
             "function": {"name": "f", "arguments": "{\"a\":"}}]}, "finish_reason": None}]}),
    (None, {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
    (None, {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [],
            "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}}),
    (None, "[DONE]"),
])
ANTHROPIC = sse([
    ("message_start", {"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant",
     "content": [], "model": "claude", "stop_reason": None, "usage": {"input_tokens": 25, "output_tokens": 1}}}),
    ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Hmm."}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "EqQBCg"}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    ("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"a\": 1}"}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 1}),
    ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}}),
    ("message_stop", {"type": "message_stop"}),
])
ANTHROPIC_ERROR = sse([("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})])
GEMINI = sse([
    (None, {"candidates": [{"content": {"parts": [{"text": "Two cats", "thought": False}], "role": "model"}, "index": 0}]}),
    (None, {"candidates": [{"content": {"parts": [{"functionCall": {"name": "f", "args": {"a": 1}}, "thoughtSignature": "c2ln"}],
            "role": "model"}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 6, "totalTokenCount": 10, "thoughtsTokenCount": 2}}),
])
BEDROCK = b"".join([
    bedrock_event("messageStart", {"role": "assistant"}),
    bedrock_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hello"}}),
    bedrock_event("contentBlockStop", {"contentBlockIndex": 0}),
    bedrock_event("contentBlockStart", {"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "tu_1", "name": "f"}}}),
    bedrock_event("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{\"a\":1}"}}}),
    bedrock_event("contentBlockStop", {"contentBlockIndex": 1}),
    bedrock_event("messageStop", {"stopReason": "tool_use"}),
    bedrock_event("metadata", {"usage": {"inputTokens": 5, "outputTokens": 7, "totalTokens": 12}, "metrics": {"latencyMs": 100}}),
])
BEDROCK_EXCEPTION = frame([(":exception-type", "throttlingException"), (":content-type", "application/json"),
                           (":message-type", "exception")], b'{"message":"Too many requests"}')

# The first byte of a stream seed: the split size (and, for translators, kind and keep_raw).
for i, body in enumerate([OPENAI, ANTHROPIC, GEMINI, ANTHROPIC_ERROR, "data: x\r\ndata: y\r\n\r\n: comment\nid: 1\nretry: 5\n\n"]):
    write("sse_decoder", f"stream-{i}", bytes([7 + i * 13]) + body.encode())
write("bedrock_eventstream", "converse-stream", bytes([9]) + BEDROCK)
write("bedrock_eventstream", "exception", bytes([200]) + BEDROCK_EXCEPTION)
# Translator selector: kind = b % 5 (openai, azure, anthropic, gemini, bedrock), keep_raw = b & 8.
for name, kind, body in [("openai", 0, OPENAI), ("azure", 1, OPENAI), ("anthropic", 2, ANTHROPIC),
                         ("anthropic-error", 2, ANTHROPIC_ERROR), ("gemini", 3, GEMINI)]:
    write("stream_translators", name, bytes([kind + 0x10]) + body.encode())
    write("stream_translators", name + "-raw", bytes([kind + 0x18 + 0x30]) + body.encode())
write("stream_translators", "bedrock", bytes([4 + 0x20]) + BEDROCK)
write("stream_translators", "bedrock-exception", bytes([4 + 0x10]) + BEDROCK_EXCEPTION)

TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
CHAT = [
    {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello!"}]},
    {"model": "m", "stream": True, "stream_options": {"include_usage": True}, "max_tokens": 100, "temperature": 0.2,
     "messages": [{"role": "system", "content": "Be brief."},
                  {"role": "user", "content": [{"type": "text", "text": "What is this?"},
                                               {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}]},
    {"model": "m", "tools": TOOLS, "tool_choice": "auto", "parallel_tool_calls": True,
     "messages": [{"role": "user", "content": "Weather in Paris?"},
                  {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function",
                   "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                  {"role": "tool", "tool_call_id": "call_1", "content": "Sunny"}]},
    {"model": "m", "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}},
     "messages": [{"role": "user", "content": "JSON please"}], "models": ["fallback"], "provider": {"order": ["a"]}},
]
for i, body in enumerate(CHAT):
    write("openai_chat_request", f"chat-{i}", json.dumps(body))

ANTHROPIC_REQUESTS = [
    {"model": "claude-sonnet", "max_tokens": 1024, "messages": [{"role": "user", "content": "Hello!"}]},
    {"model": "claude-sonnet", "max_tokens": 1024, "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
     "thinking": {"type": "enabled", "budget_tokens": 2048}, "stream": True,
     "tools": [{"name": "get_weather", "description": "Weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
     "tool_choice": {"type": "auto"},
     "messages": [{"role": "user", "content": "Weather?"},
                  {"role": "assistant", "content": [{"type": "thinking", "thinking": "Hmm.", "signature": "EqQBCg"},
                                                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}]},
                  {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "Sunny"},
                                               {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}]}]},
    # Message threads: a create, and a continue that answers the stored thread's tool call.
    {"model": "claude-sonnet", "max_tokens": 1024, "system": "Be brief.", "thread": {"type": "create"},
     "messages": [{"role": "user", "content": "Hello!"}]},
    {"model": "claude-sonnet", "max_tokens": 1024, "thread": {"type": "continue", "previous_message_id": "msg_01"},
     "messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "Sunny"}]}]},
]
for i, body in enumerate(ANTHROPIC_REQUESTS):
    write("anthropic_request", f"messages-{i}", json.dumps(body))

RESPONSES = [
    {"model": "gpt-4o-mini", "input": "Hello!"},
    {"model": "m", "instructions": "Be brief.", "stream": True, "store": False, "max_output_tokens": 200,
     "reasoning": {"effort": "low"}, "text": {"format": {"type": "json_schema", "name": "x", "schema": {"type": "object"}}},
     "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}], "tool_choice": "auto",
     "include": ["reasoning.encrypted_content"],
     "input": [{"role": "user", "content": [{"type": "input_text", "text": "Hi"},
                                            {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo="}]},
               {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "abc"},
               {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"},
               {"type": "function_call_output", "call_id": "call_1", "output": "ok"}]},
]
for i, body in enumerate(RESPONSES):
    write("responses_request", f"responses-{i}", json.dumps(body))

config_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "config")
for name in ["default.json", "examples/openai.json", "examples/eu-enterprise.json"]:
    with open(os.path.join(config_dir, name), "rb") as f:
        write("config_document", os.path.basename(name), f.read())
