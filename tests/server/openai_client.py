"""Checks `qwen-wgpu serve` through the real `openai` client (and raw HTTP where the client
cannot send what is checked). Run by tests/suite/server.rs against a server on 127.0.0.1:

    python3 openai_client.py MODE BASE_URL MODEL [API_KEY]

MODE `scripted`: the HTTP layer with a scripted engine (fixed replies: reasoning, tool
calls, stops). MODE `real`: a real model on the GPU (random weights, greedy decoding).
MODE `busy`: a server with one slot and one queue place. Every call is bounded in time.
Prints one line per check; exits non-zero at the first failure.
"""

import json
import sys
import threading
import time

import urllib.error
import urllib.request

import openai

MODE, BASE, MODEL = sys.argv[1], sys.argv[2], sys.argv[3]
KEY = sys.argv[4] if len(sys.argv) > 4 else "none"
TIMEOUT = 300.0
client = openai.OpenAI(base_url=BASE + "/v1", api_key=KEY, timeout=TIMEOUT, max_retries=0)
HEADERS = {"Authorization": f"Bearer {KEY}"}


def check(name, ok, detail=""):
    if not ok:
        print(f"FAIL {name}: {detail}", flush=True)
        sys.exit(1)
    print(f"ok   {name}", flush=True)


class Response:
    def __init__(self, status, body):
        self.status_code = status
        self.text = body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.text)


def request(method, path, data=None, headers=None):
    """Raw HTTP (standard library only), for what the client cannot send or see."""
    req = urllib.request.Request(BASE + path, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as r:
            return Response(r.status, r.read())
    except urllib.error.HTTPError as e:
        return Response(e.code, e.read())


def get(path, headers=None):
    return request("GET", path, headers=headers)


def post(path, body, headers=HEADERS):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return request("POST", path, data, {**headers, "content-type": "application/json"})


def error_of(response):
    return response.json()["error"]


def user(text):
    return [{"role": "user", "content": text}]


def greedy(messages, max_tokens, **kw):
    return client.chat.completions.create(model=MODEL, messages=messages, max_tokens=max_tokens, temperature=0, **kw)


def stream_text(messages, max_tokens, **kw):
    parts, reasoning, finish, usage, calls = [], [], None, None, {}
    stream = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=max_tokens,
                                            temperature=0, stream=True,
                                            stream_options={"include_usage": True}, **kw)
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            delta = choice.delta
            if delta.content:
                parts.append(delta.content)
            r = getattr(delta, "reasoning_content", None) or (delta.model_extra or {}).get("reasoning_content")
            if r:
                reasoning.append(r)
            for call in delta.tool_calls or []:
                entry = calls.setdefault(call.index, {"name": "", "arguments": ""})
                if call.function.name:
                    entry["name"] += call.function.name
                if call.function.arguments:
                    entry["arguments"] += call.function.arguments
            if choice.finish_reason:
                finish = choice.finish_reason
    return "".join(parts), "".join(reasoning), finish, usage, calls


def reasoning_of(message):
    return getattr(message, "reasoning_content", None) or (message.model_extra or {}).get("reasoning_content")


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The forecast for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city"],
        },
    },
}


