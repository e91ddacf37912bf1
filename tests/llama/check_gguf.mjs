// Runs modelbuild's GGUF files through real llama.cpp: the prebuilt CPU
// library of the pinned node-llama-cpp package (no build, no download).
// tests/llama_compat_test.cc drives it; see README.md here.
//
//   node check_gguf.mjs load FILE.gguf
//       loads the model as llama.cpp does for inference and prints a JSON
//       summary (architecture, file type, tensor count, vocabulary size,
//       special token ids)
//   node check_gguf.mjs tokenize FILE.gguf STRINGS.json OUT.json
//       STRINGS.json is a JSON array of strings; OUT.json gets one array of
//       token ids per string (special tokens written in the text are parsed
//       as such; no BOS/EOS is added)
//   node check_gguf.mjs greedy FILE.gguf PROMPTS.json N OUT.json
//       greedy continuation (argmax, no penalties) of each prompt (a JSON
//       array of token id arrays), each from an empty context: OUT.json gets
//       the N generated ids of each
//   node check_gguf.mjs probs FILE.gguf TOKENS OUT.f32
//       next-token probabilities (llama.cpp's softmax of the logits) after
//       every prompt position, float32 [positions, vocab], row-major
//
// Errors go to stderr with exit status 1.
import fs from 'node:fs';
import { getLlama, LlamaLogLevel } from 'node-llama-cpp';

const kContextSize = 1024;

async function loadModel(file) {
  if (!fs.existsSync(file)) throw new Error(`no such file: ${file}`);
  const llama = await getLlama({
    gpu: false,
    build: 'never',
    skipDownload: true,
    logLevel: LlamaLogLevel.error,
    progressLogs: false,
  });
  return llama.loadModel({ modelPath: file, gpuLayers: 0 });
}

// One thread: on a busy machine ggml's spinning worker threads cost far
// more than they save on these small models (about 600 ms instead of 2 ms a
// token with 2 threads on 2 loaded cores), and one thread is also the most
// deterministic summation order llama.cpp has.
async function sequenceOf(model) {
  const context = await model.createContext({
    contextSize: kContextSize,
    batchSize: kContextSize,
    sequences: 1,
    threads: 1,
  });
  return context.getSequence();
}

function parseTokens(text) {
  const ids = text.split(',').map((s) => Number.parseInt(s, 10));
  if (ids.length === 0 || ids.some((t) => !Number.isInteger(t) || t < 0)) throw new Error(`bad token list: ${text}`);
  return ids;
}

async function load(file) {
  const model = await loadModel(file);
  const info = model.fileInfo;
  const md = info.metadata;
  const summary = {
    architecture: md.general?.architecture,
    file_type: md.general?.file_type,
    tensor_count: Number(info.tensorCount),
    n_vocab: md.tokenizer?.ggml?.tokens?.length,
    bos: model.tokens.bos,
    eos: model.tokens.eos,
    train_context_size: model.trainContextSize,
    size_bytes: model.size,
  };
  process.stdout.write(JSON.stringify(summary) + '\n');
}

async function tokenize(file, stringsFile, outFile) {
  const model = await loadModel(file);
  const strings = JSON.parse(fs.readFileSync(stringsFile, 'utf8'));
  const out = strings.map((s) => Array.from(model.tokenize(s, true)));
  fs.writeFileSync(outFile, JSON.stringify(out));
}

async function greedy(file, promptsFile, countText, outFile) {
  const model = await loadModel(file);
  const sequence = await sequenceOf(model);
  const greedyNext = { generateNext: { token: true, options: { temperature: 0 } } };
  const out = [];
  for (const prompt of JSON.parse(fs.readFileSync(promptsFile, 'utf8'))) {
    await sequence.clearHistory();
    let input = prompt;
    const generated = [];
    for (let i = 0; i < Number.parseInt(countText, 10); ++i) {
      const items = input.map((t, j) => (j === input.length - 1 ? [t, greedyNext] : t));
      const result = await sequence.controlledEvaluate(items);
      const next = result[items.length - 1]?.next?.token;
      if (next === undefined || next === null) throw new Error(`no token generated at step ${i}`);
      generated.push(next);
      input = [next];
    }
    out.push(generated);
  }
  fs.writeFileSync(outFile, JSON.stringify(out));
}

async function probs(file, tokensText, outFile) {
  const model = await loadModel(file);
  const sequence = await sequenceOf(model);
  const tokens = parseTokens(tokensText);
  const vocab = model.fileInfo.metadata.tokenizer.ggml.tokens.length;
  const result = await sequence.controlledEvaluate(tokens.map((t) => [t, { generateNext: { probabilities: true } }]));
  const out = new Float32Array(tokens.length * vocab);
  tokens.forEach((_, i) => {
    const p = result[i]?.next?.probabilities;
    if (!p) throw new Error(`no probabilities after position ${i}`);
    for (const [token, value] of p) out[i * vocab + token] = value;
  });
  fs.writeFileSync(outFile, Buffer.from(out.buffer));
}

const commands = { load, tokenize, greedy, probs };
const [command, ...args] = process.argv.slice(2);
try {
  if (!commands[command]) throw new Error(`usage: check_gguf.mjs ${Object.keys(commands).join('|')} ...`);
  await commands[command](...args);
  process.exit(0);
} catch (e) {
  process.stderr.write(`check_gguf.mjs ${command ?? ''}: ${e.stack ?? e}\n`);
  process.exit(1);
}
