#pragma once
// Test helpers shared by the inference tests: where the golden data lives
// (tests/golden, made by tests/reference/make_golden.py), and loading a
// golden model with runtime adapters through the engine's own loaders.
#include <cstdlib>
#include <filesystem>
#include <vector>

#include "base/test_paths.h"
#include "inference/lora.h"
#include "inference/model.h"

namespace mb::inference {

inline std::filesystem::path golden_root() { return mb::test::source_dir() / "tests" / "golden"; }

inline Result<Model> load_test_model(const std::filesystem::path& dir,
                                     const std::vector<std::filesystem::path>& adapters) {
  auto fs = make_real_file_system();
  MB_ASSIGN(Model m, load_model(*fs, dir));
  for (const auto& a : adapters) {
    MB_ASSIGN(Adapter adapter, load_adapter(*fs, a));
    MB_TRY(attach_adapter(m, std::make_shared<const Adapter>(std::move(adapter))));
  }
  return m;
}

}  // namespace mb::inference
