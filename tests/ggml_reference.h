#pragma once
// llama.cpp's reference block quantizers, loaded at run time with dlopen
// from the prebuilt libggml-base.so that the pinned node-llama-cpp package
// brings (tests/llama). Only the C signatures are declared here: a row of k
// floats (k a multiple of the block size) to/from packed blocks.
#include <dlfcn.h>

#include <cstdint>
#include <filesystem>
#include <string>

namespace mb::test {

using GgmlQuantizeRow = void (*)(const float* x, void* y, int64_t k);
using GgmlDequantizeRow = void (*)(const void* x, float* y, int64_t k);

// Where the tests/llama install puts the library.
inline std::filesystem::path ggml_base_library(const std::filesystem::path& source_dir) {
  return source_dir / "tests/llama/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libggml-base.so";
}

// The library's handle, or nullptr with `error` saying what to install.
inline void* open_ggml_base(const std::filesystem::path& source_dir, std::string* error) {
  const std::filesystem::path lib = ggml_base_library(source_dir);
  void* handle = dlopen(lib.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    *error = "cannot load " + lib.string() + " (" + dlerror() +
             "); install llama.cpp's prebuilt library with scripts/install-deps.sh --test";
  }
  return handle;
}

template <typename Fn>
Fn ggml_symbol(void* handle, const char* name) {
  return reinterpret_cast<Fn>(dlsym(handle, name));
}

}  // namespace mb::test
