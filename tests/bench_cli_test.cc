// `modelbuild bench` over all configurations of examples/tiny: the
// seeds' finding, asserted from the numbers the command measures.
#include <nlohmann/json.hpp>

#include "tests/e2e_support.h"

namespace mb::e2e {
namespace {

TEST(BenchCli, TheTinyExampleReproducesTheSeedsFinding) {
  TempDir tmp("bench-cli");
  copy_tiny_example(tmp.path());

  auto run = modelbuild(
      tmp.path(), {"bench", "--json-out", "out/bench.json", "--svg", "out/bench.svg", "--markdown", "out/bench.md"});
  // A failing gate (fused_4bit) is reported in the table, not a bench error.
  ASSERT_EQ(run.code, 0) << run.output;
  EXPECT_NE(run.out.find("| config | bits | size | peak mem |"), std::string::npos) << run.out;
  EXPECT_EQ(read_file(tmp.path() / "out" / "bench.md"), run.out);
  const std::string svg = read_file(tmp.path() / "out" / "bench.svg");
  EXPECT_NE(svg.find("<svg"), std::string::npos);
  EXPECT_NE(svg.find("data-config=\"fused_4bit\""), std::string::npos);

  auto j = nlohmann::json::parse(read_file(tmp.path() / "out" / "bench.json"), nullptr, false);
  ASSERT_FALSE(j.is_discarded());
  std::map<std::string, nlohmann::json> c;
  for (const auto& row : j["configs"]) c[row["config"].get<std::string>()] = row;
  // The six MLX configurations, the four exports (gguf_f16, gguf_q8_0,
  // gguf_q4_k_m, hf_f16), and a row per candidate fused_auto's search tried.
  std::vector<std::string> tried;
  for (const auto& row : j["configs"])
    if (row["config"].get<std::string>().rfind("fused_auto[", 0) == 0) tried.push_back(row["config"]);
  ASSERT_EQ(c.size(), 10u + tried.size()) << j.dump(2);
  ASSERT_FALSE(tried.empty());
  for (size_t k = 0; k < tried.size(); ++k) {
    const bool last = k + 1 == tried.size();  // the search stops at the first that passes
    EXPECT_EQ(tried[k].find(" chosen") != std::string::npos, last) << tried[k];
    EXPECT_EQ(c[tried[k]]["gate"], last ? "pass" : "fail") << tried[k];
    EXPECT_EQ(c[tried[k]]["accuracy"].get<double>() == 1.0, last) << tried[k];
    if (k > 0) {
      EXPECT_GT(c[tried[k]]["size_bytes"], c[tried[k - 1]]["size_bytes"]) << tried[k];
    }
  }
  EXPECT_NE(svg.find("data-config=\"" + tried.back() + "\""), std::string::npos);
  for (const auto& [name, row] : c) {
    EXPECT_GT(row["size_bytes"].get<uint64_t>(), 0u) << name;
    EXPECT_GT(row["peak_memory_bytes"].get<uint64_t>(), 0u) << name;
    EXPECT_GT(row["tokens_per_second"].get<double>(), 0) << name;
    EXPECT_EQ(row["total"], 5) << name;
  }
  auto acc = [&](const std::string& n) { return c[n]["accuracy"].get<double>(); };
  EXPECT_LT(acc("base"), 1.0);
  EXPECT_EQ(acc("adapter"), 1.0);
  EXPECT_EQ(acc("fused_f16"), 1.0);
  EXPECT_EQ(acc("fused_8bit"), 1.0);
  EXPECT_EQ(acc("fused_6bit"), 1.0);
  EXPECT_LT(acc("fused_4bit"), 1.0);
  EXPECT_EQ(c["fused_4bit"]["gate"], "fail");
  EXPECT_EQ(c["fused_8bit"]["gate"], "pass");
  EXPECT_EQ(c["base"]["gate"], "none");
  // The GGUF rows are measured on the GGUF bytes; their retention is the
  // export's own (Q4_K_M keeps far less of the delta than Q8_0).
  EXPECT_EQ(acc("gguf_q8_0"), 1.0);
  EXPECT_EQ(c["gguf_q8_0"]["gate"], "pass");
  ASSERT_TRUE(c["gguf_q8_0"]["retention"].is_number()) << c["gguf_q8_0"].dump();
  ASSERT_TRUE(c["gguf_q4_k_m"]["retention"].is_number()) << c["gguf_q4_k_m"].dump();
  EXPECT_GT(c["gguf_q8_0"]["retention"].get<double>(), c["gguf_q4_k_m"]["retention"].get<double>());

  // Retention explains it: near zero for in-place 4-bit, and the lowest.
  ASSERT_TRUE(c["fused_4bit"]["retention"].is_number()) << c["fused_4bit"].dump();
  const double r4 = c["fused_4bit"]["retention"].get<double>();
  EXPECT_LT(std::abs(r4), 0.25);
  for (const char* n : {"fused_8bit", "fused_6bit"}) {
    ASSERT_TRUE(c[n]["retention"].is_number()) << n;
    EXPECT_GT(c[n]["retention"].get<double>(), r4) << n;
  }
  EXPECT_GT(c["fused_8bit"]["retention"].get<double>(), c["fused_6bit"]["retention"].get<double>());

  // Fidelity, measured by the bench against base + adapter at run time (the
  // example sets no fidelity threshold, so no step measured it): the adapter
  // itself is exactly the reference, and KL grows as the bits shrink.
  auto kl = [&](const std::string& n) { return c[n]["mean_kl"].get<double>(); };
  for (const char* n : {"adapter", "fused_f16", "fused_8bit", "fused_6bit", "fused_4bit"}) {
    ASSERT_TRUE(c[n]["mean_kl"].is_number()) << c[n].dump();
    EXPECT_EQ(c[n]["fidelity_source"], "bench") << n;
  }
  EXPECT_TRUE(c["base"]["mean_kl"].is_null());  // no adapters: nothing to compare with
  EXPECT_EQ(kl("adapter"), 0.0);
  EXPECT_LT(kl("fused_f16"), 1e-6);
  EXPECT_LT(kl("fused_8bit"), kl("fused_6bit"));
  EXPECT_LT(kl("fused_6bit"), kl("fused_4bit"));
  EXPECT_NE(run.out.find("| mean KL | top-1 |"), std::string::npos) << run.out;

  // Sizes: quantizing shrinks the fused model; the runtime adapter adds to the base.
  auto size = [&](const std::string& n) { return c[n]["size_bytes"].get<uint64_t>(); };
  EXPECT_LT(size("fused_8bit"), size("fused_f16"));
  EXPECT_LT(size("fused_6bit"), size("fused_8bit"));
  EXPECT_LT(size("fused_4bit"), size("fused_6bit"));
  EXPECT_GT(size("adapter"), size("base"));
}

TEST(BenchCli, AnUnknownConfigIsBadInput) {
  TempDir tmp("bench-cli");
  copy_tiny_example(tmp.path());
  auto run = modelbuild(tmp.path(), {"bench", "fused_9bit"});
  EXPECT_EQ(run.code, 2) << run.output;
  EXPECT_NE(run.output.find("fused_9bit"), std::string::npos);
}

}  // namespace
}  // namespace mb::e2e
