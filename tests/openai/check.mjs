// Drives a running `modelbuild serve` with the official OpenAI Node client
// (the `openai` npm package, pinned in package.json), as an application
// would. tests/openai_client_test.cc starts the server (examples/tiny's base
// model with its tools adapter, --api-key) and runs one check per test:
//
//   node tests/openai/check.mjs CHECK BASE_URL API_KEY MODEL_ID
//
// A check prints what it saw and exits 0, or throws (exit 1) with the
// reason. Replies are greedy, so a check compares exact values.
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const [check, baseURL, apiKey, modelId] = process.argv.slice(2);
if (!check || !baseURL || !apiKey || !modelId) {
  console.error('usage: node check.mjs CHECK BASE_URL API_KEY MODEL_ID');
  process.exit(2);
}
// No retries: a failure must show, not be papered over.
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 120_000 });

const SYSTEM = 'You are a coding assistant for the svcs and svcs-di Python libraries.';
const TOOLS = [
  {
    type: 'function',
    function: {
      name: 'search_code',
      description: 'Search the codebase for code that matches a natural-language query',
      parameters: { type: 'object', properties: { query: { type: 'string' } }, required: ['query'] },
    },
  },
  {
    type: 'function',
    function: {
      name: 'read_file',
      description: 'Read a file from the repository',
      parameters: { type: 'object', properties: { path: { type: 'string' } }, required: ['path'] },
    },
  },
];
const TOOL_QUESTION = 'Find all classes that inherit from Protocol';
const DIRECT_QUESTION = 'What is dependency injection?';

function ask(prompt, extra = {}) {
  return {
    model: 'tiny',
    messages: [
      { role: 'system', content: SYSTEM },
      { role: 'user', content: prompt },
    ],
    tools: TOOLS,
    max_tokens: 48,
    ...extra,
  };
}

// What two runs of the same request share: everything but ids and times.
function comparable(completion) {
  const choice = completion.choices[0];
  return {
    content: choice.message.content ?? null,
    tool_calls: (choice.message.tool_calls ?? []).map((c) => ({
      type: c.type,
      name: c.function.name,
      arguments: c.function.arguments,
    })),
    finish_reason: choice.finish_reason,
    usage: completion.usage ?? null,
  };
}

function only_call(completion, name) {
  const message = completion.choices[0].message;
  assert.ok(message.tool_calls?.length >= 1, `expected a tool call, got ${JSON.stringify(message)}`);
  const call = message.tool_calls[0];
  assert.equal(call.type, 'function');
  assert.match(call.id, /^call_/);
  if (name) assert.equal(call.function.name, name);
  const args = JSON.parse(call.function.arguments);
  assert.equal(typeof args, 'object');
  assert.equal(completion.choices[0].finish_reason, 'tool_calls');
  return { call, args };
}

