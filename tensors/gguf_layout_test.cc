#include "tensors/gguf_layout.h"

#include <gtest/gtest.h>

namespace mb {
namespace {

std::string hex(const std::string& s) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

// The minimal file of docs/formats/gguf.md's layout: two keys, one F32
// tensor of four values; the header ends padded at byte 160.
TEST(GgufLayout, MinimalHeaderBytes) {
  GgufLayout layout;
  layout.add_string("general.architecture", "qwen2");
  layout.add_u32("general.alignment", 32);
  layout.add_tensor({"output_norm.weight", {4}, 0, 16});
  std::string h = layout.header();
  ASSERT_EQ(h.size(), 160u);
  EXPECT_EQ(hex(h),
            "4747554603000000010000000000000002000000000000001400000000000000"
            "67656e6572616c2e617263686974656374757265080000000500000000000000"
            "7177656e32110000000000000067656e6572616c2e616c69676e6d656e740400"
            "00002000000012000000000000006f75747075745f6e6f726d2e776569676874"
            "0100000004000000000000000000000000000000000000000000000000000000");
}

TEST(GgufLayout, OffsetsAreRunningPaddedSums) {
  GgufLayout layout;
  layout.add_tensor({"a", {4}, 0, 16});
  layout.add_tensor({"b", {40}, 0, 160});
  layout.add_tensor({"c", {1}, 0, 4});
  EXPECT_EQ(layout.offset(0), 0u);
  EXPECT_EQ(layout.offset(1), 32u);
  EXPECT_EQ(layout.offset(2), 192u);
}

}  // namespace
}  // namespace mb
