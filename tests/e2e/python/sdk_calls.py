"""The official OpenAI and Anthropic Python SDKs (the Anthropic tool runner's message threads too), the OpenAI Agents SDK, LangChain and pydantic-ai against the gateway,
unchanged but for the base URL and key: each check prints `ok <name>` or raises. Run by
tests/e2e/python-sdks.test.mjs against a gateway whose model `gpt` is served by an
OpenAI-format mock and `claude` by an Anthropic-format one (GATEWAY_URL, GATEWAY_KEY)."""

import asyncio
import os
import sys

import anthropic
import openai

URL = os.environ["GATEWAY_URL"]
KEY = os.environ["GATEWAY_KEY"]
oai = openai.OpenAI(base_url=f"{URL}/v1", api_key=KEY, max_retries=0)
ant = anthropic.Anthropic(base_url=URL, api_key=KEY, max_retries=0)
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
    },
}


def check(name):
    def run(fn):
        fn()
        print(f"ok {name}", flush=True)
        return fn

    return run


def expect(condition, what):
    if not condition:
        raise AssertionError(what)


@check("openai chat")
def _():
    reply = oai.chat.completions.create(model="gpt", messages=[{"role": "user", "content": "hi"}])
    expect(reply.choices[0].message.content == "Hello from gpt! You said: hi", reply)
    expect(reply.model == "gpt" and reply.usage.total_tokens > 0, reply)


@check("openai chat stream with usage, to an Anthropic target")
def _():
    stream = oai.chat.completions.create(
        model="claude", messages=[{"role": "user", "content": "hi there"}], stream=True, stream_options={"include_usage": True}
    )
    text, usage = "", None
    for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
        usage = chunk.usage or usage
    expect(text == "Hello from claude! You said: hi there", text)
    expect(usage is not None and usage.prompt_tokens == 2, usage)


@check("openai tool call round trip")
def _():
    messages = [{"role": "user", "content": "weather in Paris?"}]
    first = oai.chat.completions.create(model="claude", messages=messages, tools=[WEATHER])
    call = first.choices[0].message.tool_calls[0]
    expect(first.choices[0].finish_reason == "tool_calls" and call.function.name == "get_weather", first)
    messages += [first.choices[0].message, {"role": "tool", "tool_call_id": call.id, "content": "sunny"}]
    second = oai.chat.completions.create(model="claude", messages=messages, tools=[WEATHER])
    expect(second.choices[0].message.content == "Tool said: sunny", second)


@check("openai async client, concurrent requests")
def _():
    async def many():
        client = openai.AsyncOpenAI(base_url=f"{URL}/v1", api_key=KEY, max_retries=0)
        replies = await asyncio.gather(
            *[client.chat.completions.create(model="gpt", messages=[{"role": "user", "content": f"n{i}"}]) for i in range(5)]
        )
        await client.close()
        return [r.choices[0].message.content for r in replies]

    expect(asyncio.run(many()) == [f"Hello from gpt! You said: n{i}" for i in range(5)], "answers in order")


@check("openai responses, streamed and continued")
def _():
    first = oai.responses.create(model="claude", input="hello", store=True)
    expect(first.output_text == "Hello from claude! You said: hello", first)
    with oai.responses.stream(model="gpt", input="again", previous_response_id=first.id) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    expect(kinds[0] == "response.created" and kinds[-1] == "response.completed", kinds)
    expect(final.output_text == "Hello from gpt! You said: again", final)


@check("openai embeddings and models")
def _():
    vectors = oai.embeddings.create(model="gpt", input=["a", "b"])
    expect(len(vectors.data) == 2, vectors)
    expect({"gpt", "claude"} <= {m.id for m in oai.models.list()}, "models list")


@check("openai errors map to the SDK's exceptions")
def _():
    try:
        oai.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
        raise AssertionError("no error")
    except openai.NotFoundError:
        pass
    try:
        openai.OpenAI(base_url=f"{URL}/v1", api_key="gw_wrong", max_retries=0).models.list()
        raise AssertionError("no error")
    except openai.AuthenticationError:
        pass


@check("anthropic message, natively and translated")
def _():
    for model in ["claude", "gpt"]:
        message = ant.messages.create(model=model, max_tokens=64, system="Be brief.", messages=[{"role": "user", "content": "hi"}])
        expect(message.content[0].text == f"Hello from {model}! You said: hi", message)
        expect(message.stop_reason == "end_turn" and message.usage.input_tokens > 0, message)


