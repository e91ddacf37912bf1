// llama_speed: llama.cpp's prefill and decode speed on one GGUF file, through
// node-llama-cpp's prebuilt CPU library (tests/llama/node_modules), for the
// side-by-side benchmark bench/engine_vs_llama.sh. Prints one JSON line:
//   {"prefill_tok_s": ..., "decode_tok_s": ..., "prompt": N, "decode": M, "threads": T}
//
//   node bench/llama_speed.mjs MODEL.gguf [--threads 2] [--prompt 128] [--decode 32] [--repeat 3]
//
// The weights are random, so the text is meaningless: the prompt is a fixed
// run of token ids and decode is greedy. Prefill is one batch of `prompt`
// tokens; decode times `decode` single-token steps (the prompt's last token
// and then each generated one), after a fresh prefill each repeat. The best
// of `repeat` runs is printed, as inference_bench does.
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, "..", "tests", "llama", "package.json"));
const { getLlama } = await import(require.resolve("node-llama-cpp"));

const args = process.argv.slice(2);
const model_path = args.find((a, i) => !a.startsWith("--") && (i === 0 || !args[i - 1].startsWith("--")));
const option = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const threads = option("threads", 2), prompt_len = option("prompt", 128), decode_len = option("decode", 32);
const repeat = option("repeat", 3);
if (!model_path) {
  console.error("usage: node bench/llama_speed.mjs MODEL.gguf [--threads 2] [--prompt 128] [--decode 32]");
  process.exit(2);
}

const llama = await getLlama({ gpu: false, build: "never", skipDownload: true, logLevel: "error" });
const model = await llama.loadModel({ modelPath: model_path, gpuLayers: 0 });
const context = await model.createContext({
  contextSize: prompt_len + decode_len + 8,
  batchSize: prompt_len,
  threads,
  flashAttention: false,
});
const prompt = Array.from({ length: prompt_len }, (_, i) => 1000 + ((i * 7919) % 20000));

let best_prefill = 0, best_decode = 0;
for (let r = 0; r < repeat; ++r) {
  const sequence = context.getSequence();
  let t = process.hrtime.bigint();
  await sequence.evaluateWithoutGeneratingNewTokens(prompt.slice(0, prompt_len - 1));
  const prefill_s = Number(process.hrtime.bigint() - t) / 1e9;
  t = process.hrtime.bigint();
  let n = 0;
  for await (const token of sequence.evaluate(prompt.slice(prompt_len - 1), { temperature: 0 })) {
    void token;
    if (++n >= decode_len) break;
  }
  const decode_s = Number(process.hrtime.bigint() - t) / 1e9;
  best_prefill = Math.max(best_prefill, (prompt_len - 1) / prefill_s);
  best_decode = Math.max(best_decode, decode_len / decode_s);
  sequence.dispose();
}
console.log(JSON.stringify({
  prefill_tok_s: best_prefill, decode_tok_s: best_decode, prompt: prompt_len, decode: decode_len, threads,
}));
await context.dispose();
await model.dispose();
