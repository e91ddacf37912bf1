#include "cache/action_key.h"

#include <gtest/gtest.h>

namespace mb {
namespace {

ActionKeySpec base_spec() {
  ActionKeySpec spec;
  spec.kind = "quantize";
  spec.algorithm_version = 2;
  spec.params = nlohmann::json::parse(R"({"bits": 4, "group_size": 64, "mode": "affine",
                                          "scales": [0.5, 1.0], "nested": {"b": true, "a": null}})");
  spec.inputs = {{"base", digest_string("base")}, {"adapter.0", digest_string("adapter")}};
  return spec;
}

std::string le64(uint64_t v) {
  std::string out;
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>(v >> (8 * i) & 0xff));
  return out;
}

// An accidental change to the encoding must fail here: a silent change
// would make every cached artifact unreachable (or worse, reachable by the
// wrong spec). Changing it on purpose means bumping the format version and
// docs/cache-format.md, then updating this value.
TEST(ActionKey, GoldenKeyIsStable) {
  EXPECT_EQ(action_key(base_spec()).hex(), "66b96cd7ddc9709dd26d1d0df0499c7b8bccdcb7c269f5c2c3db83e87a486bd9");
}

// The byte layout exactly as docs/cache-format.md spells it.
TEST(ActionKey, EncodingMatchesTheDocumentedBytes) {
  ActionKeySpec spec;
  spec.kind = "fuse";
  spec.algorithm_version = 1;
  spec.params = {{"bits", 8}};
  spec.inputs = {{"base", Digest{}}};
  std::string want = std::string("MBAK") + std::string("\x01\x00\x00\x00", 4) +  //
                     "s" + le64(6) + "sha256" +                                  //
                     "s" + le64(4) + "fuse" +                                    //
                     "i" + le64(1) +                                             //
                     "o" + le64(1) + le64(4) + "bits" + "i" + le64(8) +          //
                     "I" + le64(1) + "s" + le64(4) + "base" + "h" + std::string(32, '\0');
  EXPECT_EQ(canonical_encoding(spec), want);
}

TEST(ActionKey, IntegralFloatEqualsInteger) {
  ActionKeySpec a = base_spec(), b = base_spec();
  a.params["bits"] = 8;
  b.params["bits"] = 8.0;
  EXPECT_EQ(action_key(a), action_key(b));
  b.params["bits"] = 8u;
  EXPECT_EQ(action_key(a), action_key(b));
  b.params["bits"] = 8.5;
  EXPECT_NE(action_key(a), action_key(b));
  EXPECT_EQ(canonical_json(-0.0), canonical_json(0));
  EXPECT_EQ(normalize_json(nlohmann::json::parse("[1.0, {\"x\": 2.0}]")), nlohmann::json::parse("[1, {\"x\": 2}]"));
}

TEST(ActionKey, ObjectKeyOrderIsIrrelevant) {
  ActionKeySpec a = base_spec(), b = base_spec();
  a.params = nlohmann::json::parse(R"({"x": 1, "y": {"p": 1, "q": 2}})");
  b.params = nlohmann::json::object();
  b.params["y"]["q"] = 2;
  b.params["y"]["p"] = 1;
  b.params["x"] = 1;
  EXPECT_EQ(action_key(a), action_key(b));
}

TEST(ActionKey, StringDiffersFromNumberAndOtherTypes) {
  EXPECT_NE(canonical_json("8"), canonical_json(8));
  EXPECT_NE(canonical_json(true), canonical_json(1));
  EXPECT_NE(canonical_json(nullptr), canonical_json(false));
  EXPECT_NE(canonical_json(0.5), canonical_json("0.5"));
  ActionKeySpec a = base_spec(), b = base_spec();
  a.params["bits"] = 8;
  b.params["bits"] = "8";
  EXPECT_NE(action_key(a), action_key(b));
}

TEST(ActionKey, LengthPrefixesPreventAmbiguity) {
  using nlohmann::json;
  EXPECT_NE(canonical_json(json::array({"ab"})), canonical_json(json::array({"a", "b"})));
  EXPECT_NE(canonical_json(json{{"a", "bc"}}), canonical_json(json{{"ab", "c"}}));
  EXPECT_NE(canonical_json(json::array({json::array({1}), 2})), canonical_json(json::array({1, json::array({2})})));
  EXPECT_NE(canonical_json(json::object()), canonical_json(json::array()));
  ActionKeySpec a = base_spec(), b = base_spec();
  a.kind = "fuse";
  a.inputs[0].name = "xbase";
  b.kind = "fusex";
  b.inputs[0].name = "base";
  EXPECT_NE(action_key(a), action_key(b));
}

TEST(ActionKey, InputOrderMatters) {
  ActionKeySpec a = base_spec(), b = base_spec();
  std::swap(b.inputs[0], b.inputs[1]);
  EXPECT_NE(action_key(a), action_key(b));
}

TEST(ActionKey, EveryFieldTakesPart) {
  Digest k = action_key(base_spec());
  ActionKeySpec s = base_spec();
  s.kind = "fuse";
  EXPECT_NE(action_key(s), k);
  s = base_spec();
  s.algorithm_version = 3;
  EXPECT_NE(action_key(s), k);
  s = base_spec();
  s.inputs[1].digest = digest_string("other adapter");
  EXPECT_NE(action_key(s), k);
  s = base_spec();
  s.inputs[1].name = "adapter.1";
  EXPECT_NE(action_key(s), k);
  s = base_spec();
  s.inputs.pop_back();
  EXPECT_NE(action_key(s), k);
  s = base_spec();
  s.params["nested"]["a"] = 0;
  EXPECT_NE(action_key(s), k);
}

TEST(ActionKey, HugeNumbersKeepTheirValue) {
  uint64_t big = 18446744073709551615ull;
  EXPECT_NE(canonical_json(big), canonical_json(-1));
  EXPECT_EQ(canonical_json(9223372036854775808.0), canonical_json(9223372036854775808ull));
  EXPECT_NE(canonical_json(1e300), canonical_json(1e299));
}

}  // namespace
}  // namespace mb