def scripted():
    # Reasoning split from content, both ways.
    r = greedy(user("Say hello"), 64)
    m = r.choices[0].message
    check("reasoning goes to reasoning_content", reasoning_of(m) == "Thinking about it.", repr(m))
    check("content without the reasoning", m.content == "Hello there! How can I help?", repr(m.content))
    text, reasoning, finish, usage, _ = stream_text(user("Say hello"), 64)
    check("streamed reasoning and content", (reasoning, text) == ("Thinking about it.", "Hello there! How can I help?"),
          repr((reasoning, text)))
    check("streamed finish and usage", finish == "stop" and usage is not None and usage.completion_tokens > 0,
          repr((finish, usage)))
    r = greedy(user("Say hello"), 64, extra_body={"chat_template_kwargs": {"enable_thinking": False}})
    m = r.choices[0].message
    check("thinking off: no reasoning", not reasoning_of(m) and m.content == "Hello there! How can I help?", repr(m))

    # Stop strings, across chunk boundaries, never emitted.
    r = greedy(user("Say hello"), 64, stop=["can I"])
    check("stop string cuts the reply", r.choices[0].message.content == "Hello there! How ", repr(r.choices[0].message.content))
    check("stop string finish reason", r.choices[0].finish_reason == "stop", r.choices[0].finish_reason)
    text, _, finish, _, _ = stream_text(user("Say hello"), 64, stop=["there!", "zzz"])
    check("streamed stop string", text == "Hello " and finish == "stop", repr((text, finish)))

    # A tool-call round trip.
    messages = user("What is the weather in Paris?")
    r = greedy(messages, 128, tools=[WEATHER_TOOL])
    choice = r.choices[0]
    check("tool call finish reason", choice.finish_reason == "tool_calls", choice.finish_reason)
    calls = choice.message.tool_calls
    check("one tool call", calls is not None and len(calls) == 1, repr(calls))
    call = calls[0]
    args = json.loads(call.function.arguments)
    check("tool call typed by its schema", call.function.name == "get_weather" and args == {"city": "Paris", "days": 3},
          repr((call.function.name, args)))
    check("reasoning before the call", reasoning_of(choice.message) == "The user wants the weather.", repr(choice.message))
    text, _, finish, _, streamed = stream_text(messages, 128, tools=[WEATHER_TOOL])
    check("streamed tool call", finish == "tool_calls" and streamed.get(0, {}).get("name") == "get_weather"
          and json.loads(streamed[0]["arguments"]) == {"city": "Paris", "days": 3}, repr((finish, streamed)))
    follow = messages + [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": call.id, "type": "function", "function": {"name": "get_weather", "arguments": call.function.arguments}}]},
        {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"forecast": "sunny"})},
    ]
    r = greedy(follow, 128, tools=[WEATHER_TOOL])
    check("answer after the tool result", r.choices[0].message.content == "It is sunny in Paris."
          and r.choices[0].finish_reason == "stop", repr(r.choices[0]))
    r = greedy(user("Give me a broken call"), 128, tools=[WEATHER_TOOL])
    m = r.choices[0].message
    check("a call that does not parse comes back as content", not m.tool_calls and "<tool_call>" in (m.content or "")
          and r.choices[0].finish_reason == "stop", repr(m))
    r = greedy(user("What is the weather in Paris?"), 128, tools=[WEATHER_TOOL], tool_choice="none")
    m = r.choices[0].message
    check("tool_choice none: calls stay text", not m.tool_calls and "<tool_call>" in (m.content or ""), repr(m))
    r = greedy(user("Pick a tool"), 128, tools=[WEATHER_TOOL],
               tool_choice={"type": "function", "function": {"name": "get_weather"}})
    calls = r.choices[0].message.tool_calls
    check("a named tool_choice forces that call", calls is not None and calls[0].function.name == "get_weather"
          and json.loads(calls[0].function.arguments) == {"city": "Oslo"}, repr(r.choices[0]))
    # A client that sends the arguments as something other than an object.
    bad = messages + [{"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "[1, 2]"}}]}]
    resp = post("/v1/chat/completions", {"model": MODEL, "messages": bad})
    check("arguments that are not an object: 400 naming the field", resp.status_code == 400
          and error_of(resp)["param"] == "messages[1].tool_calls[0].function.arguments", resp.text)


def real():
    models = client.models.list()
    check("/v1/models lists the model", [m.id for m in models.data] == [MODEL], repr(models))
    health = get("/health")
    check("/health ok", health.status_code == 200 and health.json()["status"] == "ok", health.text)

    # Non-streaming and streaming give the same greedy reply.
    prompt = user("Tell me about GPUs.")
    r = greedy(prompt, 16)
    full = r.choices[0].message.content
    check("chat completion", r.choices[0].finish_reason == "length" and r.usage.completion_tokens == 16
          and r.usage.prompt_tokens > 0, repr(r))
    text, _, finish, usage, _ = stream_text(prompt, 16)
    check("streamed chat equals the whole reply", text == full and finish == "length", repr((text, full)))
    check("stream usage", usage is not None and usage.completion_tokens == 16 and usage.prompt_tokens == r.usage.prompt_tokens,
          repr(usage))
    c = client.completions.create(model=MODEL, prompt="The GPU", max_tokens=8, temperature=0)
    check("completion", c.choices[0].finish_reason == "length" and c.usage.completion_tokens == 8, repr(c))

    # A stop string from the greedy reply ends it there.
    candidates = [full[i:i + 2] for i in range(2, len(full) - 2)]
    candidates = [s for s in candidates if "\ufffd" not in s and full.find(s) >= 2]
    if candidates:
        stop = candidates[0]
        r = greedy(prompt, 16, stop=[stop])
        want = full[:full.find(stop)]
        check("stop string on a real model", r.choices[0].message.content == want and r.choices[0].finish_reason == "stop",
              repr((stop, r.choices[0].message.content, want)))
    else:
        print("note stop string check had no printable substring", flush=True)

    # Reasoning off renders the empty think block: more prompt tokens, a different prompt.
    off = greedy(prompt, 1, extra_body={"chat_template_kwargs": {"enable_thinking": False}})
    check("thinking off changes the prompt", off.usage.prompt_tokens > r.usage.prompt_tokens,
          repr((off.usage, r.usage)))

    # Errors.
    resp = post("/v1/chat/completions", b"{not json")
    check("malformed body: 400", resp.status_code == 400 and error_of(resp)["type"] == "invalid_request_error", resp.text)
    resp = post("/v1/chat/completions", {"model": MODEL, "messages": prompt, "temperature": "hot"})
    check("wrong type: 400 naming the field", resp.status_code == 400 and error_of(resp)["param"] == "temperature", resp.text)
    try:
        client.chat.completions.create(model="no-such-model", messages=prompt, max_tokens=1)
        check("unknown model: 400", False, "no error")
    except openai.BadRequestError as e:
        check("unknown model: 400", e.body["code"] == "model_not_found", repr(e.body))
    try:
        greedy(prompt, 100000)
        check("over the context: 400", False, "no error")
    except openai.BadRequestError as e:
        check("over the context: 400 with the numbers", "100000" in e.body["message"] and "context" in e.body["message"],
              repr(e.body))
    for body, param in [({"n": 2}, "n"), ({"response_format": {"type": "json_object"}}, "response_format"),
                        ({"tool_choice": "required"}, "tool_choice"), ({"top_k": 1000}, "top_k"),
                        ({"messages": []}, "messages"), ({"messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role")]:
        resp = post("/v1/chat/completions", {"model": MODEL, "messages": prompt, **body})
        check(f"{param}: 400", resp.status_code == 400 and error_of(resp)["param"] == param, resp.text)
    # Log probabilities: the greedy token is the most likely one, and the tokens are the
    # ones drawn without asking for them.
    plain8 = greedy(prompt, 8)
    r = greedy(prompt, 8, logprobs=True, top_logprobs=3)
    content = r.choices[0].logprobs.content
    check("logprobs: one entry a token", len(content) == r.usage.completion_tokens, repr(r.choices[0].logprobs))
    check("logprobs: the greedy token is the best of its top 3",
          all(len(e.top_logprobs) == 3 and e.logprob <= 0 and abs(e.logprob - e.top_logprobs[0].logprob) < 1e-5
              and e.top_logprobs[0].logprob >= e.top_logprobs[1].logprob >= e.top_logprobs[2].logprob
              for e in content), repr(content[:2]))
    check("logprobs: the same reply as without them", r.choices[0].message.content == plain8.choices[0].message.content,
          repr((r.choices[0].message.content, plain8.choices[0].message.content)))
    streamed = client.chat.completions.create(model=MODEL, messages=prompt, max_tokens=8, temperature=0, stream=True,
                                              logprobs=True, top_logprobs=1)
    entries = [e for chunk in streamed for c in chunk.choices if c.logprobs and c.logprobs.content
               for e in c.logprobs.content]
    check("streamed logprobs", [e.logprob for e in entries] == [e.logprob for e in content], repr(entries[:2]))
    c = client.completions.create(model=MODEL, prompt="The GPU", max_tokens=4, temperature=0, logprobs=2)
    lp = c.choices[0].logprobs
    check("completion logprobs", len(lp.token_logprobs) == c.usage.completion_tokens and len(lp.top_logprobs[0]) <= 2
          and lp.text_offset[0] == 0, repr(lp))
    resp = post("/v1/chat/completions", {"model": MODEL, "messages": prompt, "logprobs": True, "top_logprobs": 21})
    check("top_logprobs over 20: 400", resp.status_code == 400 and error_of(resp)["param"] == "top_logprobs", resp.text)

    # Presence and frequency penalties take effect (greedy: only the penalties can change the reply).
    penalised = greedy(prompt, 16, presence_penalty=2.0, frequency_penalty=2.0).choices[0].message.content
    check("presence and frequency penalties change a greedy reply", penalised != full, repr((penalised, full)))
    resp = post("/v1/chat/completions", {"model": MODEL, "messages": prompt, "presence_penalty": 3})
    check("a penalty out of range: 400", resp.status_code == 400 and "presence penalty" in error_of(resp)["message"],
          resp.text)
    resp = post("/v1/chat/completions", {"model": MODEL, "messages": prompt}, headers={})
    check("missing API key: 401", resp.status_code == 401, resp.text)
    resp = post("/v1/chat/completions", {"model": MODEL, "messages": prompt}, headers={"Authorization": "Bearer wrong"})
    check("wrong API key: 401", resp.status_code == 401, resp.text)
    resp = post("/v1/chat/completions", b"{" + b" " * (2 << 20) + b"}")
    check("body over the limit: 413", resp.status_code == 413, resp.text[:200])
    resp = get("/v1/nothing", HEADERS)
    check("unknown endpoint: 404 JSON", resp.status_code == 404 and "error" in resp.json(), resp.text)

    # A multi-turn chat re-sent whole resumes from the cache and matches a cold run.
    turn1 = user("Hello, who are you?")
    a1 = greedy(turn1, 8).choices[0].message.content
    turn2 = turn1 + [{"role": "assistant", "content": a1}, {"role": "user", "content": "And what can you do?"}]
    warm = greedy(turn2, 8)
    cached = warm.usage.prompt_tokens_details.cached_tokens
    check("re-sent history reports cached tokens", cached > 0 and cached < warm.usage.prompt_tokens,
          repr(warm.usage))
    print(f"note multi-turn: {cached} of {warm.usage.prompt_tokens} prompt tokens from the cache", flush=True)
    print("REPLY " + json.dumps(warm.choices[0].message.content), flush=True)


def concurrent(prompts, max_tokens):
    """Greedy replies to `prompts`, each alone, then all at once on their own threads."""
    alone = []
    for p in prompts:
        r = greedy(user(p), max_tokens)
        alone.append((r.choices[0].message.content, r.choices[0].finish_reason, r.usage.completion_tokens))
    together = [None] * len(prompts)
    errors = []

    def run(i):
        try:
            text, _, finish, usage, _ = stream_text(user(prompts[i]), max_tokens)
            together[i] = (text, finish, usage.completion_tokens if usage else None)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(prompts))]
    start = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    seconds = time.time() - start
    check(f"{len(prompts)} concurrent streams complete", not errors and all(t is not None for t in together), repr(errors))
    for i, run in enumerate(together):
        check(f"stream {i} equals its request run alone", run == alone[i], repr((run, alone[i])))
    print(f"note {len(prompts)} streams x {max_tokens} tokens in {seconds:.1f} s: "
          f"{len(prompts) * max_tokens / seconds:.2f} tok/s aggregate", flush=True)


def busy():
    # One slot, one queue place: a long stream runs, one request waits, the next is refused.
    long = client.chat.completions.create(model=MODEL, messages=user("A long story, please."), max_tokens=900,
                                          temperature=0, stream=True)
    first = next(iter(long))
    check("long stream started", first is not None)
    waiting = {}

    def queued():
        waiting["reply"] = greedy(user("Queued request"), 4)

    t = threading.Thread(target=queued)
    t.start()
    # Refused only while the stream still runs: post as soon as the queue holds the waiting
    # request (a fast device finishes a long stream in about a second).
    deadline = time.time() + 30
    while time.time() < deadline and "qwen_wgpu_queue_depth 1" not in get("/metrics").text:
        time.sleep(0.01)
    resp = post("/v1/chat/completions", {"model": MODEL, "messages": user("One too many"), "max_tokens": 4})
    check("queue full: 503", resp.status_code == 503, resp.text)
    # Killing the stream frees the slot for the waiting request.
    long.response.close()
    t.join(TIMEOUT)
    check("the waiting request ran after the stream was killed", waiting.get("reply") is not None
          and waiting["reply"].usage.completion_tokens == 4, repr(waiting))
    deadline = time.time() + 60
    while time.time() < deadline:
        if get("/health").json().get("slots_processing") == 0:
            break
        time.sleep(0.2)
    check("no slot left busy", get("/health").json().get("slots_processing") == 0)
    metrics = get("/metrics").text
    check("metrics in Prometheus text", "qwen_wgpu_requests_total" in metrics and "qwen_wgpu_slots 1" in metrics, metrics)


if __name__ == "__main__":
    if MODE == "scripted":
        scripted()
    elif MODE == "real":
        real()
    elif MODE == "cold":
        # The turn-2 request of `real` on a server without a cache, printed for the caller.
        turn1 = user("Hello, who are you?")
        a1 = greedy(turn1, 8).choices[0].message.content
        turn2 = turn1 + [{"role": "assistant", "content": a1}, {"role": "user", "content": "And what can you do?"}]
        print("REPLY " + json.dumps(greedy(turn2, 8).choices[0].message.content), flush=True)
    elif MODE == "concurrent":
        concurrent([f"Question {i}: tell me something about the number {i * 7}." for i in range(16)], 8)
    elif MODE == "busy":
        busy()
    else:
        sys.exit(f"unknown mode {MODE}")
    print("all checks passed", flush=True)