const checks = {
  async models() {
    const list = await client.models.list();
    const ids = list.data.map((m) => m.id);
    assert.deepEqual(ids, [modelId]);
    const one = list.data[0];
    assert.equal(one.object, 'model');
    console.log('models:', ids);
  },

  async chat_with_tools() {
    const tool = await client.chat.completions.create(ask(TOOL_QUESTION));
    assert.equal(tool.object, 'chat.completion');
    assert.equal(tool.model, modelId);
    const { args } = only_call(tool, 'search_code');
    assert.equal(args.query, TOOL_QUESTION);
    assert.equal(tool.choices[0].message.content, null);
    assert.ok(tool.usage.prompt_tokens > 0 && tool.usage.completion_tokens > 0);

    const direct = await client.chat.completions.create(ask(DIRECT_QUESTION));
    assert.equal(direct.choices[0].message.tool_calls, undefined);
    assert.equal(direct.choices[0].finish_reason, 'stop');
    assert.match(direct.choices[0].message.content, /injection/);
    console.log('tool call:', tool.choices[0].message.tool_calls[0].function, 'direct:', direct.choices[0].message.content);
  },

  // The client's own stream helper reassembles the chunks; the result must
  // be the reply the same request gets without streaming.
  async stream_with_tool_call() {
    const whole = await client.chat.completions.create(ask(TOOL_QUESTION));
    const stream = client.beta.chat.completions.stream(ask(TOOL_QUESTION, { stream_options: { include_usage: true } }));
    let chunks = 0;
    const fragments = [];
    stream.on('chunk', () => chunks++);
    stream.on('tool_calls.function.arguments.delta', (e) => fragments.push(e.arguments_delta));
    const done = await stream.finalChatCompletion();
    only_call(done, 'search_code');
    assert.deepEqual(comparable(done), comparable(whole));
    // The arguments came in pieces, not in one chunk at the end.
    assert.ok(fragments.length > 3, `argument fragments: ${JSON.stringify(fragments)}`);
    assert.equal(fragments.join(''), whole.choices[0].message.tool_calls[0].function.arguments);
    console.log(`${chunks} chunks, ${fragments.length} argument fragments:`, done.choices[0].message.tool_calls[0].function);
  },

  async stream_without_tool_call() {
    const whole = await client.chat.completions.create(ask(DIRECT_QUESTION));
    const stream = client.beta.chat.completions.stream(ask(DIRECT_QUESTION, { stream_options: { include_usage: true } }));
    const deltas = [];
    stream.on('content', (delta) => deltas.push(delta));
    const done = await stream.finalChatCompletion();
    assert.deepEqual(comparable(done), comparable(whole));
    assert.ok(deltas.length > 5, `content deltas: ${JSON.stringify(deltas)}`);
    assert.equal(deltas.join(''), whole.choices[0].message.content);
    assert.deepEqual(done.usage, whole.usage);

    // The plain async iterator of create({stream: true}) too, without usage.
    let text = '';
    let last = null;
    for await (const chunk of await client.chat.completions.create(ask(DIRECT_QUESTION, { stream: true }))) {
      assert.equal(chunk.object, 'chat.completion.chunk');
      assert.equal(chunk.usage, undefined);
      text += chunk.choices[0]?.delta?.content ?? '';
      last = chunk;
    }
    assert.equal(text, whole.choices[0].message.content);
    assert.equal(last.choices[0].finish_reason, 'stop');
    console.log(`${deltas.length} content deltas:`, JSON.stringify(text));
  },

  // runTools: the client calls our tool, sends its result back as a tool
  // message, and asks again.
  async run_tools() {
    const queries = [];
    const runner = client.beta.chat.completions.runTools(
      {
        ...ask(TOOL_QUESTION),
        tools: [
          {
            type: 'function',
            function: {
              ...TOOLS[0].function,
              parse: JSON.parse,
              function: async ({ query }) => {
                queries.push(query);
                return 'src/svcs/_core.py: class ServicePing(Protocol)';
              },
            },
          },
        ],
      },
      { maxChatCompletions: 2 },
    );
    const roles = [];
    runner.on('message', (m) => roles.push(m.role));
    await runner.done().catch(() => {}); // the tiny model may keep calling tools past the limit
    assert.deepEqual(queries.slice(0, 1), [TOOL_QUESTION]);
    assert.deepEqual(roles.slice(0, 3), ['assistant', 'tool', 'assistant']);
    console.log('roles:', roles, 'queries:', queries);
  },

  async tool_choice_none() {
    const r = await client.chat.completions.create(ask(TOOL_QUESTION, { tool_choice: 'none' }));
    assert.equal(r.choices[0].message.tool_calls, undefined);
    assert.notEqual(r.choices[0].finish_reason, 'tool_calls');
    const auto = await client.chat.completions.create(ask(TOOL_QUESTION, { tool_choice: 'auto' }));
    only_call(auto, 'search_code');
    // The tools were left out of the prompt.
    assert.ok(r.usage.prompt_tokens < auto.usage.prompt_tokens - 50, `${r.usage.prompt_tokens} vs ${auto.usage.prompt_tokens}`);
    console.log('none:', JSON.stringify(r.choices[0].message.content).slice(0, 80));
  },

  async tool_choice_required() {
    const auto = await client.chat.completions.create(ask(DIRECT_QUESTION));
    assert.equal(auto.choices[0].message.tool_calls, undefined);
    const r = await client.chat.completions.create(ask(DIRECT_QUESTION, { tool_choice: 'required' }));
    const { call } = only_call(r);
    assert.ok(['search_code', 'read_file'].includes(call.function.name), call.function.name);
    console.log('required:', call.function);
  },

  async tool_choice_named() {
    const choice = { type: 'function', function: { name: 'read_file' } };
    const r = await client.chat.completions.create(ask(TOOL_QUESTION, { tool_choice: choice }));
    const { call } = only_call(r, 'read_file');
    const streamed = await client.beta.chat.completions.stream(ask(TOOL_QUESTION, { tool_choice: choice })).finalChatCompletion();
    assert.deepEqual(comparable(streamed).tool_calls, comparable(r).tool_calls);
    console.log('named:', call.function);
  },

  async unauthorized() {
    const wrong = new OpenAI({ baseURL, apiKey: apiKey + 'x', maxRetries: 0 });
    for (const attempt of [() => wrong.models.list(), () => wrong.chat.completions.create(ask(DIRECT_QUESTION))]) {
      await assert.rejects(attempt, (e) => {
        assert.ok(e instanceof OpenAI.AuthenticationError, `${e}`);
        assert.equal(e.status, 401);
        assert.equal(e.code, 'invalid_api_key');
        return true;
      });
    }
    // No Authorization header at all.
    const res = await fetch(`${baseURL}/models`);
    assert.equal(res.status, 401);
    assert.equal((await res.json()).error.code, 'invalid_api_key');
    console.log('401 with a wrong key and with none');
  },

  async refused_parameters() {
    for (const [extra, param] of [
      [{ n: 2 }, 'n'],
      [{ logprobs: true }, 'logprobs'],
      [{ response_format: { type: 'json_object' } }, 'response_format'],
    ]) {
      await assert.rejects(client.chat.completions.create(ask(DIRECT_QUESTION, extra)), (e) => {
        assert.ok(e instanceof OpenAI.BadRequestError, `${e}`);
        assert.equal(e.param, param);
        assert.equal(e.code, 'unsupported_parameter');
        return true;
      });
    }
    await assert.rejects(client.chat.completions.create(ask(DIRECT_QUESTION, { top_k: 3 })), (e) => {
      assert.ok(e instanceof OpenAI.BadRequestError, `${e}`);
      assert.match(e.message, /unrecognized request field 'top_k'/);
      return true;
    });
    console.log('n, logprobs, response_format and unknown fields refused with 400');
  },

  // Eight requests at once, streamed and not, each compared with the same
  // request sent alone: the queue keeps their KV states apart.
  async concurrency() {
    const requests = [
      ask(TOOL_QUESTION),
      ask(DIRECT_QUESTION),
      ask('Show me a basic injection example', { stream: true }),
      ask('What is the difference between Registry and Container?', { max_tokens: 12 }),
      ask('When should I use svcs vs a DI framework?', { stream: true }),
      ask(DIRECT_QUESTION, { tool_choice: 'required' }),
      ask(TOOL_QUESTION, { tool_choice: 'none', max_tokens: 20, stream: true }),
      ask(DIRECT_QUESTION, { temperature: 1.0, seed: 7 }),
    ];
    const send = async (r) => {
      if (!r.stream) return comparable(await client.chat.completions.create(r));
      const { stream, ...rest } = r;
      return comparable(await client.beta.chat.completions.stream(rest).finalChatCompletion());
    };
    const alone = [];
    for (const r of requests) alone.push(await send(r));
    const together = await Promise.all(requests.map(send));
    for (let i = 0; i < requests.length; i++) assert.deepEqual(together[i], alone[i], `request ${i}`);
    console.log(`${requests.length} concurrent replies equal the replies sent alone`);
  },
};

if (!checks[check]) {
  console.error(`unknown check '${check}'; one of: ${Object.keys(checks).join(', ')}`);
  process.exit(2);
}
try {
  await checks[check]();
} catch (e) {
  console.error(`check ${check} failed:`, e);
  process.exit(1);
}
