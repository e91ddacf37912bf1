// libFuzzer target: modelbuild.yaml, validated with the built-in rules.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "base/fs_test_support.h"
#include "graph/recipe.h"
#include "graph/registry.h"
#include "rules/builtin.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const mb::Registry* registry = [] {
    auto* r = new mb::Registry();
    mb::register_builtin_rules(*r);
    return r;
  }();
  mb::MemoryFileSystem fs;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)mb::parse_recipe_text(fs, text, "/p/modelbuild.yaml", *registry);
  return 0;
}
