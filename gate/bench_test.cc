// The bench's measurements: disk size with hard links, and suite runs in a
// forked child process (real processes, a command runner as the "model").
#include "gate/bench.h"

#include <gtest/gtest.h>

#include <fstream>

#include "base/temp_dir.h"

namespace mb::gate {
namespace {

void write(const fs::path& p, size_t bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << std::string(bytes, 'x');
}

TEST(DiskSize, SumsFilesAndCountsHardLinksOnce) {
  TempDir tmp;
  write(tmp.path() / "m" / "a.safetensors", 1000);
  write(tmp.path() / "m" / "sub" / "b.json", 24);
  fs::create_hard_link(tmp.path() / "m" / "a.safetensors", tmp.path() / "m" / "a-link.safetensors");
  auto size = disk_size({tmp.path() / "m"});
  ASSERT_TRUE(size.ok()) << size.error().to_string();
  EXPECT_EQ(*size, 1024u);
  // A second root sharing the same inode adds nothing; a new file adds its size.
  fs::create_hard_link(tmp.path() / "m" / "a.safetensors", tmp.path() / "other");
  write(tmp.path() / "adapter" / "w.safetensors", 76);
  auto both = disk_size({tmp.path() / "m", tmp.path() / "other", tmp.path() / "adapter"});
  ASSERT_TRUE(both.ok());
  EXPECT_EQ(*both, 1100u);
}

TEST(DiskSize, AMissingArtifactIsAnErrorNamingIt) {
  auto size = disk_size({"/nonexistent/model"});
  ASSERT_FALSE(size.ok());
  EXPECT_EQ(size.error().code, Errc::kNotFound);
  EXPECT_EQ(size.error().where, "/nonexistent/model");
}

Suite two_case_suite() {
  auto s = parse_suite(R"(
name: t
system: sys
tools: [{type: function, function: {name: search_code, parameters: {}}}]
cases:
  - {prompt: "Find the views", expect: tool}
  - {prompt: "What is DI?", expect: direct}
)",
                       "suite.yaml");
  EXPECT_TRUE(s.ok());
  return *s;
}

TEST(MeasureInChild, RunsTheSuiteInAChildAndReportsItsMemory) {
  TempDir tmp;
  fs::path script = tmp.path() / "model.sh";
  // Calls a tool only for prompts starting with "Find": one right, one wrong
  // would need a different model, so both cases pass here.
  std::ofstream(script) << "#!/bin/sh\nif grep -q '^Find' \"$1\"; then\n"
                           "  echo '<tool_call>{\"name\": \"search_code\", \"arguments\": {}}</tool_call>'\n"
                           "else echo 'A direct answer.'; fi\n";
  fs::permissions(script, fs::perms::owner_all);
  auto fs = make_real_file_system();
  nlohmann::json config = {{"type", "command"}, {"command", script.string() + " {prompt_file}"}};
  auto m = measure_in_child(*fs, two_case_suite(), RunnerTarget{tmp.path(), {}, 1}, config, 2);
  ASSERT_TRUE(m.ok()) << m.error().to_string();
  ASSERT_EQ(m->report.cases.size(), 2u);
  EXPECT_EQ(m->report.accuracy(), 1.0);
  EXPECT_TRUE(m->report.cases[0].called_tool);
  EXPECT_EQ(m->report.cases[1].first_line(), "A direct answer.");
  EXPECT_GT(m->peak_memory_bytes, 0u);
}

TEST(MeasureInChild, ARunnerErrorInTheChildComesBackAsTheSameError) {
  auto fs = make_real_file_system();
  nlohmann::json config = {{"type", "command"}, {"command", "/bin/sh -c 'exit 3'"}};
  auto m = measure_in_child(*fs, two_case_suite(), RunnerTarget{}, config, 1);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().message.find("exited with status 3"), std::string::npos) << m.error().to_string();
}

TEST(MeasureInChild, ABadRunnerConfigIsInvalidInput) {
  auto fs = make_real_file_system();
  auto m = measure_in_child(*fs, two_case_suite(), RunnerTarget{}, {{"type", "telepathy"}}, 1);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code, Errc::kInvalidInput);
}

TEST(BenchZygote, MemoryDoesNotIncludeWhatTheParentLoadedAfterStart) {
  TempDir tmp;
  fs::path suite = tmp.path() / "suite.yaml";
  std::ofstream(suite) << "name: t\nsystem: sys\ncases:\n  - {prompt: \"What is DI?\", expect: direct}\n";
  nlohmann::json config = {{"type", "command"}, {"command", "/bin/echo A direct answer."}};
  auto zygote = BenchZygote::start();
  ASSERT_TRUE(zygote.ok()) << zygote.error().to_string();
  auto before = (*zygote)->measure(suite, RunnerTarget{tmp.path(), {}, 1}, config, 1);
  ASSERT_TRUE(before.ok()) << before.error().to_string();
  EXPECT_EQ(before->report.accuracy(), 1.0);
  EXPECT_EQ(before->report.cases[0].first_line(), "A direct answer.");

  // The parent now holds 256 MiB; a child forked from here would count it,
  // one forked from the zygote does not.
  std::vector<char> ballast(size_t{256} << 20, 1);
  auto after = (*zygote)->measure(suite, RunnerTarget{tmp.path(), {}, 1}, config, 1);
  ASSERT_TRUE(after.ok()) << after.error().to_string();
  EXPECT_LT(after->peak_memory_bytes, before->peak_memory_bytes + (size_t{64} << 20));
  EXPECT_EQ(ballast[12345], 1);

  // Errors come back as errors, and the zygote keeps serving.
  auto missing = (*zygote)->measure(tmp.path() / "nope.yaml", RunnerTarget{tmp.path(), {}, 1}, config, 1);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().to_string().find("nope.yaml"), std::string::npos) << missing.error().to_string();
  EXPECT_TRUE((*zygote)->measure(suite, RunnerTarget{tmp.path(), {}, 1}, config, 1).ok());
}

}  // namespace
}  // namespace mb::gate
