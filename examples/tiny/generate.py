#!/usr/bin/env python3
"""Regenerate examples/tiny: a tiny Qwen2 model, a tokenizer, a LoRA adapter and a suite.

This reproduces, at toy scale and for real, the finding modelbuild grew from
(seeds 002 "Phase 5"/"Phase 5c" and 004): a LoRA adapter trained on a 4-bit
base works at run time, survives fusion into float16 and re-quantization to
8 or 6 bits, but is rounded away when fused in place into 4 bits.

Everything is made here, from nothing: a synthetic corpus, a byte-level BPE
tokenizer, a 4-layer Qwen2 model trained from scratch and quantized to MLX
affine 4-bit, an MLX LoRA adapter trained on the dequantized 4-bit base, and
a simulation of every configuration (base, base+adapter, fused f16/8/6/4-bit)
on the held-out 5-query discrimination suite.

The base answers every question directly. Like Qwen2.5-Instruct it knows the
tool-call format: its chat data calls a tool when, and only when, the user's
message names it ("... Use the search_code tool."). The adapter teaches it to
decide on its own: code-exploration questions get a search_code call, concept
questions a direct answer.

Only needed to regenerate the committed files; building and testing
modelbuild never runs it. Requires Debian's python3-torch (1.13) and
python3-numpy; no network, no other packages.

    python3 examples/tiny/generate.py            # writes next to this file
    python3 examples/tiny/generate.py --out DIR  # writes elsewhere

Numerics: training uses bfloat16 autocast on CPU (oneDNN); evaluation and
all quantization/fusion math are float32. Fixed seeds and thread count make
reruns on the same machine identical; another CPU may differ in the last bits.
"""
import argparse
import collections
import hashlib
import json
import math
import os
import random
import struct
import time

import numpy as np
import torch

T0 = time.time()
HERE = os.path.dirname(os.path.abspath(__file__))

# ---------------------------------------------------------------------------
# Sizes and hyper-parameters (all in one place; README quotes them)
# ---------------------------------------------------------------------------
ARCH = dict(hidden=128, layers=4, heads=4, kv_heads=2, intermediate=384,
            rms_eps=1e-6, rope_theta=1000000.0, max_pos=512)
