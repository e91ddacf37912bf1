#include "tensors/diff_source.h"

#include <gtest/gtest.h>

#include "base/temp_dir.h"
#include "base/test_paths.h"
#include "tensors/fuse_test_support.h"
#include "tensors/gguf_export.h"
#include "tensors/inspect.h"

namespace mb {
namespace {

fs::path tiny_model() { return test::source_dir() / "examples/tiny/models/base-4bit"; }

// A float16 llama whose layer-0 q/k projections have biases, so both the
// permuted rows of a weight and the permuted elements of a bias are read.
fs::path write_llama(FileSystem& fs, const fs::path& dir) {
  fuse_test::ModelSpec spec = fuse_test::tiny_llama(DType::kF16);
  spec.config["torch_dtype"] = "float16";
  spec.tensors.push_back({"model.layers.0.self_attn.q_proj.bias", DType::kF16, {64}, fuse_test::make_values(64, 5, 1)});
  spec.tensors.push_back({"model.layers.0.self_attn.k_proj.bias", DType::kF16, {32}, fuse_test::make_values(32, 6, 1)});
  const fs::path model = dir / "llama";
  fuse_test::write_model(fs, model, spec);
  for (const char* f : {"tokenizer.json", "tokenizer_config.json"})
    fs::copy_file(tiny_model() / f, model / f, fs::copy_options::overwrite_existing);
  return model;
}

TEST(DiffSource, GgufTensorsReadBackUnderHuggingFaceNamesAndRowOrder) {
  TempDir dir;
  auto fs = make_real_file_system();
  const fs::path model = write_llama(*fs, dir.path());
  const fs::path gguf = dir.path() / "out" / "model.gguf";
  ASSERT_TRUE(fs->create_dirs(gguf.parent_path()).ok());
  Result<GgufExportStats> stats = export_gguf(model, gguf, {});
  ASSERT_TRUE(stats) << stats.error().to_string();

  Result<DiffSource> g = DiffSource::open(*fs, gguf);
  ASSERT_TRUE(g) << g.error().to_string();
  Result<DiffSource> m = DiffSource::open(*fs, model);
  ASSERT_TRUE(m) << m.error().to_string();
  EXPECT_EQ(g->names(), m->names());
  Result<DiffTensor> q = g->tensor("model.layers.0.self_attn.q_proj.weight");
  ASSERT_TRUE(q) << q.error().to_string();
  EXPECT_EQ(q->stored(), "F16");
  EXPECT_EQ(q->shape(), (std::vector<int64_t>{64, 64}));

  // The F16 export holds the float16 model's values exactly: with llama's
  // q/k rows (and bias elements) put back, nothing differs.
  Result<ModelDiff> d = diff_models(*fs, model, gguf, 2);
  ASSERT_TRUE(d) << d.error().to_string();
  EXPECT_TRUE(d->same()) << render_diff(*d, false);
  EXPECT_GT(d->identical, 10);
  // A GGUF target's directory (one .gguf, no config.json) reads the same.
  Result<ModelDiff> by_dir = diff_models(*fs, gguf.parent_path(), model);
  ASSERT_TRUE(by_dir) << by_dir.error().to_string();
  EXPECT_TRUE(by_dir->same());
}

TEST(DiffSource, Q8ExportDiffersOnlyWhereItQuantized) {
  TempDir dir;
  auto fs = make_real_file_system();
  const fs::path model = write_llama(*fs, dir.path());
  GgufExportOptions options;
  options.file_type = GgufFileType::kQ8_0;
  ASSERT_TRUE(export_gguf(model, dir.path() / "q8.gguf", options));
  Result<ModelDiff> d = diff_models(*fs, model, dir.path() / "q8.gguf");
  ASSERT_TRUE(d) << d.error().to_string();
  EXPECT_FALSE(d->same());
  for (const TensorDiff& t : d->tensors) {
    EXPECT_EQ(t.stored_a, "F16") << t.name;
    if (t.stored_b == "q8_0") {
      EXPECT_EQ(t.kind, DiffKind::kDifferent) << t.name;
      EXPECT_GT(t.rel, 0) << t.name;
      EXPECT_LT(t.rel, 0.01) << t.name;
    } else {
      EXPECT_EQ(t.kind, DiffKind::kIdentical) << t.name << " stored as " << t.stored_b;
    }
  }
}

TEST(DiffSource, BadGgufInputIsNamed) {
  TempDir dir;
  auto fs = make_real_file_system();
  const fs::path model = write_llama(*fs, dir.path());
  ASSERT_TRUE(fs->create_dirs(dir.path() / "two").ok());
  ASSERT_TRUE(export_gguf(model, dir.path() / "two" / "a.gguf", {}));
  fs::copy_file(dir.path() / "two" / "a.gguf", dir.path() / "two" / "b.gguf");
  Result<DiffSource> two = DiffSource::open(*fs, dir.path() / "two");
  ASSERT_FALSE(two);
  EXPECT_NE(two.error().to_string().find("holds 2 .gguf files"), std::string::npos) << two.error().to_string();
  Result<DiffSource> missing = DiffSource::open(*fs, dir.path() / "missing.gguf");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().to_string().find("missing.gguf"), std::string::npos);
  fs::resize_file(dir.path() / "two" / "b.gguf", 3000);
  Result<ModelDiff> cut = diff_models(*fs, model, dir.path() / "two" / "b.gguf");
  ASSERT_FALSE(cut);
  EXPECT_EQ(cut.error().code, Errc::kCorrupt);
  EXPECT_NE(cut.error().where.find("b.gguf"), std::string::npos);
}

}  // namespace
}  // namespace mb
