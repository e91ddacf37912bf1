#pragma once
// Where tests find things outside their own binary: the source tree (for
// examples/ and tests/golden/), the modelbuild binary under test, and node.
//
// The configured values live in one generated file (test_paths.cc in the
// build directory, linked into every test binary), so that no other source
// depends on where the checkout is: every other file compiles the same in
// every checkout, and ccache shares it. The environment variables
// MODELBUILD_SOURCE_DIR and MODELBUILD_BIN override the configured paths.
#include <filesystem>
#include <string>

namespace mb::test {

std::filesystem::path source_dir();
std::filesystem::path modelbuild_binary();
// node found when the build was configured; empty when there was none.
std::string node_executable();

}  // namespace mb::test