@check("anthropic stream and tool use")
def _():
    with ant.messages.stream(model="gpt", max_tokens=64, messages=[{"role": "user", "content": "hey"}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    expect(text == "Hello from gpt! You said: hey" and final.usage.output_tokens > 0, final)
    tool = {"name": "get_weather", "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}}}
    message = ant.messages.create(model="claude", max_tokens=64, tools=[tool], messages=[{"role": "user", "content": "weather?"}])
    expect(message.stop_reason == "tool_use" and message.content[-1].input == {"location": "Paris"}, message)


@check("anthropic tool runner and thread (message threads), whole and streamed, to both formats")
def _():
    @anthropic.beta_tool
    def get_weather(location: str) -> str:
        """Weather for a location"""
        return f"sunny in {location}"

    for model in ["claude", "gpt"]:
        for stream in [False, True]:
            runner = ant.beta.messages.tool_runner(
                model=model, max_tokens=64, tools=[get_weather], messages=[{"role": "user", "content": "weather?"}], stream=stream
            )
            final = runner.until_done()
            expect(final.content[0].text == "Tool said: sunny in Paris", (model, stream, final))
        thread = ant.beta.messages.thread(model=model, max_tokens=64, system="Be brief.")
        first = thread.send({"role": "user", "content": "one"})
        second = thread.send({"role": "user", "content": "two"})
        expect(thread.previous_message_id == second.id and second.content[0].text == f"Hello from {model}! You said: two", second)
        expect(first.id != second.id, first)


@check("sdk helpers: parse with pydantic models (chat, stream, tools, responses; anthropic messages.parse), to both formats")
def _():
    from pydantic import BaseModel

    class Weather(BaseModel):
        city: str
        temp_c: float

    asked = [{"role": "user", "content": "weather in Paris"}]
    for model in ["claude", "gpt"]:
        parsed = oai.chat.completions.parse(model=model, messages=asked, response_format=Weather)
        expect(parsed.choices[0].message.parsed == Weather(city="Paris", temp_c=1), (model, parsed))
        with oai.chat.completions.stream(model=model, messages=asked, response_format=Weather) as stream:
            for _event in stream:
                pass
            expect(stream.get_final_completion().choices[0].message.parsed == Weather(city="Paris", temp_c=1), model)
        called = oai.chat.completions.parse(model=model, messages=asked, tools=[openai.pydantic_function_tool(Weather)])
        expect(called.choices[0].message.tool_calls[0].function.parsed_arguments == Weather(city="Paris", temp_c=1), called)
        response = oai.responses.parse(model=model, input="weather in Paris", text_format=Weather)
        expect(response.output_parsed == Weather(city="Paris", temp_c=1), (model, response))
        message = ant.messages.parse(model=model, max_tokens=64, messages=asked, output_format=Weather)
        expect(message.parsed_output == Weather(city="Paris", temp_c=1), (model, message))


@check("token counts: anthropic count_tokens and openai responses.input_tokens, to both formats")
def _():
    for model in ["claude", "gpt"]:
        counted = ant.messages.count_tokens(model=model, system="Be brief.", messages=[{"role": "user", "content": "one two three"}])
        expect(counted.input_tokens == 5, (model, counted))
        counted = oai.responses.input_tokens.count(model=model, instructions="Be brief.", input="one two three")
        expect(counted.object == "response.input_tokens" and counted.input_tokens == 5, (model, counted))
    try:
        ant.messages.count_tokens(model="nope", messages=[{"role": "user", "content": "x"}])
        raise AssertionError("no error")
    except anthropic.NotFoundError as error:
        expect(error.body["error"]["type"] == "not_found_error", error.body)


@check("anthropic errors map to the SDK's exceptions")
def _():
    try:
        ant.messages.create(model="nope", max_tokens=8, messages=[{"role": "user", "content": "x"}])
        raise AssertionError("no error")
    except anthropic.NotFoundError as error:
        expect(error.body["type"] == "error", error.body)


@check("openai-agents: a tool-using agent, and one with a structured output, over Responses and Chat Completions")
def _():
    from agents import Agent, OpenAIChatCompletionsModel, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled
    from pydantic import BaseModel

    class Weather(BaseModel):
        location: str

    set_tracing_disabled(True)
    client = openai.AsyncOpenAI(base_url=f"{URL}/v1", api_key=KEY, max_retries=0)

    @function_tool
    def get_weather(location: str) -> str:
        """The weather in a city."""
        return f"sunny in {location}"

    for model in [OpenAIResponsesModel(model="gpt", openai_client=client), OpenAIChatCompletionsModel(model="claude", openai_client=client)]:
        agent = Agent(name="weather", instructions="Answer with the weather.", model=model, tools=[get_weather])
        result = Runner.run_sync(agent, "weather in Paris?")
        expect(result.final_output == "Tool said: sunny in Paris", result.final_output)

    # output_type with tools: every turn asks a JSON schema answer and offers the tools; a tool
    # call, then the structured answer (to Anthropic: its tools and the JSON tool, one must be called).
    for make in [OpenAIResponsesModel, OpenAIChatCompletionsModel]:
        for name in ["gpt", "claude"]:
            agent = Agent(name="typed", model=make(model=name, openai_client=client), tools=[get_weather], output_type=Weather)
            result = Runner.run_sync(agent, "weather in Paris? use get_weather")
            calls = [item for item in result.new_items if item.type == "tool_call_item"]
            expect(result.final_output == Weather(location="Paris") and len(calls) == 1, (make.__name__, name, result.final_output, result.new_items))


@check("langchain: ChatOpenAI (Chat Completions and Responses) and ChatAnthropic, each to both formats")
def _():
    from langchain_anthropic import ChatAnthropic
    from langchain_core.messages import HumanMessage, ToolMessage
    from langchain_core.tools import tool
    from langchain_openai import ChatOpenAI
    from pydantic import BaseModel

    @tool
    def get_weather(location: str) -> str:
        """The weather in a city."""
        return f"sunny in {location}"

    class Weather(BaseModel):
        location: str

    openai_args = {"base_url": f"{URL}/v1", "api_key": KEY, "max_retries": 0, "stream_usage": True}
    makers = {
        "ChatOpenAI": lambda model: ChatOpenAI(model=model, **openai_args),
        "ChatOpenAI responses": lambda model: ChatOpenAI(model=model, use_responses_api=True, **openai_args),
        "ChatAnthropic": lambda model: ChatAnthropic(model=model, base_url=URL, api_key=KEY, max_retries=0),
    }
    for name, make in makers.items():
        for model in ["gpt", "claude"]:
            llm, where = make(model), f"{name} -> {model}"
            reply = llm.invoke("hi")
            expect(reply.text == f"Hello from {model}! You said: hi" and reply.usage_metadata["input_tokens"] > 0, (where, reply))
            chunks = list(llm.stream("hi there"))
            whole = sum(chunks[1:], chunks[0])
            expect(whole.text == f"Hello from {model}! You said: hi there", (where, whole))
            usage = whole.usage_metadata or {}
            expect(usage.get("input_tokens", 0) > 0 and usage.get("output_tokens", 0) > 0, (where, "streamed usage", usage))

            with_tools = llm.bind_tools([get_weather])
            messages = [HumanMessage("weather in Paris?")]
            first = with_tools.invoke(messages)
            call = first.tool_calls[0]
            expect(call["name"] == "get_weather" and call["args"] == {"location": "Paris"}, (where, first))
            messages += [first, ToolMessage(get_weather.invoke(call["args"]), tool_call_id=call["id"])]
            second = with_tools.invoke(messages)
            expect(second.text == "Tool said: sunny in Paris", (where, second))

            for method in ["function_calling", "json_schema"]:
                # json_schema: OpenAI's response_format, Anthropic's output_config.format.
                parsed = llm.with_structured_output(Weather, method=method).invoke("weather in Paris?")
                expect(parsed == Weather(location="Paris"), (where, method, parsed))


@check("pydantic-ai: agents over Chat Completions, Responses and Anthropic, each to both formats")
def _():
    from pydantic import BaseModel
    from pydantic_ai import Agent, NativeOutput
    from pydantic_ai.models.anthropic import AnthropicModel
    from pydantic_ai.models.openai import OpenAIChatModel, OpenAIResponsesModel
    from pydantic_ai.providers.anthropic import AnthropicProvider
    from pydantic_ai.providers.openai import OpenAIProvider

    class Weather(BaseModel):
        location: str

    openai_provider = OpenAIProvider(base_url=f"{URL}/v1", api_key=KEY)
    anthropic_provider = AnthropicProvider(base_url=URL, api_key=KEY)
    makers = {
        "OpenAIChatModel": lambda model: OpenAIChatModel(model, provider=openai_provider),
        "OpenAIResponsesModel": lambda model: OpenAIResponsesModel(model, provider=openai_provider),
        "AnthropicModel": lambda model: AnthropicModel(model, provider=anthropic_provider),
    }

    async def run(name, model):
        where = f"{name} -> {model}"
        agent = Agent(makers[name](model), instructions="Be brief.")

        @agent.tool_plain
        def get_weather(location: str) -> str:
            """The weather in a city."""
            return f"sunny in {location}"

        result = await agent.run("weather in Paris?")
        calls = [p for m in result.all_messages() for p in m.parts if p.part_kind == "tool-call"]
        expect(result.output == "Tool said: sunny in Paris" and len(calls) == 1, (where, result.output))
        expect(result.usage.requests == 2 and result.usage.input_tokens > 0 and result.usage.output_tokens > 0, (where, result.usage))

        async with agent.run_stream("weather in Paris?") as stream:
            text = "".join([piece async for piece in stream.stream_text(delta=True)])
        expect(text == "Tool said: sunny in Paris", (where, "stream", text))
        expect(stream.usage.input_tokens > 0 and stream.usage.output_tokens > 0, (where, "streamed usage", stream.usage))

        # A structured answer through a tool (pydantic-ai's default), and through the JSON
        # mode (response_format) where the model class sends one.
        outputs = [Weather] + ([NativeOutput(Weather)] if name != "AnthropicModel" else [])
        for output_type in outputs:
            typed = await Agent(makers[name](model), output_type=output_type).run("weather in Paris?")
            expect(typed.output == Weather(location="Paris"), (where, output_type, typed.output))

    async def every():
        for name in makers:
            for model in ["gpt", "claude"]:
                await run(name, model)

    asyncio.run(every())


print(f"python {sys.version.split()[0]}, openai {openai.__version__}, anthropic {anthropic.__version__}", flush=True)