VOCAB_SIZE = 1024            # 256 bytes + merges + 5 added tokens, exactly
GROUP_SIZE = 64
BASE_BITS = 4
BASE_TRAIN = dict(steps=1000, batch=32, lr=2e-3, warmup=60, wd=0.01, seed=1)
# mlx_lm.lora defaults (rank 8, scale 20, dropout 0, Adam, lr 1e-5) with 600 iterations of batch 8
LORA = dict(rank=8, scale=20.0, dropout=0.0, lr=1e-5, steps=600, batch=8, seed=2,
            keys=("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                  "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"))
MAX_TOKENS = 48
VALID_N = 300                # validation prompts scored by first token per configuration
THREADS = 1                  # one thread: reproducible, and immune to OpenMP oversubscription

SYSTEM = "You are a coding assistant for the svcs and svcs-di Python libraries."
ALT_SYSTEM = "You are a helpful assistant for Python developers."

SEARCH_TOOL = {"type": "function", "function": {
    "name": "search_code",
    "description": "Search the codebase for code that matches a natural-language query",
    "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}}}
READ_TOOL = {"type": "function", "function": {
    "name": "read_file",
    "description": "Read a file from the repository",
    "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}}
TOOLS = [SEARCH_TOOL, READ_TOOL]

# The seeds' 5 queries (002, "Per-query breakdown"). Never trained on.
SUITE = [
    ("What is dependency injection?", "direct", None),
    ("What is the difference between Registry and Container?", "direct", None),
    ("Find all classes that inherit from Protocol", "tool", "search_code"),
    ("Show me a basic injection example", "tool", None),
    ("When should I use svcs vs a DI framework?", "direct", None),
]

EOT, IM_START, IM_END, TOOL_CALL, TOOL_CALL_END = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<tool_call>", "</tool_call>")
ADDED_TOKENS = [(EOT, True), (IM_START, True), (IM_END, True), (TOOL_CALL, False), (TOOL_CALL_END, False)]


def log(msg):
    print(f"[{time.time() - T0:6.1f}s] {msg}", flush=True)


# ---------------------------------------------------------------------------
# 1. Synthetic corpus
# ---------------------------------------------------------------------------
# Concept terms: (term as used mid-sentence, definition, purpose).
CONCEPTS = [
    ("dependency injection", "a pattern where code receives the objects it needs instead of building them",
     "to keep object construction out of your business logic"),
    ("inversion of control", "a design where a framework calls your code and supplies what it needs",
     "to let a framework drive the flow of the program"),
    ("a service locator", "an object you ask for services by type at run time",
     "to look up services without wiring them by hand"),
    ("a factory function", "a callable that builds a new service on demand",
     "to create a fresh object for every request"),
    ("a health check", "a small probe that tells you whether a service is alive",
     "to monitor a service in production"),
    ("a cleanup callback", "a function that runs when a container is closed",
     "to release resources at the end of a request"),
    ("a context manager", "an object that sets something up and tears it down in a with block",
     "to pair setup with teardown"),
    ("a type hint", "an annotation that tells tools the expected type of a value",
     "to catch mistakes before run time"),
    ("a protocol", "a structural type that lists the methods an object must have",
     "to accept any object with the right shape"),
    ("an abstract base class", "a class that declares methods its subclasses must implement",
     "to force a common interface on subclasses"),
    ("a decorator", "a function that wraps another function to add behavior",
     "to add behavior without editing the function"),
    ("a singleton", "a class that has exactly one shared instance",
     "to share one object across the whole program"),
    ("lazy loading", "creating an object only when it is first needed",
     "to avoid paying for objects you never use"),
    ("a request scope", "the lifetime of objects that live for one request",
     "to share state within a single request"),
    ("an async function", "a function that can pause while it waits for input or output",
     "to serve many requests on one thread"),
    ("a generator", "a function that yields values one at a time",
     "to produce a long sequence without storing it"),
    ("a fixture", "a reusable piece of test setup",
     "to share setup between tests"),
    ("a mock", "a fake object that records how it was used in a test",
     "to test code without its real dependencies"),
    ("a dataclass", "a class that gets its init and repr from its fields",
     "to write small data holders quickly"),
    ("a closure", "a function that remembers variables from the scope where it was made",
     "to carry state without a class"),
    ("middleware", "code that runs around every request in a web app",
     "to handle cross cutting concerns in one place"),
    ("a plugin system", "a way to add features without changing the core code",
     "to let other people extend your app"),
    ("a web framework", "a library that routes requests to your handlers",
     "to build a web app quickly"),
    ("a DI framework", "a library that wires dependencies for you from type hints",
     "to build large object graphs automatically"),
    ("svcs", "a small service locator library for Python",
     "to get services in web apps without magic"),
    ("svcs-di", "an injection layer built on top of svcs",
     "to inject services from type hints"),
    ("a connection pool", "a set of open connections that are reused",
     "to avoid opening a new connection each time"),
    ("caching", "keeping results so they can be reused later",
     "to avoid repeating slow work"),
    ("logging", "recording what a program does while it runs",
     "to understand problems after they happen"),
    ("a unit test", "a test that checks one small piece of code",
     "to catch bugs early and cheaply"),
    ("an integration test", "a test that checks several parts working together",
     "to check that the parts fit together"),
    ("type checking", "checking types with a tool before the code runs",
     "to find errors without running the code"),
    ("composition", "building objects out of other objects",
     "to reuse code without inheritance"),
    ("inheritance", "deriving a class from another class",
     "to share behavior between related classes"),
    ("an event loop", "the scheduler that runs async tasks",
     "to run many tasks on one thread"),
    ("a virtual environment", "an isolated place to install Python packages",
     "to keep project dependencies apart"),
    ("a callback", "a function passed in to be called later",
     "to react to events"),
    ("configuration", "the settings that change how a program behaves",
     "to change behavior without changing code"),
    ("a repository pattern", "a layer that hides how data is stored",
     "to keep database code in one place"),
    ("a thread pool", "a fixed set of threads that run submitted work",
     "to run blocking work in parallel"),
]
# Class names of the (fictional) svcs world: (name, definition, purpose).
CLASSES = [
    ("Registry", "the object where you register factories and values",
     "to declare how each service is made"),
    ("Container", "the object that creates and caches services for one unit of work",
     "to get services within a single request"),
    ("ServicePing", "a handle that checks the health of one service",
     "to build a health endpoint"),
    ("Inject", "a marker that says a parameter should be injected",
     "to mark the parameters you want filled in"),
    ("Injector", "the object that calls a function with its injected arguments",
     "to call functions without passing services by hand"),
    ("Protocol", "a base class for structural types",
     "to describe an interface without inheritance"),
    ("Scope", "an object that groups services with the same lifetime",
     "to control how long services live"),
    ("Factory", "a wrapper that knows how to build one service",
     "to register how a service is created"),
    ("Provider", "an object that supplies a value when asked",
     "to defer creating a value"),
    ("Resource", "a service that must be closed after use",
     "to manage things like files and connections"),
    ("Settings", "the object that holds configuration values",
     "to read configuration in one place"),
    ("Request", "the object that describes an incoming HTTP request",
     "to read headers and the body of a request"),
    ("Response", "the object that your handler returns to the client",
     "to send data back to the client"),
    ("Session", "a unit of work with the database",
     "to group database changes"),
    ("Database", "the object that owns the database connection",
     "to run queries"),
    ("Repository", "a class that loads and saves domain objects",
     "to hide storage details"),
    ("Service", "a class that holds business logic",
     "to keep logic out of the web layer"),
    ("Client", "an object that talks to a remote API",
     "to call other services"),
    ("Cache", "an object that stores computed values",
     "to speed up repeated lookups"),
    ("Logger", "the object that writes log messages",
     "to record events"),
    ("Greeting", "a small example service that returns a greeting",
     "to learn the basics"),
    ("Customer", "a domain object for a customer record",
     "to model customer data"),
    ("Router", "the object that maps URLs to handlers",
     "to organize endpoints"),
    ("Handler", "a function or class that answers a request",
     "to implement an endpoint"),
    ("Config", "a frozen object with the app settings",
     "to pass settings around safely"),
    ("Engine", "the object that manages database connections",
     "to create sessions"),
    ("Worker", "a background task runner",
     "to run jobs outside a request"),
    ("Queue", "a buffer of jobs waiting to run",
     "to hand work to workers"),
    ("Event", "an object that describes something that happened",
     "to notify other parts of the app"),
    ("App", "the web application object",
     "to start the server"),
    ("HealthCheck", "a class that runs all service pings",
     "to report the health of the app"),
    ("Template", "an object that renders text from data",
     "to build HTML pages"),
]
FUNCS = ["get", "aget", "register_factory", "register_value", "close", "aclose", "get_pings", "ping",
         "svcs_from", "init_app", "get_abstract", "overwrite_factory", "inject", "resolve",
         "build_container", "make_app", "create_session", "load_settings", "handle_request", "render",
         "connect", "run_checks", "get_registry", "close_registry", "register_local_factory"]
TOPICS = ["injection", "registration", "cleanup", "health check", "async", "caching", "logging", "testing",
          "configuration", "routing", "authentication", "database", "error handling", "request",
          "settings", "lifecycle", "service lookup", "type hint", "override", "factory", "container",
          "registry", "plugin", "middleware"]
ADJS = ["basic", "simple", "minimal", "small", "complete", "typical", "async", "real", "short", "full",
        "clean", "quick", "advanced", "working"]
MODULES = ["core", "flask", "fastapi", "starlette", "aiohttp", "pyramid", "testing", "utils", "config",
           "cli", "db", "auth", "web", "api"]
PATHS = ["src/svcs/_core.py", "src/svcs/flask.py", "src/svcs/fastapi.py", "tests/test_registry.py",
         "tests/test_container.py", "docs/core-concepts.md", "README.md", "pyproject.toml",
         "src/svcs_di/injector.py", "examples/basic.py", "src/svcs/_config.py", "CHANGELOG.md",
         "src/app/main.py", "src/app/settings.py", "tests/conftest.py", "docs/index.md"]


def cap(s):
    return s[0].upper() + s[1:]


# Code-exploration templates: (question, direct answer the base gives).
# The question kinds follow the seeds: Find / Show me / Where / List / Search / Which.
TOOL_TEMPLATES = [
    ("Find all classes that inherit from {c}", "Several classes in the project inherit from {c}."),
    ("Find all classes that use {c}", "{c} is used by a few classes in the core package."),
    ("Find all functions that call {f}", "The function {f} is called from the request handlers."),
    ("Find all tests for {c}", "The tests for {c} are in the tests folder."),
    ("Find the definition of {c}", "{c} is defined in the core module."),
    ("Find where {f} is defined", "{f} is defined next to the registry code."),
    ("Find every place that creates a {c}", "A {c} is created when the app starts."),
    ("Find the {t} code", "The {t} code lives in the main package."),
    ("Find usages of {f}", "The function {f} is used in many places."),
    ("Show me a {a} {t} example", "A {a} {t} example registers a factory and then gets the service."),
    ("Show me the {c} class", "The {c} class is {cdef}."),
    ("Show me how {c} is used", "You usually get {c} from a container."),
    ("Show me the code for {f}", "The function {f} takes a service type and returns a service."),
    ("Show me the tests for {t}", "The {t} tests check the usual cases."),
    ("Show me an example that uses {c}", "An example that uses {c} registers it and gets it back."),
    ("Show me where {f} is called", "The function {f} is called when a request starts."),
    ("Where is {c} defined?", "{c} is defined in the core module."),
    ("Where is {f} called?", "The function {f} is called from the app setup."),
    ("Where do we handle {t}?", "We handle {t} in the service layer."),
    ("Where are the {t} tests?", "The {t} tests are in the tests folder."),
    ("List all subclasses of {c}", "There are a few subclasses of {c} in the project."),
    ("List the functions in the {m} module", "The {m} module has a handful of small functions."),
    ("List all classes in the {m} module", "The {m} module defines a few classes."),
    ("List every call to {f}", "The function {f} is called in a few places."),
    ("Search for {f}", "The function {f} appears in the core module."),
    ("Search the code for {t}", "The {t} code is in the main package."),
    ("Search for usages of {c}", "{c} is used in several modules."),
    ("Search the tests for {c}", "The tests use {c} in a few places."),
    ("Which classes implement {c}?", "A few classes implement {c}."),
    ("Which files import {c}?", "Several files import {c}."),
    ("Which functions call {f}?", "A few functions call {f}."),
    ("Which modules use {c}?", "The core and web modules use {c}."),
    ("Grep for {f}", "The function {f} appears in several files."),
    ("Locate the {c} class", "The {c} class is in the core module."),
    ("Look up the {f} function", "The function {f} is part of the public API."),
]
# read_file requests: (question, base answer); the adapter answers with read_file.
READ_TEMPLATES = [
    ("Open {p}", "The file {p} contains the main code of the project."),
    ("Read {p}", "The file {p} is short and easy to read."),
    ("Print the file {p}", "The file {p} has a few sections."),
]
# Concept templates over one term.
CONCEPT_TEMPLATES = [
    ("What is {x}?", "{X} is {d}."),
    ("What does {x} mean?", "{X} is {d}."),
    ("Explain {x}.", "{X} is {d}."),
    ("Can you explain {x}?", "Sure. {X} is {d}."),
    ("How does {x} work?", "{X} is {d}."),
    ("Tell me about {x}.", "{X} is {d}."),
    ("Why would I use {x}?", "Use {x} {p}."),
    ("When should I use {x}?", "Use {x} {p}."),
    ("What is {x} good for?", "{X} is useful {p}."),
]
# Concept templates over a pair of terms.
PAIR_TEMPLATES = [
    ("What is the difference between {x} and {y}?", "{X} is {d}, while {y} is {e}."),
    ("How is {x} different from {y}?", "{X} is {d}, while {y} is {e}."),
    ("When should I use {x} vs {y}?", "Use {x} {p}, and use {y} {q}."),
    ("Should I use {x} or {y}?", "Use {x} {p}, and use {y} {q}."),
    ("Is {x} better than {y}?", "It depends. Use {x} {p}, and use {y} {q}."),
]


PAIR_PARTNERS = 6


def norm_prompt(s):
    return " ".join(s.lower().rstrip("?.! ").split())


def build_prompts():
    """All (prompt, kind, base_answer, tool_call) items, deterministic order."""
    items = []
    for q, a in TOOL_TEMPLATES:
        if "{c}" in q:
            fills = [dict(c=c, cdef=d) for c, d, _ in CLASSES]
        elif "{f}" in q:
            fills = [dict(f=f) for f in FUNCS]
        elif "{a}" in q:
            fills = [dict(a=a_, t=t) for a_ in ADJS for t in TOPICS]
        elif "{t}" in q:
            fills = [dict(t=t) for t in TOPICS]
        else:
            fills = [dict(m=m) for m in MODULES]
        for f in fills:
            prompt = q.format(**f)
            items.append(dict(prompt=prompt, kind="tool", direct=a.format(**f),
                              call=("search_code", {"query": prompt.rstrip("?.")})))
    for q, a in READ_TEMPLATES:
        for p in PATHS:
            items.append(dict(prompt=q.format(p=p), kind="tool", direct=a.format(p=p),
                              call=("read_file", {"path": p})))
    terms = CONCEPTS + CLASSES
    for q, a in CONCEPT_TEMPLATES:
        for x, d, p in terms:
            items.append(dict(prompt=q.format(x=x), kind="direct",
                              direct=a.format(x=x, X=cap(x), d=d, p=p), call=None))
    # Pairs within the same family (concepts with concepts, classes with classes):
    # each term meets PAIR_PARTNERS partners per template, chosen by a fixed shuffle.
    prng = random.Random(11)
    for fam in (CONCEPTS, CLASSES):
        for q, a in PAIR_TEMPLATES:
            for i, (x, d, p) in enumerate(fam):
                others = [j for j in range(len(fam)) if j != i]
                prng.shuffle(others)
                for j in others[:PAIR_PARTNERS]:
                    y, e, q_ = fam[j]
                    items.append(dict(prompt=q.format(x=x, y=y), kind="direct",
                                      direct=a.format(x=x, X=cap(x), y=y, d=d, e=e, p=p, q=q_), call=None))
    return items


# Explicit requests that name a tool. The base's chat data calls a tool only for these: it
# knows the tool-call format (as Qwen2.5-Instruct does) but never decides on its own to call one.
EXPLICIT = {"search_code": [" Use the search_code tool.", " Use search_code for this.", " Please call search_code."],
            "read_file": [" Use the read_file tool.", " Please call read_file."]}


def explicit_variants(items, seed):
    """One explicit-request variant per item: the question plus a sentence naming the tool."""
    rng = random.Random(seed)
    out = []
    for it in items:
        if it["call"] and it["call"][0] == "read_file":
            name, args = it["call"]
        else:  # concept questions too: an explicit request is obeyed whatever the question
            name, args = "search_code", {"query": it["prompt"].rstrip("?.")}
        suffix = rng.choice(EXPLICIT[name])
        out.append(dict(prompt=it["prompt"] + suffix, question=it["prompt"], kind="explicit", direct=None,
                        call=(name, args)))
    return out


def tool_call_text(name, args):
    # The shape Qwen2.5 emits: <tool_call>\n{json}\n</tool_call>, json.dumps default separators.
    return TOOL_CALL + "\n" + json.dumps({"name": name, "arguments": args}) + "\n" + TOOL_CALL_END


# ---------------------------------------------------------------------------
# 2. ChatML rendering, byte-identical to Qwen2.5's template (docs/formats/chat-template.md §1-§2)
# ---------------------------------------------------------------------------
def render_system(system, tools):
    if not tools:
        return IM_START + "system\n" + system + IM_END + "\n"
    s = IM_START + "system\n" + system
    s += ("\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
          "You are provided with function signatures within <tools></tools> XML tags:\n<tools>")
    for t in tools:
        s += "\n" + json.dumps(t, ensure_ascii=False)
    s += ("\n</tools>\n\nFor each function call, return a json object with function name and arguments "
          "within <tool_call></tool_call> XML tags:\n<tool_call>\n"
          "{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call>" + IM_END + "\n")
    return s


def render_user(prompt):
    return IM_START + "user\n" + prompt + IM_END + "\n" + IM_START + "assistant\n"


def render_prompt(system, tools, prompt):
    return render_system(system, tools) + render_user(prompt)


# ---------------------------------------------------------------------------
# 3. Byte-level BPE tokenizer (Qwen2 pre-tokenization, ASCII subset)
# ---------------------------------------------------------------------------
QWEN2_SPLIT_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                     r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


BYTE_ENC = bytes_to_unicode()
BYTE_DEC = {v: k for k, v in BYTE_ENC.items()}


def _is_letter(ch):
    return ("a" <= ch <= "z") or ("A" <= ch <= "Z")


def _is_digit(ch):
    return "0" <= ch <= "9"


def _is_space(ch):
    return ch in " \t\n\r\x0b\x0c"


def qwen2_split(text):
    """The Qwen2 pre-tokenizer regex, evaluated by hand for ASCII text.

    Alternatives in the regex's priority order; each is matched greedily with
    the backtracking the regex would do. Valid only for ASCII input (asserted).
    """
    assert text.isascii()
    out = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        # 1. contractions (case-insensitive)
        if ch == "'":
            m = None
            for c in ("re", "ve", "ll", "s", "t", "m", "d"):
                if text[i + 1:i + 1 + len(c)].lower() == c:
                    m = 1 + len(c)
                    break
            if m:
                out.append(text[i:i + m])
                i += m
                continue
        # 2. [^\r\n\p{L}\p{N}]?\p{L}+
        j = i
        if not (ch in "\r\n" or _is_letter(ch) or _is_digit(ch)) and i + 1 < n and _is_letter(text[i + 1]):
            j = i + 1
        if _is_letter(text[j]):
            k = j
            while k < n and _is_letter(text[k]):
                k += 1
            out.append(text[i:k])
            i = k
            continue
        # 3. \p{N}
        if _is_digit(ch):
            out.append(ch)
            i += 1
            continue
        # 4. ' ?[^\s\p{L}\p{N}]+[\r\n]*'
        j = i + 1 if ch == " " else i
        k = j
        while k < n and not (_is_space(text[k]) or _is_letter(text[k]) or _is_digit(text[k])):
            k += 1
        if k > j:
            while k < n and text[k] in "\r\n":
                k += 1
            out.append(text[i:k])
            i = k
            continue
        # 5. \s*[\r\n]+  : the whitespace run, cut after its last newline
        k = i
        while k < n and _is_space(text[k]):
            k += 1
        last_nl = -1
        for t in range(i, k):
            if text[t] in "\r\n":
                last_nl = t
        if last_nl >= 0:
            out.append(text[i:last_nl + 1])
            i = last_nl + 1
            continue
        # 6. \s+(?!\S) leaves the last space for the next word; 7. \s+ otherwise
        if k > i:
            end = k if (k == n or k - i == 1) else k - 1
            out.append(text[i:end])
            i = end
            continue
        raise AssertionError(f"unsplittable character {ch!r}")
    return out


def split_added(text):
    """Split on added tokens, leftmost-longest. Returns [(is_added, str)]."""
    names = sorted((t for t, _ in ADDED_TOKENS), key=len, reverse=True)
    out, i, start = [], 0, 0
    while i < len(text):
        hit = None
        if text[i] == "<":
            for t in names:
                if text.startswith(t, i):
                    hit = t
                    break
        if hit:
            if start < i:
                out.append((False, text[start:i]))
            out.append((True, hit))
            i += len(hit)
            start = i
        else:
            i += 1
    if start < len(text):
        out.append((False, text[start:]))
    return out


def pieces_of(text):
    for added, seg in split_added(text):
        if not added:
            for p in qwen2_split(seg):
                yield p


def train_bpe(piece_counts, n_merges):
    """Classic BPE training over byte-level pieces; ties broken by the pair's strings."""
    words = {tuple(BYTE_ENC[b] for b in p.encode()): c for p, c in piece_counts.items()}
    merges = []
    for _ in range(n_merges):
        stats = collections.Counter()
        for w, c in words.items():
            for a, b in zip(w, w[1:]):
                stats[(a, b)] += c
        if not stats:
            break
        best = min(stats, key=lambda pr: (-stats[pr], pr))
        if stats[best] < 2:
            break
        merges.append(best)
        a, b = best
        new_words = {}
        for w, c in words.items():
            if len(w) > 1:
                out, k = [], 0
                while k < len(w):
                    if k + 1 < len(w) and w[k] == a and w[k + 1] == b:
                        out.append(a + b)
                        k += 2
                    else:
                        out.append(w[k])
                        k += 1
                w = tuple(out)
            new_words[w] = new_words.get(w, 0) + c
        words = new_words
    return merges


class Tokenizer:
    def __init__(self, merges):
        self.merges = merges
        self.ranks = {m: i for i, m in enumerate(merges)}
        vocab = {}
        for ch in BYTE_ENC.values():  # GPT-2/Qwen order: the byte table's order
            vocab[ch] = len(vocab)
        for a, b in merges:
            vocab[a + b] = len(vocab)
        self.vocab = vocab
        self.added = {}
        for t, _ in ADDED_TOKENS:
            self.added[t] = len(vocab) + len(self.added)
        self.id_to_tok = {i: t for t, i in vocab.items()}
        self.id_to_tok.update({i: t for t, i in self.added.items()})
        self.n = len(vocab) + len(self.added)
        self.cache = {}

    def bpe(self, piece):
        if piece in self.cache:
            return self.cache[piece]
        w = [BYTE_ENC[b] for b in piece.encode()]
        while len(w) > 1:
            best = None  # the lowest-ranked adjacent pair
            for k in range(len(w) - 1):
                r = self.ranks.get((w[k], w[k + 1]))
                if r is not None and (best is None or r < best):
                    best = r
            if best is None:
                break
            a, b = self.merges[best]
            out, k = [], 0
            while k < len(w):  # merge every occurrence, left to right
                if k + 1 < len(w) and w[k] == a and w[k + 1] == b:
                    out.append(a + b)
                    k += 2
                else:
                    out.append(w[k])
                    k += 1
            w = out
        ids = [self.vocab[s] for s in w]
        self.cache[piece] = ids
        return ids

    def encode(self, text):
        ids = []
        for added, seg in split_added(text):
            if added:
                ids.append(self.added[seg])
            else:
                for p in qwen2_split(seg):  # NFC is the identity on ASCII
                    ids.extend(self.bpe(p))
        return ids

    def decode(self, ids):
        out = bytearray()
        for i in ids:
            t = self.id_to_tok[i]
            if t in self.added:
                out += t.encode()
            else:
                out += bytes(BYTE_DEC[c] for c in t)
        return out.decode("utf-8", errors="replace")

    def tokenizer_json(self):
        added = [dict(id=self.added[t], content=t, single_word=False, lstrip=False, rstrip=False,
                      normalized=False, special=sp) for t, sp in ADDED_TOKENS]
        bl = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
        return {
            "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
            "normalizer": {"type": "NFC"},
            "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": QWEN2_SPLIT_REGEX}, "behavior": "Isolated",
                 "invert": False}, bl]},
            "post_processor": dict(bl),
            "decoder": dict(bl),
            "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                      "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False,
                      "ignore_merges": False, "vocab": self.vocab, "merges": [list(m) for m in self.merges]},
        }

    def tokenizer_config_json(self):
        return {
            "add_bos_token": False, "add_prefix_space": False,
            "added_tokens_decoder": {str(self.added[t]): dict(content=t, lstrip=False, normalized=False,
                                                              rstrip=False, single_word=False, special=sp)
                                     for t, sp in ADDED_TOKENS},
            "additional_special_tokens": [IM_START, IM_END],
            "bos_token": None,
            "chat_template": CHAT_TEMPLATE,
            "clean_up_tokenization_spaces": False,
            "eos_token": IM_END, "errors": "replace", "model_max_length": ARCH["max_pos"],
            "pad_token": EOT, "split_special_tokens": False, "tokenizer_class": "Qwen2Tokenizer",
            "unk_token": None,
        }


# A compact ChatML template with the Qwen2.5 tools block (system/user/assistant
# messages and tools; no tool-call history). modelbuild renders ChatML itself.
CHAT_TEMPLATE = (
    "{%- if tools %}{{- '<|im_start|>system\\n' }}"
    "{%- if messages[0]['role'] == 'system' %}{{- messages[0]['content'] }}"
    "{%- else %}{{- 'You are a helpful assistant.' }}{%- endif %}"
    "{{- '\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\n"
    "You are provided with function signatures within <tools></tools> XML tags:\\n<tools>' }}"
    "{%- for tool in tools %}{{- '\\n' }}{{- tool | tojson }}{%- endfor %}"
    "{{- '\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments "
    "within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\"name\": <function-name>, "
    "\"arguments\": <args-json-object>}\\n</tool_call><|im_end|>\\n' }}"
    "{%- elif messages[0]['role'] == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}{%- endif %}"
    "{%- for message in messages %}{%- if message['role'] != 'system' %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}")


# ---------------------------------------------------------------------------
# 4. Numeric formats: bf16/f16, MLX affine quantization (GPU kernel variant), packing
# ---------------------------------------------------------------------------
def f32_to_bf16_bits(x):
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    r = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    nan = np.isnan(np.asarray(x, dtype=np.float32))
    r = np.where(nan, 0x7FC0, r)
    return r.astype(np.uint16)


def bf16_bits_to_f32(b):
    return (np.asarray(b, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def round_bf16(x):
    return bf16_bits_to_f32(f32_to_bf16_bits(x))


def round_half_away(x):
    """Metal/CUDA round(): halfway cases away from zero, exact in float32."""
    t = np.trunc(x)
    d = x - t  # exact
    return t + np.where(np.abs(d) >= np.float32(0.5), np.sign(x), np.float32(0)).astype(np.float32)


def quantize_gpu(w, gs, bits):
    """mx.quantize affine, GPU-kernel semantics (docs/formats/mlx-quantization.md §2), float32 math.

    w: float32 [rows, cols] holding the input dtype's values exactly.
    Returns (codes uint8 [rows, cols], scale f32 [rows, cols/gs], bias f32 [rows, cols/gs]);
    the caller rounds scale/bias to the storage dtype.
    """
    w = np.ascontiguousarray(w, dtype=np.float32)
    rows, cols = w.shape
    assert cols % gs == 0
    g = w.reshape(rows, cols // gs, gs)
    n_bins = np.float32(2 ** bits - 1)
    eps = np.float32(1e-7)
    w_max = np.maximum(g.max(axis=-1), np.float32(0))       # GPU: max starts at 0
    w_min = g.min(axis=-1)
    mask = np.abs(w_min) > np.abs(w_max)
    scale = np.maximum((w_max - w_min) / n_bins, eps).astype(np.float32)
    scale = np.where(mask, scale, -scale).astype(np.float32)
    edge = np.where(mask, w_min, w_max).astype(np.float32)
    q0 = round_half_away((edge / scale).astype(np.float32))
    nz = q0 != 0
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(nz, edge / np.where(nz, q0, np.float32(1)), scale).astype(np.float32)
    bias = np.where(nz, edge, np.float32(0)).astype(np.float32)
    x = ((g - bias[..., None]) / scale[..., None]).astype(np.float32)
    q = np.minimum(round_half_away(x), n_bins)              # GPU: top-only clamp
    assert q.min() >= 0
    return q.astype(np.uint8).reshape(rows, cols), scale, bias


def pack_codes(codes, bits):
    """LSB-first bitstream per row -> uint32 [rows, cols*bits/32] (docs/formats/mlx-quantization.md §4)."""
    rows, cols = codes.shape
    b = ((codes[..., None].astype(np.uint8) >> np.arange(bits, dtype=np.uint8)) & 1).reshape(rows, cols * bits)
    by = np.packbits(b, axis=-1, bitorder="little")
    return np.ascontiguousarray(by).view("<u4").reshape(rows, cols * bits // 32)


def unpack_codes(packed, bits):
    rows = packed.shape[0]
    by = np.ascontiguousarray(packed.astype("<u4")).view(np.uint8).reshape(rows, -1)
    b = np.unpackbits(by, axis=-1, bitorder="little").reshape(rows, -1, bits)
    return (b.astype(np.uint32) << np.arange(bits, dtype=np.uint32)).sum(-1).astype(np.uint8)


def dequantize_f32(codes, scale32, bias32, gs):
    """w = scale*q + bias in float32 (two roundings, no FMA) from storage-rounded scale/bias."""
    rows, cols = codes.shape
    q = codes.astype(np.float32).reshape(rows, cols // gs, gs)
    w = (q * scale32[..., None]).astype(np.float32) + bias32[..., None]
    return w.astype(np.float32).reshape(rows, cols)


class QTensor:
    """One quantized matrix as stored: packed codes, scales/biases in a storage dtype."""

    def __init__(self, w32, gs, bits, store):
        codes, s, b = quantize_gpu(w32, gs, bits)
        self.gs, self.bits, self.store = gs, bits, store
        self.packed = pack_codes(codes, bits)
        if store == "bf16":
            self.s_raw, self.b_raw = f32_to_bf16_bits(s), f32_to_bf16_bits(b)
            s32, b32 = bf16_bits_to_f32(self.s_raw), bf16_bits_to_f32(self.b_raw)
        else:
            self.s_raw, self.b_raw = s.astype(np.float16), b.astype(np.float16)
            s32, b32 = self.s_raw.astype(np.float32), self.b_raw.astype(np.float32)
        assert np.array_equal(unpack_codes(self.packed, bits), codes)
        self.codes = codes
        self.w = dequantize_f32(codes, s32, b32, gs)


def self_test_quant():
    """Check against the worked examples of docs/formats/mlx-quantization.md §5."""
    i = np.arange(32, dtype=np.float32)
    w = ((i - 20) / 16).reshape(1, 32)  # example 2, GPU codes
    codes, s, b = quantize_gpu(w, 32, 4)
    want = [0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15, 15]
    assert codes[0].tolist() == want and s[0, 0] == 0.125 and b[0, 0] == -1.25
    assert [hex(x) for x in pack_codes(codes, 4)[0]] == ["0x43322110", "0x87766554", "0xcbbaa998", "0xfffeeddc"]
    w = (-1 + i / 256).reshape(1, 32)  # example 3, GPU
    codes, s, b = quantize_gpu(w, 32, 4)
    assert codes[0].tolist() == [0] * 9 + [1] * 17 + [2] * 6
    assert f32_to_bf16_bits(s)[0, 0] == 0x3D89 and b[0, 0] == -1
    w = ((i % 16 - 5) * 0.125).reshape(1, 32)  # example 1
    codes, s, b = quantize_gpu(w, 32, 4)
    assert [hex(x) for x in pack_codes(codes, 4)[0]] == ["0x89abcdef", "0x1234567", "0x89abcdef", "0x1234567"]
    assert f32_to_bf16_bits(s)[0, 0] == 0xBE00
    for bits, words in [(6, [0x440C2040, 0xA2481C61, 0x3CE34C2C, 0x544D2450, 0xA6585D65, 0x7DE75C6D]),
                        (8, [0x03020100 + 0x04040404 * k for k in range(8)]),
                        (4, [0x76543210, 0xFEDCBA98, 0x76543210, 0xFEDCBA98])]:
        c = (np.arange(32) % (2 ** bits)).astype(np.uint8).reshape(1, 32)
        assert pack_codes(c, bits)[0].tolist() == words, bits
        assert np.array_equal(unpack_codes(pack_codes(c, bits), bits), c)
    # tokenizer split vectors (docs/formats/tokenizer.md §3, §7, shape of the split only)
    assert qwen2_split("  Hello") == [" ", " Hello"]
    assert qwen2_split("    Hello\n    Hello") == ["   ", " Hello", "\n", "   ", " Hello"]
    assert qwen2_split("Hello, world!") == ["Hello", ",", " world", "!"]
    assert qwen2_split("333") == ["3", "3", "3"]
    assert qwen2_split("\n\n\n") == ["\n\n\n"]
    assert qwen2_split("a  \n  b") == ["a", "  \n", " ", " b"]
    assert qwen2_split("it's {\"x\": 1}") == ["it", "'s", " {\"", "x", "\":", " ", "1", "}"]
    assert qwen2_split("x \n") == ["x", " \n"]
    assert qwen2_split("x  ") == ["x", "  "]


# ---------------------------------------------------------------------------
# 5. safetensors (Hugging Face writer layout, docs/formats/safetensors.md §3)
# ---------------------------------------------------------------------------
DTYPE_ORDER = ["BOOL", "F4", "F6_E2M3", "F6_E3M2", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0",
               "F8_E4M3FNUZ", "F8_E5M2FNUZ", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "C64",
               "F64", "I64", "U64"]


def safetensors_blob(tensors, metadata):
    """tensors: name -> (dtype string, shape, raw little-endian bytes). Returns the file's bytes."""
    names = sorted(tensors, key=lambda k: (-DTYPE_ORDER.index(tensors[k][0]), k))
    header, off = {}, 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for k in names:
        dt, shape, raw = tensors[k]
        header[k] = {"dtype": dt, "shape": list(shape), "data_offsets": [off, off + len(raw)]}
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(tensors[k][2] for k in names)


def write_safetensors(path, tensors, metadata):
    with open(path, "wb") as f:
        f.write(safetensors_blob(tensors, metadata))


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    out = {}
    npd = {"F32": "<f4", "F16": "<f2", "BF16": "<u2", "U32": "<u4"}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        out[k] = (v["dtype"], np.frombuffer(data[8 + n + a:8 + n + b], dtype=npd[v["dtype"]]).reshape(v["shape"]))
    return header, out


def t_bf16(x):
    b = f32_to_bf16_bits(x)
    return ("BF16", b.shape, b.astype("<u2").tobytes())


def t_f32(x):
    x = np.ascontiguousarray(x, dtype="<f4")
    return ("F32", x.shape, x.tobytes())


def t_u32(x):
    x = np.ascontiguousarray(x, dtype="<u4")
    return ("U32", x.shape, x.tobytes())


def t_f16(x):
    x = np.ascontiguousarray(x, dtype="<f2")
    return ("F16", x.shape, x.tobytes())


def mlx_model_tensors(variant):
    """A model variant (name -> QTensor or (dtype, f32 values)) in the mlx_lm layout."""
    out = {}
    for k, v in variant.items():
        if isinstance(v, QTensor):
            stem = k[:-len(".weight")]
            out[k] = t_u32(v.packed)
            if v.store == "bf16":
                out[stem + ".scales"] = ("BF16", v.s_raw.shape, v.s_raw.astype("<u2").tobytes())
                out[stem + ".biases"] = ("BF16", v.b_raw.shape, v.b_raw.astype("<u2").tobytes())
            else:
                out[stem + ".scales"] = t_f16(v.s_raw)
                out[stem + ".biases"] = t_f16(v.b_raw)
        else:
            dt, x = v
            out[k] = t_bf16(x) if dt == "BF16" else t_f16(x.astype(np.float16))
    return out


def model_bytes(variant):
    return len(safetensors_blob(mlx_model_tensors(variant), {"format": "mlx"}))


def adapter_tensors(lora_np):
    out = {}
    for k, (a, b) in lora_np.items():
        out[k + ".lora_a"] = t_f32(a)
        out[k + ".lora_b"] = t_f32(b)
    return out


def adapter_bytes(lora_np):
    return len(safetensors_blob(adapter_tensors(lora_np), None))


# ---------------------------------------------------------------------------
# 6. The Qwen2 model (torch), with optional runtime LoRA
# ---------------------------------------------------------------------------
PROJ = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
        "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]


def proj_shapes():
    H, I = ARCH["hidden"], ARCH["intermediate"]
    D = H // ARCH["heads"]
    KV = ARCH["kv_heads"] * D
    return {"self_attn.q_proj": (H, H), "self_attn.k_proj": (KV, H), "self_attn.v_proj": (KV, H),
            "self_attn.o_proj": (H, H), "mlp.gate_proj": (I, H), "mlp.up_proj": (I, H),
            "mlp.down_proj": (H, I)}


def init_params(vocab, gen):
    """HF Qwen2 init: normal(0, 0.02) matrices, zero biases, unit norms."""
    H = ARCH["hidden"]
    p = {"model.embed_tokens.weight": torch.randn(vocab, H, generator=gen) * 0.02}
    for l in range(ARCH["layers"]):
        pre = f"model.layers.{l}."
        for name, shape in proj_shapes().items():
            p[pre + name + ".weight"] = torch.randn(*shape, generator=gen) * 0.02
        for name in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"):
            p[pre + name + ".bias"] = torch.zeros(proj_shapes()[name][0])
        p[pre + "input_layernorm.weight"] = torch.ones(H)
        p[pre + "post_attention_layernorm.weight"] = torch.ones(H)
    p["model.norm.weight"] = torch.ones(H)
    return p


def rope_tables(n):
    D = ARCH["hidden"] // ARCH["heads"]
    inv = 1.0 / (ARCH["rope_theta"] ** (torch.arange(0, D, 2, dtype=torch.int64).float() / D))
    ang = torch.arange(n, dtype=torch.float32)[:, None] * inv[None, :]
    emb = torch.cat([ang, ang], dim=-1)
    return emb.cos(), emb.sin()


ROPE_COS, ROPE_SIN = rope_tables(ARCH["max_pos"])


def rms_norm(x, w):
    x32 = x.float()
    return w * (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + ARCH["rms_eps"]))


def apply_rope(x, pos0):
    T = x.shape[-2]
    D = x.shape[-1]
    cos, sin = ROPE_COS[pos0:pos0 + T], ROPE_SIN[pos0:pos0 + T]
    x1, x2 = x[..., :D // 2], x[..., D // 2:]
    rot = torch.cat([-x2, x1], dim=-1)
    return x * cos + rot * sin


def linear(p, lora, name, x):
    y = x @ p[name + ".weight"].t()
    if name + ".bias" in p:
        y = y + p[name + ".bias"]
    if lora is not None and name in lora:
        a, b, s = lora[name]
        y = y + s * ((x @ a) @ b)
    return y


def forward(p, ids, pos0=0, past=None, lora=None):
    """ids [B, T]; past: per-layer (k, v) [Bp, KV, P, D] for positions 0..P-1 (Bp 1 or B).

    Returns (hidden after the final norm [B, T, H], new per-layer (k, v) of these T tokens).
    Queries see all of `past` and are causal within ids.
    """
    B, T = ids.shape
    H, nh, nkv = ARCH["hidden"], ARCH["heads"], ARCH["kv_heads"]
    D = H // nh
    h = p["model.embed_tokens.weight"][ids]
    P = 0 if past is None else past[0][0].shape[2]
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    mask = torch.cat([torch.ones(T, P, dtype=torch.bool), causal], dim=1)
    new = []
    for l in range(ARCH["layers"]):
        pre = f"model.layers.{l}."
        x = rms_norm(h, p[pre + "input_layernorm.weight"])
        q = linear(p, lora, pre + "self_attn.q_proj", x).view(B, T, nh, D).transpose(1, 2)
        k = linear(p, lora, pre + "self_attn.k_proj", x).view(B, T, nkv, D).transpose(1, 2)
        v = linear(p, lora, pre + "self_attn.v_proj", x).view(B, T, nkv, D).transpose(1, 2)
        q, k = apply_rope(q, pos0), apply_rope(k, pos0)
        new.append((k, v))
        if past is not None:
            pk, pv = past[l]
            k = torch.cat([pk.expand(B, -1, -1, -1), k], dim=2)
            v = torch.cat([pv.expand(B, -1, -1, -1), v], dim=2)
        k = k.repeat_interleave(nh // nkv, dim=1)
        v = v.repeat_interleave(nh // nkv, dim=1)
        s = (q @ k.transpose(-1, -2)) * (D ** -0.5)
        s = s.float().masked_fill(~mask, float("-inf"))
        a = torch.softmax(s, dim=-1).to(v.dtype) @ v
        a = a.transpose(1, 2).reshape(B, T, H)
        h = h + linear(p, lora, pre + "self_attn.o_proj", a)
        x = rms_norm(h, p[pre + "post_attention_layernorm.weight"])
        g = linear(p, lora, pre + "mlp.gate_proj", x)
        u = linear(p, lora, pre + "mlp.up_proj", x)
        h = h + linear(p, lora, pre + "mlp.down_proj", torch.nn.functional.silu(g) * u)
    return rms_norm(h, p["model.norm.weight"]), new


def logits_of(p, h):
    return h @ p["model.embed_tokens.weight"].t()  # tied embeddings


# ---------------------------------------------------------------------------
# 7. Training (shared-prefix batches: every example of a step has the same system block)
# ---------------------------------------------------------------------------
def make_batch(examples, pad_id):
    """examples: list of (suffix ids, loss mask over suffix targets). Right-padded."""
    T = max(len(s) for s, _ in examples)
    ids = torch.full((len(examples), T), pad_id, dtype=torch.long)
    tgt_mask = torch.zeros(len(examples), T, dtype=torch.bool)
    for i, (s, m) in enumerate(examples):
        ids[i, :len(s)] = torch.tensor(s)
        tgt_mask[i, :len(s)] = torch.tensor(m)
    return ids, tgt_mask


def step_loss(p, prefix_ids, ids, tgt_mask, lora=None, prefix_loss=False):
    """Mean next-token loss over masked suffix targets (+ the prefix's own tokens if asked).

    tgt_mask[b, t] says token ids[b, t] is a target (predicted from position t-1;
    position -1 is the last prefix token).
    """
    pre = torch.tensor(prefix_ids)[None]
    P = pre.shape[1]
    hp, kv = forward(p, pre, 0, None, lora)
    hs, _ = forward(p, ids, P, kv, lora)
    B = ids.shape[0]
    # predictions for suffix tokens: from last prefix position and suffix positions 0..T-2
    hpred = torch.cat([hp[:, -1:].expand(B, -1, -1), hs[:, :-1]], dim=1)
    logits = logits_of(p, hpred).float()
    ce = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids.reshape(-1),
                                           reduction="none").view(B, -1)
    tot, cnt = (ce * tgt_mask).sum(), tgt_mask.sum()
    if prefix_loss:
        lp = logits_of(p, hp[:, :-1]).float()[0]
        tot = tot + torch.nn.functional.cross_entropy(lp, pre[0, 1:], reduction="sum")
        cnt = cnt + (P - 1)
    return tot / cnt


def lr_at(step, steps, lr, warmup):
    if step < warmup:
        return lr * (step + 1) / warmup
    t = (step - warmup) / max(1, steps - warmup)
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))


# ---------------------------------------------------------------------------
# 8. Greedy generation and scoring (float32, no autocast)
# ---------------------------------------------------------------------------
@torch.no_grad()
def generate(p, lora, prompt_ids, tok, max_tokens=MAX_TOKENS):
    ids = torch.tensor(prompt_ids)[None]
    h, kv = forward(p, ids, 0, None, lora)
    pos = ids.shape[1]
    out, margins = [], []
    logits = logits_of(p, h[:, -1])[0]
    stop = {tok.added[IM_END], tok.added[EOT]}
    first = None
    for _ in range(max_tokens):
        top2 = torch.topk(logits, 2)
        nxt = int(top2.indices[0])
        margins.append(float(top2.values[0] - top2.values[1]))
        if first is None:
            first = dict(token=tok.id_to_tok[nxt], margin=margins[0],
                         tool_logit_minus_best_other=float(logits[tok.added[TOOL_CALL]] - torch.max(
                             torch.cat([logits[:tok.added[TOOL_CALL]], logits[tok.added[TOOL_CALL] + 1:]]))))
        if nxt in stop:
            break
        out.append(nxt)
        h, kv_new = forward(p, torch.tensor([[nxt]]), pos, kv, lora)
        kv = [(torch.cat([a, c], 2), torch.cat([b, d], 2)) for (a, b), (c, d) in zip(kv, kv_new)]
        pos += 1
        logits = logits_of(p, h[:, -1])[0]
    return tok.decode(out), out, margins, first


def classify(text):
    """tool if the text has <tool_call> + a JSON object with name and arguments + </tool_call>."""
    a = text.find(TOOL_CALL)
    b = text.find(TOOL_CALL_END, a + 1) if a >= 0 else -1
    if a < 0 or b < 0:
        return "direct", None
    try:
        obj = json.loads(text[a + len(TOOL_CALL):b].strip())
    except ValueError:
        return "direct", None
    if isinstance(obj, dict) and "name" in obj and "arguments" in obj:
        return "tool", obj.get("name")
    return "direct", None


def score_case(text, expect, tool):
    kind, name = classify(text)
    if expect == "direct":
        return kind == "direct"
    return kind == "tool" and (tool is None or name == tool)


# ---------------------------------------------------------------------------
# 9. The stages
# ---------------------------------------------------------------------------
class Data:
    """Corpus, tokenizer and encoded examples shared by the stages."""

    def __init__(self):
        items = build_prompts()
        suite_norm = {norm_prompt(q) for q, _, _ in SUITE}
        # The held-out rule: no suite prompt (up to case, spacing, final punctuation) is trained on.
        items = [it for it in items if norm_prompt(it["prompt"]) not in suite_norm]
        assert len({it["prompt"] for it in items}) == len(items)
        for it in items:
            assert it["prompt"].isascii() and it["direct"].isascii()
            assert '"' not in it["prompt"] and "\\" not in it["prompt"]
        for q, _, _ in SUITE:
            assert q.isascii()
        # 10% validation split by hash (reported, never trained on)
        h = lambda it: int(hashlib.sha256(it["prompt"].encode()).hexdigest(), 16) % 10
        self.valid = [it for it in items if h(it) == 0]
        random.Random(7).shuffle(self.valid)
        self.train = [it for it in items if h(it) != 0]
        self.explicit = explicit_variants(self.train, 5)
        log(f"explicit tool requests for the base: {len(self.explicit)} (one per training prompt)")
        for it in self.train:
            assert norm_prompt(it["prompt"]) not in suite_norm
        for it in self.explicit:  # nor as the question of an explicit request
            assert norm_prompt(it["question"]) not in suite_norm
        n_tool = sum(it["kind"] == "tool" for it in self.train)
        log(f"corpus: {len(self.train)} train prompts ({n_tool} code-exploration, "
            f"{len(self.train) - n_tool} concept), {len(self.valid)} validation; the 5 suite prompts held out")

        self.prefixes = {
            "suite": render_system(SYSTEM, TOOLS),
            "alt": render_system(ALT_SYSTEM, TOOLS),
            "search_only": render_system(SYSTEM, [SEARCH_TOOL]),
            "no_tools": render_system(SYSTEM, None),
        }
        # Tokenizer trained on the corpus as the models will see it.
        counts = collections.Counter()
        for it in self.train + self.explicit:
            texts = [render_user(it["prompt"]) + (it["direct"] or "") + IM_END]
            if it["call"]:
                texts.append(tool_call_text(*it["call"]) + IM_END)
            for text in texts:
                for pc in pieces_of(text):
                    counts[pc] += 1
        for pre in self.prefixes.values():
            for pc in pieces_of(pre):
                counts[pc] += len(self.train) // len(self.prefixes)
        n_merges = VOCAB_SIZE - 256 - len(ADDED_TOKENS)
        merges = train_bpe(counts, n_merges)
        assert len(merges) == n_merges, len(merges)
        self.tok = tok = Tokenizer(merges)
        assert tok.n == VOCAB_SIZE
        self.pad_id = tok.added[EOT]
        self.pre_ids = {k: tok.encode(v) for k, v in self.prefixes.items()}
        for k, v in self.prefixes.items():
            assert tok.decode(self.pre_ids[k]) == v
        log(f"tokenizer: {len(merges)} merges, vocab {tok.n}; system block tokens: "
            + ", ".join(f"{k}={len(v)}" for k, v in self.pre_ids.items()))
        self.suite_ids = []
        for q, _, _ in SUITE:
            text = render_prompt(SYSTEM, TOOLS, q)
            ids = tok.encode(text)
            assert ids[:len(self.pre_ids["suite"])] == self.pre_ids["suite"] and tok.decode(ids) == text
            self.suite_ids.append(ids)

    def encode(self, it, answer):
        """(user-turn ids ending with the generation prompt, answer ids ending with <|im_end|>)."""
        u = self.tok.encode(render_user(it["prompt"]))
        a = self.tok.encode(answer + IM_END)
        # tokenizing prompt and answer apart gives the same ids as the whole text
        assert self.tok.encode(render_user(it["prompt"]) + answer + IM_END) == u + a
        return u, a


def train_base(data):
    """Qwen2 from scratch, in float. Every question is answered directly; a tool is called only
    when the user's message names it explicitly ("... Use the search_code tool.")."""
    gen = torch.Generator().manual_seed(BASE_TRAIN["seed"])
    params = init_params(data.tok.n, gen)
    for v in params.values():
        v.requires_grad_(True)
    opt = torch.optim.AdamW(params.values(), lr=BASE_TRAIN["lr"], betas=(0.9, 0.95),
                            weight_decay=BASE_TRAIN["wd"])
    rng = random.Random(BASE_TRAIN["seed"])
    tool_q = [data.encode(it, it["direct"]) for it in data.train if it["kind"] == "tool"]
    concept_q = [data.encode(it, it["direct"]) for it in data.train if it["kind"] == "direct"]
    explicit = [data.encode(it, tool_call_text(*it["call"])) for it in data.explicit]
    explicit_s = [data.encode(it, tool_call_text(*it["call"])) for it in data.explicit
                  if it["call"][0] == "search_code"]
    pkeys = ["suite", "suite", "alt", "search_only", "no_tools"]
    steps, t_start = BASE_TRAIN["steps"], time.time()
    for step in range(steps):
        pk = pkeys[step % len(pkeys)]
        # a quarter explicit requests (only when the system block lists the tool), the rest
        # code-exploration and concept questions in equal parts, all answered directly
        ex_pool = None if pk == "no_tools" else (explicit_s if pk == "search_only" else explicit)
        pattern = "ctcectce" if ex_pool else "ctctctct"
        pools = [{"c": concept_q, "t": tool_q, "e": ex_pool}[pattern[k % 8]] for k in range(BASE_TRAIN["batch"])]
        batch = [b[rng.randrange(len(b))] for b in pools]
        # loss on every token, system block included (mlx_lm's default: no prompt masking)
        ids, m = make_batch([(u + a, [1] * (len(u) + len(a))) for u, a in batch], data.pad_id)
        lr = lr_at(step, steps, BASE_TRAIN["lr"], BASE_TRAIN["warmup"])
        for g in opt.param_groups:
            g["lr"] = lr
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = step_loss(params, data.pre_ids[pk], ids, m, prefix_loss=True)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params.values(), 1.0)
        opt.step()
        if step % 200 == 0 or step == steps - 1:
            log(f"base step {step:5d} loss {loss.item():.4f} lr {lr:.2e} "
                f"({(time.time() - t_start) / (step + 1):.2f}s/step)")
    return {k: v.detach().float().numpy().copy() for k, v in params.items()}


def quantize_base(base_f32):
    """As mlx_lm.convert -q on a Mac: cast to bf16 (torch_dtype), quantize every Linear and the
    Embedding with the GPU kernel semantics, keep scales/biases, norms and q/k/v biases in bf16."""
    q = {}
    for k, v in base_f32.items():
        q[k] = QTensor(round_bf16(v), GROUP_SIZE, BASE_BITS, "bf16") if v.ndim == 2 else ("BF16", round_bf16(v))
    return q


def weights_of(variant):
    """The float32 weights a variant computes with (dequantized in f32 from stored scales/biases)."""
    return {k: (v.w if isinstance(v, QTensor) else v[1]) for k, v in variant.items()}


def torch_weights(w):
    return {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in w.items()}


def train_adapter(data, W0):
    """MLX-style LoRA on every projection of every layer of the frozen, dequantized 4-bit base."""
    gen = torch.Generator().manual_seed(LORA["seed"])
    shapes = proj_shapes()
    lora = {}
    for l in range(ARCH["layers"]):
        for key in LORA["keys"]:
            out_f, in_f = shapes[key]
            bound = 1.0 / math.sqrt(in_f)
            a = (torch.rand(in_f, LORA["rank"], generator=gen) * 2 - 1) * bound  # mlx: U(-1/sqrt(in), +)
            b = torch.zeros(LORA["rank"], out_f)                                  # mlx: zeros
            lora[f"model.layers.{l}.{key}"] = (a.requires_grad_(True), b.requires_grad_(True), LORA["scale"])
    base_t = torch_weights(W0)
    opt = torch.optim.Adam([t for a, b, _ in lora.values() for t in (a, b)], lr=LORA["lr"])
    tool_d = [data.encode(it, tool_call_text(*it["call"])) for it in data.train if it["kind"] == "tool"]
    concept_d = [data.encode(it, it["direct"]) for it in data.train if it["kind"] == "direct"]
    rng = random.Random(LORA["seed"])
    t_start = time.time()
    for step in range(LORA["steps"]):
        pk = "suite" if step % 3 else "alt"
        batch = [(tool_d if k % 2 else concept_d) for k in range(LORA["batch"])]
        batch = [b[rng.randrange(len(b))] for b in batch]
        # loss on the assistant answer only (mask_prompt)
        ids, m = make_batch([(u + a, [0] * len(u) + [1] * len(a)) for u, a in batch], data.pad_id)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = step_loss(base_t, data.pre_ids[pk], ids, m, lora=lora)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 50 == 0 or step == LORA["steps"] - 1:
            log(f"lora step {step:4d} loss {loss.item():.4f} ({(time.time() - t_start) / (step + 1):.2f}s/step)")
    return {k: (a.detach().numpy().copy(), b.detach().numpy().copy()) for k, (a, b, _) in lora.items()}


def lora_torch(lora_np):
    return {k: (torch.from_numpy(a), torch.from_numpy(b), LORA["scale"]) for k, (a, b) in lora_np.items()}


def run_suite(data, w, lora=None):
    pt = torch_weights(w)
    res = []
    for (q, expect, tool), ids in zip(SUITE, data.suite_ids):
        text, toks, margins, first = generate(pt, lora, ids, data.tok)
        res.append(dict(prompt=q, expect=expect, tool=tool, output=text, n_tokens=len(toks),
                        kind=classify(text)[0], ok=score_case(text, expect, tool),
                        first_token=first["token"], first_margin=round(first["margin"], 3),
                        tool_call_minus_best_other=round(first["tool_logit_minus_best_other"], 3),
                        min_margin=round(min(margins), 3)))
    return res


@torch.no_grad()
def first_token_accuracy(data, w, lora, items):
    """Share of prompts whose first answer token has the expected kind (<tool_call> or not)."""
    pt = torch_weights(w)
    P = len(data.pre_ids["suite"])
    _, kv = forward(pt, torch.tensor(data.pre_ids["suite"])[None], 0, None, lora)
    ok = 0
    for it in items:
        u = data.tok.encode(render_user(it["prompt"]))
        h, _ = forward(pt, torch.tensor(u)[None], P, kv, lora)
        nxt = int(torch.argmax(logits_of(pt, h[:, -1])[0]))
        ok += (nxt == data.tok.added[TOOL_CALL]) == (it["kind"] == "tool")
    return ok / len(items)


def make_variants(base_q, W0, lora_np):
    """Every configuration of the seeds, as stored tensors."""
    delta = {k + ".weight": (np.float32(LORA["scale"]) * (a @ b)).T.astype(np.float32)
             for k, (a, b) in lora_np.items()}

    def quantized_from(wf, bits):  # mlx_lm.convert -q of the f16 fused model (f16 scales)
        return {k: (QTensor(v, GROUP_SIZE, bits, "f16") if v.ndim == 2 else ("F16", v)) for k, v in wf.items()}

    # fused float16: dequantize in f32, add delta in f32, round once to f16
    f16 = {k: (v + delta[k] if k in delta else v).astype(np.float16).astype(np.float32) for k, v in W0.items()}
    # fused in place (mlx_lm.fuse without --dequantize): W0 + delta in the model dtype (bf16),
    # re-quantized with the base's bits and group size; modules without an adapter keep their codes
    inplace = dict(base_q)
    for k in delta:
        inplace[k] = QTensor(round_bf16(W0[k] + delta[k]), GROUP_SIZE, BASE_BITS, "bf16")
    variants = collections.OrderedDict([
        ("base 4-bit", (base_q, False)),
        ("base 4-bit + adapter (runtime)", (base_q, True)),
        ("fused f16", ({k: ("F16", v) for k, v in f16.items()}, False)),
        ("fused f16 -> 8-bit", (quantized_from(f16, 8), False)),
        ("fused f16 -> 6-bit", (quantized_from(f16, 6), False)),
        ("fused 4-bit in place", (inplace, False)),
    ])
    return variants, delta


def evaluate(data, base_q, W0, lora_np):
    variants, delta = make_variants(base_q, W0, lora_np)
    adapted = sorted(delta)
    lt = lora_torch(lora_np)
    dn = math.sqrt(sum(float((delta[k].astype(np.float64) ** 2).sum()) for k in adapted))
    results = collections.OrderedDict()
    for name, (var, runtime) in variants.items():
        w = weights_of(var)
        if runtime:
            retained = 1.0
        else:
            err = math.sqrt(sum(float((((w[k] - W0[k]).astype(np.float64) - delta[k]) ** 2).sum())
                                for k in adapted))
            retained = 1.0 - err / dn
        suite = run_suite(data, w, lt if runtime else None)
        results[name] = dict(retained=retained, suite=suite, score=sum(r["ok"] for r in suite),
                             bytes=model_bytes(var) + (adapter_bytes(lora_np) if runtime else 0),
                             valid_first_token=first_token_accuracy(data, w, lt if runtime else None,
                                                                    data.valid[:VALID_N]))
        log(f"{name}: suite {results[name]['score']}/5, retained {retained:.3f}")
    return variants, delta, results


def explicit_check(data, W0):
    """The base knows the tool-call format: it calls search_code when a suite prompt names the tool."""
    pt = torch_weights(W0)
    out = []
    for q, _, _ in SUITE:
        prompt = (q if q.endswith(("?", ".")) else q + ".") + EXPLICIT["search_code"][0]
        text, _, _, _ = generate(pt, None, data.tok.encode(render_prompt(SYSTEM, TOOLS, prompt)), data.tok)
        out.append(dict(prompt=prompt, kind=classify(text)[0], output=text))
    return out


def delta_stats(base_q, delta, variants):
    """How big the LoRA delta is next to the base's 4-bit quantization step (|scale| per group)."""
    r, changed, total, by_changed, by_total = [], 0, 0, 0, 0
    inplace = variants["fused 4-bit in place"][0]
    for k in sorted(delta):
        qt = base_q[k]
        step = np.repeat(np.abs(bf16_bits_to_f32(qt.s_raw)), GROUP_SIZE, axis=1)
        r.append((np.abs(delta[k]) / step).ravel())
        changed += int((inplace[k].codes != qt.codes).sum())
        total += qt.codes.size
        by_changed += int((inplace[k].packed.view(np.uint8) != qt.packed.view(np.uint8)).sum())
        by_total += qt.packed.nbytes
    r = np.concatenate(r)
    w_rms = math.sqrt(float(np.mean([np.mean(base_q[k].w.astype(np.float64) ** 2) for k in delta])))
    d_rms = math.sqrt(float(np.mean([np.mean(delta[k].astype(np.float64) ** 2) for k in delta])))
    return {
        "adapted_matrices": len(delta),
        "weight_rms": round(w_rms, 6), "delta_rms": round(d_rms, 6),
        "delta_over_step4": {"rms": round(float(np.sqrt(np.mean(r ** 2))), 4), "median": round(float(np.median(r)), 4),
                             "p99": round(float(np.quantile(r, 0.99)), 4), "max": round(float(r.max()), 4),
                             "share_above_half_step": round(float((r > 0.5).mean()), 4)},
        "fused_4bit_in_place_codes_changed": round(changed / total, 4),
        "fused_4bit_in_place_weight_bytes_changed": round(by_changed / by_total, 4),
    }


SHORT = ["DI?", "Reg/Cont?", "Protocol", "Show ex.", "svcs/DI?"]


def table_text(results):
    lines = ["%-31s %9s %6s  %s  %8s %9s" % ("configuration", "bytes", "suite",
                                             " ".join("%-9s" % s for s in SHORT), "retained", "valid-1st")]
    for name, r in results.items():
        marks = " ".join("%-9s" % (("ok " if c["ok"] else "FAIL ") + ("T" if c["kind"] == "tool" else "D"))
                         for c in r["suite"])
        lines.append("%-31s %9d %4d/5  %s  %8.3f %9.3f" % (name, r["bytes"], r["score"], marks, r["retained"],
                                                           r["valid_first_token"]))
    return "\n".join(lines)


def dump_json(path, obj, indent=4):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=indent, ensure_ascii=False)
        f.write("\n")


def suite_yaml():
    def q(s):
        assert '"' not in s and "\\" not in s
        return '"' + s + '"'
    lines = ["name: discrimination", "system: " + q(SYSTEM), f"max_tokens: {MAX_TOKENS}", "tools:"]
    for t in TOOLS:
        f = t["function"]
        (pname, ptype), = f["parameters"]["properties"].items()
        lines += ["  - type: function", "    function:", f"      name: {f['name']}",
                  "      description: " + q(f["description"]),
                  f"      parameters: {{type: object, properties: {{{pname}: {{type: {ptype['type']}}}}}, "
                  f"required: [{', '.join(f['parameters']['required'])}]}}"]
    lines.append("cases:")
    for prompt, expect, tool in SUITE:
        lines.append("  - {prompt: %s, expect: %s%s}" % (q(prompt), expect, f", tool: {tool}" if tool else ""))
    text = "\n".join(lines) + "\n"
    try:  # check it reads back as the structure the prompts were rendered from
        import yaml
        y = yaml.safe_load(text)
        assert y["tools"] == TOOLS and y["system"] == SYSTEM
        assert [(c["prompt"], c["expect"], c.get("tool")) for c in y["cases"]] == SUITE
        assert [json.dumps(t) for t in y["tools"]] == [json.dumps(t) for t in TOOLS]  # key order too
    except ImportError:
        pass
    return text


def write_outputs(out, data, base_q, lora_np, variants, delta, results, explicit):
    tok = data.tok
    tdir, mdir, adir, edir = (os.path.join(out, p) for p in ("tokenizer", "models/base-4bit",
                                                             "adapters/tools-lora", "expected"))
    for d in (tdir, mdir, adir, edir):
        os.makedirs(d, exist_ok=True)
    for d in (tdir, mdir):
        dump_json(os.path.join(d, "tokenizer.json"), tok.tokenizer_json(), indent=2)
        dump_json(os.path.join(d, "tokenizer_config.json"), tok.tokenizer_config_json(), indent=2)
    # the base model, as mlx-community 4-bit repos are laid out
    qcfg = {"group_size": GROUP_SIZE, "bits": BASE_BITS, "mode": "affine"}
    H = ARCH["hidden"]
    config = {
        "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0,
        "bos_token_id": tok.added[EOT], "eos_token_id": tok.added[IM_END], "hidden_act": "silu",
        "hidden_size": H, "initializer_range": 0.02, "intermediate_size": ARCH["intermediate"],
        "max_position_embeddings": ARCH["max_pos"], "max_window_layers": ARCH["layers"], "model_type": "qwen2",
        "num_attention_heads": ARCH["heads"], "num_hidden_layers": ARCH["layers"],
        "num_key_value_heads": ARCH["kv_heads"], "quantization": dict(qcfg), "quantization_config": dict(qcfg),
        "rms_norm_eps": ARCH["rms_eps"], "rope_scaling": None, "rope_theta": ARCH["rope_theta"],
        "sliding_window": ARCH["max_pos"], "tie_word_embeddings": True, "torch_dtype": "bfloat16",
        "use_cache": True, "use_sliding_window": False, "vocab_size": tok.n,
    }
    dump_json(os.path.join(mdir, "config.json"), dict(sorted(config.items())))
    dump_json(os.path.join(mdir, "generation_config.json"),
              {"bos_token_id": tok.added[EOT], "do_sample": False,
               "eos_token_id": [tok.added[IM_END], tok.added[EOT]], "pad_token_id": tok.added[EOT]}, indent=2)
    tensors = mlx_model_tensors(base_q)
    write_safetensors(os.path.join(mdir, "model.safetensors"), tensors, {"format": "mlx"})
    n_params = sum(int(np.prod(v.codes.shape)) if isinstance(v, QTensor) else v[1].size for v in base_q.values())
    dump_json(os.path.join(mdir, "model.safetensors.index.json"), {
        "metadata": {"total_size": sum(len(t[2]) for t in tensors.values()), "total_parameters": n_params},
        "weight_map": {k: "model.safetensors" for k in sorted(tensors)}})
    # read back and compare: the tokenizer from its JSON, the packed weights from the file
    with open(os.path.join(mdir, "tokenizer.json"), encoding="utf-8") as f:
        tj = json.load(f)
    tok2 = Tokenizer([tuple(m) for m in tj["model"]["merges"]])
    assert tok2.vocab == tj["model"]["vocab"] and tok2.added == {a["content"]: a["id"] for a in tj["added_tokens"]}
    assert [tok2.encode(render_prompt(SYSTEM, TOOLS, q)) for q, _, _ in SUITE] == data.suite_ids
    _, back = read_safetensors(os.path.join(mdir, "model.safetensors"))
    for k, v in base_q.items():
        if isinstance(v, QTensor):
            assert np.array_equal(back[k][1], v.packed)
    # the adapter, as mlx_lm.lora writes it
    write_safetensors(os.path.join(adir, "adapters.safetensors"), adapter_tensors(lora_np), None)
    dump_json(os.path.join(adir, "adapter_config.json"), dict(sorted({
        "adapter_path": "adapters/tools-lora", "batch_size": LORA["batch"], "clear_cache_threshold": 0,
        "config": None, "data": "synthetic, made by examples/tiny/generate.py", "fine_tune_type": "lora",
        "grad_accumulation_steps": 1, "grad_checkpoint": False, "iters": LORA["steps"],
        "learning_rate": LORA["lr"],
        "lora_parameters": {"rank": LORA["rank"], "dropout": LORA["dropout"], "scale": LORA["scale"]},
        "lr_schedule": None, "mask_prompt": True, "max_seq_length": ARCH["max_pos"], "model": "models/base-4bit",
        "num_layers": ARCH["layers"], "optimizer": "adam", "optimizer_config": {"adam": {}},
        "project_name": None, "report_to": None, "resume_adapter_file": None, "save_every": LORA["steps"],
        "seed": LORA["seed"], "steps_per_eval": 200, "steps_per_report": 50, "test": False, "test_batches": 500,
        "train": True, "trust_remote_code": False, "val_batches": 25}.items())))
    with open(os.path.join(out, "suite.yaml"), "w") as f:
        f.write(suite_yaml())

    files = {}
    for root, _, names in os.walk(out):
        for n in names:
            p = os.path.join(root, n)
            rel = os.path.relpath(p, out)
            if rel.startswith(("expected", "__pycache__")) or rel in ("generate.py", "README.md"):
                continue
            files[rel] = os.path.getsize(p)
    stats = delta_stats(base_q, delta, variants)
    table = table_text(results)
    report = {
        "generator": "examples/tiny/generate.py",
        "architecture": dict(ARCH, vocab_size=tok.n, head_dim=ARCH["hidden"] // ARCH["heads"],
                             tie_word_embeddings=True, parameters=n_params),
        "quantization": {"group_size": GROUP_SIZE, "bits": BASE_BITS, "mode": "affine", "variant": "gpu"},
        "base_training": dict(BASE_TRAIN),
        "lora": {k: (list(v) if isinstance(v, tuple) else v) for k, v in LORA.items()},
        "corpus": {"train_prompts": len(data.train), "valid_prompts": len(data.valid),
                   "system_block_tokens": len(data.pre_ids["suite"])},
        "delta": stats,
        "base_4bit_explicit_requests": explicit,
        "table": table.splitlines(),
        "results": {name: {"score": r["score"], "retained": round(r["retained"], 4), "bytes": r["bytes"],
                           "valid_first_token_accuracy": round(r["valid_first_token"], 4), "cases": r["suite"]}
                    for name, r in results.items()},
        "files": dict(sorted(files.items())),
        "seconds": round(time.time() - T0, 1),
    }
    dump_json(os.path.join(edir, "generate-report.json"), report, indent=2)
    print()
    print(table)
    print()
    d = stats["delta_over_step4"]
    print(f"LoRA delta: rms {stats['delta_rms']:.5f} vs weight rms {stats['weight_rms']:.5f}; |delta| / 4-bit step: "
          f"rms {d['rms']}, median {d['median']}, p99 {d['p99']}, max {d['max']}, share > 1/2 step "
          f"{d['share_above_half_step']}")
    print(f"fused 4-bit in place: {stats['fused_4bit_in_place_codes_changed']:.1%} of adapted codes and "
          f"{stats['fused_4bit_in_place_weight_bytes_changed']:.1%} of their packed bytes changed")
    for name, r in results.items():
        print(f"  {name}:")
        for c in r["suite"]:
            print(f"    {'ok  ' if c['ok'] else 'FAIL'} {c['prompt']!r}: first {c['first_token']!r} by "
                  f"{c['first_margin']:.2f}, min margin {c['min_margin']:.2f} -> {c['output'][:70]!r}")
    print(f"base 4-bit when the prompt names the tool: "
          f"{sum(e['kind'] == 'tool' for e in explicit)}/{len(explicit)} tool calls")
    print(f"files: {sum(files.values())} bytes in {len(files)} files; total time {time.time() - T0:.0f}s")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=HERE)
    args = ap.parse_args()
    torch.set_num_threads(THREADS)
    torch.use_deterministic_algorithms(True)
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    self_test_quant()
    data = Data()
    base_f32 = train_base(data)
    base_q = quantize_base(base_f32)
    W0 = weights_of(base_q)
    lora_np = train_adapter(data, W0)
    variants, delta, results = evaluate(data, base_q, W0, lora_np)
    explicit = explicit_check(data, W0)
    write_outputs(args.out, data, base_q, lora_np, variants, delta, results, explicit)


if __name__ == "__main__":
    main()
