// modelbuild's GGUF files in real llama.cpp (tests/llama/README.md): the
// prebuilt CPU library of the pinned node-llama-cpp package loads them,
// tokenizes as modelbuild does and continues prompts as the native engine
// does; llama.cpp's own quantizer (llama_model_quantize, through our C
// harness tests/llama/quantize.c) makes the reference files our quantizers
// must equal tensor by tensor. Missing node or library fails, never skips.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "tests/llama_support.h"

namespace mb {
namespace {

using nlohmann::json;
using namespace mb::llama_test;

class LlamaCompat : public ::testing::Test {
 protected:
  void SetUp() override { require_peer(); }
};

// The harness was compiled against the header extracted from the package's
// own llama.cpp source; the library must agree with it about
// llama_model_quantize_params, or every reference file would be made with
// garbage parameters. The check can fail: it compares each default field
// through the header's offsets.
TEST_F(LlamaCompat, HarnessHeaderMatchesTheLibrary) {
  PeerRun r = run({quantize_ref_binary().string(), "abi"}, 60);
  ASSERT_EQ(r.code, 0) << r.output;
  const json abi = json::parse(r.out);
  EXPECT_EQ(abi["abi_ok"], true) << r.out;
  EXPECT_EQ(abi["llama_version"], "0.4.0-dev") << "the pinned node-llama-cpp 3.21.1 ships llama.cpp v0.4.0";
  // Unknown types are refused before anything is written.
  r = run({quantize_ref_binary().string(), "quantize", "/nonexistent.gguf", "/tmp/x.gguf", "Q3_K_S"}, 60);
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("unknown type Q3_K_S"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace mb
