// Releases end to end through the real binary: gated release, verify,
// signatures, provenance (dirty trees), git-pinned sources, the lock file,
// --check and byte-identical rebuilds. The model-free tests gate a plain
// directory with a `command` runner (/bin/cat echoes each prompt, so a case
// whose prompt holds a <tool_call> "calls a tool"); the realistic ones use
// examples/tiny, whose whole build and gate take well under a second.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <map>
#include <nlohmann/json.hpp>

#include "release/release_test_support.h"
#include "tests/e2e_support.h"

namespace mb::e2e {
namespace {

// The release module's git helpers (the git CLI makes real repositories).
using testing_release::git;
using testing_release::git_init;
const auto& commit_all = testing_release::git_commit_all;

const char* kSuite = R"(name: fake
system: "sys"
cases:
  - {prompt: "a plain answer", expect: direct}
  - {prompt: "<tool_call>{\"name\": \"search\", \"arguments\": {}}</tool_call>", expect: tool}
)";

const char* kRecipe = R"(sources:
  model: model
  suite: suite.yaml
  failing_suite: failing.yaml
targets:
  good:
    base: model
    gate: {suite: suite, runner: {type: command, command: ["/bin/cat", "{prompt_file}"]}}
  bad:
    base: model
    gate: {suite: failing_suite, runner: {type: command, command: ["/bin/cat", "{prompt_file}"]}}
  ungated:
    base: model
  upper:
    command: "tr a-z A-Z < {src}/weights.bin > {out}/up.bin"
    inputs: {src: model}
    outputs: [up.bin]
)";

class ReleaseCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    write_file(project() / "model/config.json", "{\"model_type\": \"fake\"}\n");
    write_file(project() / "model/weights.bin", "weights v1\n");
    write_file(project() / "suite.yaml", kSuite);
    // The plain prompt is answered directly, but this suite wants a tool.
    write_file(project() / "failing.yaml", "name: failing\ncases:\n  - {prompt: \"a plain answer\", expect: tool}\n");
    write_file(project() / "modelbuild.yaml", kRecipe);
    write_file(project() / ".gitignore", "build/\n.modelbuild/\n");
    git_init(project());
    m_head = commit_all(project(), "initial");
  }
  fs::path project() const { return m_tmp.path() / "project"; }
  fs::path out() const { return m_tmp.path() / "release"; }
  nlohmann::json manifest() const { return nlohmann::json::parse(read_file(out() / "manifest.json")); }
  TempDir m_tmp{"release-cli-test"};
  std::string m_head;
};

TEST_F(ReleaseCliTest, SignedReleaseVerifiesAndRecordsProvenance) {
  ASSERT_EQ(modelbuild(m_tmp.path(), {"keygen", "--out", "keys/release"}).code, 0);
  CliRun r = modelbuild(project(), {"release", "good", "--to", out().string(), "--sign", "../keys/release.key"});
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.out.find("released good"), std::string::npos) << r.out;
  EXPECT_EQ(read_file(out() / "good/weights.bin"), "weights v1\n");
  nlohmann::json m = manifest();
  EXPECT_EQ(m["format_version"], 1);
  EXPECT_EQ(m["target"], "good");
  EXPECT_EQ(m["tool"]["name"], "modelbuild");
  EXPECT_EQ(m["provenance"]["commit"], m_head);
  EXPECT_EQ(m["provenance"]["dirty"], false);
  EXPECT_EQ(m["gate"]["passed"], true);
  EXPECT_EQ(m["gate"]["accuracy"], 1.0);
  EXPECT_EQ(m["gate"]["report"]["cases"].size(), 2u);
  EXPECT_TRUE(m["inputs"].contains("model") && m["inputs"].contains("suite"));
  EXPECT_EQ(m["inputs"]["model"]["size"], 34);
  EXPECT_TRUE(m["files"].contains("good/weights.bin"));
  EXPECT_EQ(m["steps"][0]["kind"], "gate");
  EXPECT_EQ(m["recipe"]["digest"].get<std::string>().rfind("sha256:", 0), 0u);

  CliRun v = modelbuild(m_tmp.path(), {"verify", out().string(), "--pubkey", "keys/release.pub"});
  EXPECT_EQ(v.code, 0) << v.output;
  EXPECT_NE(v.out.find("signature valid"), std::string::npos) << v.out;

  // The artifact was copied, not linked: the user's source is a separate file.
  struct stat a {
  }, b{};
  ASSERT_EQ(::stat((out() / "good/weights.bin").c_str(), &a), 0);
  ASSERT_EQ(::stat((project() / "model/weights.bin").c_str(), &b), 0);
  EXPECT_NE(a.st_ino, b.st_ino);

  // One changed byte in the artifact.
  write_file(out() / "good/weights.bin", "weights v2\n");
  v = modelbuild(m_tmp.path(), {"verify", out().string(), "--pubkey", "keys/release.pub"});
  EXPECT_EQ(v.code, 1);
  EXPECT_NE(v.output.find("good/weights.bin: content changed"), std::string::npos) << v.output;
  write_file(out() / "good/weights.bin", "weights v1\n");
  // A re-signed manifest from another key.
  ASSERT_EQ(modelbuild(m_tmp.path(), {"keygen", "--out", "keys/other"}).code, 0);
  v = modelbuild(m_tmp.path(), {"verify", out().string(), "--pubkey", "keys/other.pub"});
  EXPECT_EQ(v.code, 1);
  EXPECT_NE(v.output.find("manifest.sig"), std::string::npos) << v.output;
  // An extra file.
  write_file(out() / "good/backdoor.py", "x");
  v = modelbuild(m_tmp.path(), {"verify", out().string()});
  EXPECT_EQ(v.code, 1);
  EXPECT_NE(v.output.find("good/backdoor.py: not in the manifest"), std::string::npos) << v.output;
}

TEST_F(ReleaseCliTest, AGateFailureBlocksRelease) {
  CliRun r = modelbuild(project(), {"release", "bad", "--to", out().string()});
  EXPECT_EQ(r.code, 3) << r.output;
  EXPECT_NE(r.output.find("not released"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("accuracy"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(out()));
  // The lock file records the verdict.
  auto lock = nlohmann::json::parse(read_file(project() / "modelbuild.lock"));
  EXPECT_EQ(lock["targets"]["bad"]["gate"]["passed"], false);
  EXPECT_EQ(lock["targets"]["bad"]["gate"]["accuracy"], 0.0);
  EXPECT_EQ(lock["targets"]["bad"]["state"], "failed");

  r = modelbuild(project(), {"release", "ungated", "--to", out().string()});
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("has no gate"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(out()));
}

TEST_F(ReleaseCliTest, ADirtyRepositoryIsRefused) {
  write_file(project() / "model/weights.bin", "weights, uncommitted\n");
  CliRun r = modelbuild(project(), {"release", "good", "--to", out().string()});
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("uncommitted changes"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("model/weights.bin"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(out()));
  r = modelbuild(project(), {"release", "good", "--to", out().string(), "--allow-dirty"});
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(manifest()["provenance"]["dirty"], true);
  EXPECT_EQ(read_file(out() / "good/weights.bin"), "weights, uncommitted\n");
}

TEST_F(ReleaseCliTest, BadInputsExitTwoAndNameTheProblem) {
  CliRun r = modelbuild(project(), {"release", "good", "--to", out().string(), "--sign", "nothere.key"});
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("nothere.key"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(project() / "build")) << "nothing may be built before the key is checked";

  r = modelbuild(m_tmp.path(), {"verify", "project"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("manifest.json"), std::string::npos) << r.output;
  write_file(out() / "manifest.json", "{\"format_version\": 1, \"files\": ");
  r = modelbuild(m_tmp.path(), {"verify", out().string()});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("corrupt"), std::string::npos) << r.output;
  write_file(out() / "manifest.json", "{\"format_version\": 2, \"files\": {}}");
  r = modelbuild(m_tmp.path(), {"verify", out().string()});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("newer"), std::string::npos) << r.output;
  // A release never overwrites a non-empty directory.
  r = modelbuild(project(), {"release", "good", "--to", out().string()});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("not empty"), std::string::npos) << r.output;
}

TEST_F(ReleaseCliTest, LockFileIsStableAcrossNoOpBuildsAndChangesOnARealChange) {
  ASSERT_EQ(modelbuild(project(), {"good", "upper"}).code, 0);
  const std::string first = read_file(project() / "modelbuild.lock");
  struct stat st1 {};
  ASSERT_EQ(::stat((project() / "modelbuild.lock").c_str(), &st1), 0);
  CliRun again = modelbuild(project(), {"good", "upper"});
  ASSERT_EQ(again.code, 0);
  EXPECT_EQ(again.output.find("updated modelbuild.lock"), std::string::npos) << again.output;
  struct stat st2 {};
  ASSERT_EQ(::stat((project() / "modelbuild.lock").c_str(), &st2), 0);
  EXPECT_EQ(read_file(project() / "modelbuild.lock"), first);
  EXPECT_EQ(st1.st_ino, st2.st_ino);  // not rewritten at all

  auto lock = nlohmann::json::parse(first);
  const std::string old_digest = lock["targets"]["upper"]["inputs"]["model"]["digest"];
  EXPECT_TRUE(lock["targets"]["upper"]["outputs"].contains("up.bin"));
  EXPECT_TRUE(lock["targets"]["upper"]["gate"].is_null());
  EXPECT_EQ(lock["targets"]["good"]["gate"]["passed"], true);

  write_file(project() / "model/weights.bin", "weights v2\n");
  CliRun changed = modelbuild(project(), {"good", "upper"});
  ASSERT_EQ(changed.code, 0) << changed.output;
  EXPECT_NE(changed.output.find("updated modelbuild.lock"), std::string::npos) << changed.output;
  auto after = nlohmann::json::parse(read_file(project() / "modelbuild.lock"));
  EXPECT_NE(after["targets"]["upper"]["inputs"]["model"]["digest"], old_digest);
  EXPECT_NE(after["targets"]["upper"]["outputs"]["up.bin"], lock["targets"]["upper"]["outputs"]["up.bin"]);
}

TEST_F(ReleaseCliTest, GitPinnedSourceIsReadAtAnOlderCommit) {
  write_file(project() / "adapters/a/w.txt", "adapter v1\n");
  const std::string v1 = commit_all(project(), "adapter v1");
  write_file(project() / "adapters/a/w.txt", "adapter v2\n");
  commit_all(project(), "adapter v2");
  write_file(project() / "modelbuild.yaml", fmt::format(R"(sources:
  pinned:
    git: {{repo: ., rev: "{}", path: adapters/a}}
targets:
  copy:
    command: ["/bin/cp", "{{src}}/w.txt", "{{out}}/w.txt"]
    inputs: {{src: pinned}}
    outputs: [w.txt]
)",
                                                        v1));
  CliRun r = modelbuild(project(), {"copy"});
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(read_file(project() / "build/copy/w.txt"), "adapter v1\n");
  auto lock = nlohmann::json::parse(read_file(project() / "modelbuild.lock"));
  EXPECT_EQ(lock["targets"]["copy"]["inputs"]["pinned"]["git"]["commit"], v1);

  // Another commit with the same adapter bytes: nothing rebuilds.
  git(project(), {"checkout", "-q", "-b", "same", v1});
  write_file(project() / "unrelated.txt", "x\n");
  const std::string same = commit_all(project(), "unrelated change");
  std::string recipe = read_file(project() / "modelbuild.yaml");
  recipe.replace(recipe.find(v1), v1.size(), same);
  write_file(project() / "modelbuild.yaml", recipe);
  r = modelbuild(project(), {"copy"});
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(r.output.find("started"), std::string::npos) << r.output;

  // Bad pins are input errors naming the source, and nothing runs.
  recipe.replace(recipe.find(same), same.size(), "no-such-tag");
  write_file(project() / "modelbuild.yaml", recipe);
  r = modelbuild(project(), {"copy"});
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("unknown revision 'no-such-tag'"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("source 'pinned'"), std::string::npos) << r.output;
  for (const char* command : {"status", "explain"}) {  // the same for commands that only look
    r = modelbuild(project(), {command});
    EXPECT_EQ(r.code, 2) << command << ": " << r.output;
    EXPECT_NE(r.output.find("unknown revision 'no-such-tag'"), std::string::npos) << r.output;
  }
  recipe.replace(recipe.find("no-such-tag"), 11, "main");
  recipe.replace(recipe.find("adapters/a"), 10, "adapters/zz");
  write_file(project() / "modelbuild.yaml", recipe);
  r = modelbuild(project(), {"copy"});
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("path 'adapters/zz' is not in commit"), std::string::npos) << r.output;
}

TEST_F(ReleaseCliTest, CheckCatchesANonDeterministicCommand) {
  write_file(project() / "modelbuild.yaml", R"(targets:
  noisy:
    command: "head -c 16 /dev/urandom > {out}/noise.bin"
    outputs: [noise.bin]
)");
  CliRun r = modelbuild(project(), {"--check", "noisy"});
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("noise.bin differs"), std::string::npos) << r.output;
}

// The real model pipeline (fuse, quantize to 8 bits, retention, native gate)
// on examples/tiny.
class TinyReleaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const fs::path tiny = source_dir() / "examples/tiny";
    write_file(dir() / "modelbuild.yaml", fmt::format(R"(sources:
  base_4bit: {0}/models/base-4bit
  tools_lora: {0}/adapters/tools-lora
  suite: {0}/suite.yaml
targets:
  fused_8bit:
    base: base_4bit
    adapters: [tools_lora]
    fusion: dequantize
    dtype: float16
    bits: 8
    gate: {{suite: suite, min_accuracy: 1.0}}
)",
                                                      tiny.string()));
  }
  fs::path dir() const { return m_tmp.path(); }
  TempDir m_tmp{"tiny-release-test"};
};

TEST_F(TinyReleaseTest, DoubleBuildGivesIdenticalBytesAndChecks) {
  ASSERT_EQ(modelbuild(dir(), {"fused_8bit"}).code, 0);
  const std::string first = read_file(dir() / "build/fused_8bit/model.safetensors");
  ASSERT_GT(first.size(), 100000u);
  fs::remove_all(dir() / "build");
  fs::remove_all(dir() / ".modelbuild");
  CliRun second = modelbuild(dir(), {"fused_8bit"});
  ASSERT_EQ(second.code, 0) << second.output;
  EXPECT_NE(second.output.find("[fuse fused_8bit] started"), std::string::npos) << "must really rebuild";
  EXPECT_TRUE(read_file(dir() / "build/fused_8bit/model.safetensors") == first);
  CliRun check = modelbuild(dir(), {"--check", "fused_8bit"});
  EXPECT_EQ(check.code, 0) << check.output;
  EXPECT_NE(check.output.find("reproduced byte for byte"), std::string::npos) << check.output;
}

TEST_F(TinyReleaseTest, LockDoesNotDependOnWhichTargetsWereRequested) {
  // fused_f16 and fused_8bit share their fuse step; the plan names a shared
  // step after whichever target it met first, which must not leak into the lock.
  std::string recipe = read_file(dir() / "modelbuild.yaml");
  recipe += R"(  fused_f16:
    base: base_4bit
    adapters: [tools_lora]
    fusion: dequantize
    dtype: float16
    gate: {suite: suite, min_accuracy: 1.0}
)";
  write_file(dir() / "modelbuild.yaml", recipe);
  ASSERT_EQ(modelbuild(dir(), {}).code, 0);
  const std::string all = read_file(dir() / "modelbuild.lock");
  fs::remove_all(dir() / ".modelbuild");
  CliRun one = modelbuild(dir(), {"fused_f16"});  // alone, its fuse step is "fuse fused_f16"
  ASSERT_EQ(one.code, 0) << one.output;
  EXPECT_EQ(read_file(dir() / "modelbuild.lock"), all);
  EXPECT_EQ(one.output.find("updated modelbuild.lock"), std::string::npos) << one.output;
}

TEST_F(TinyReleaseTest, ReleasesTheGatedModelOutsideGit) {
  CliRun r = modelbuild(dir(), {"release", "fused_8bit", "--to", "out"});
  ASSERT_EQ(r.code, 0) << r.output;
  nlohmann::json m = nlohmann::json::parse(read_file(dir() / "out/manifest.json"));
  EXPECT_EQ(m["provenance"], nlohmann::json({{"repository", false}}));
  EXPECT_TRUE(m["files"].contains("fused_8bit/model.safetensors"));
  // The one-pass fuse step reports the delta retention of its 8 bits.
  ASSERT_TRUE(m["metrics"].contains("fuse fused_8bit")) << m["metrics"].dump();
  EXPECT_GT(m["metrics"]["fuse fused_8bit"]["retention"]["retained"].get<double>(), 0.8);
  EXPECT_EQ(m["steps"].size(), 2u);  // fuse (to 8 bits), gate
  EXPECT_EQ(modelbuild(dir(), {"verify", "out"}).code, 0);
  // The release survives the cache: verify still passes without it.
  fs::remove_all(dir() / ".modelbuild");
  fs::remove_all(dir() / "build");
  EXPECT_EQ(modelbuild(dir(), {"verify", "out"}).code, 0);
}

// The committed examples/tiny/modelbuild.lock is a golden file: a build of
// every target from an empty cache, on any x86-64 machine, must reproduce it.
// A step whose key is unchanged but whose output differs means a rule changed
// its output bytes without bumping its algorithm version, so old caches
// would keep serving the old bytes under the same key.
TEST(ExampleLock, AFreshBuildReproducesTheCommittedLock) {
  TempDir tmp{"example-lock"};
  const fs::path tiny = source_dir() / "examples/tiny";
  for (const char* item : {"models", "adapters", "tokenizer", "suite.yaml", "modelbuild.yaml"})
    fs::copy(tiny / item, tmp.path() / item, fs::copy_options::recursive);
  CliRun r = modelbuild(tmp.path(), {});
  ASSERT_EQ(r.code, 3) << "fused_4bit's gate should fail, the rest pass:\n" << r.output;
  const auto got = nlohmann::json::parse(read_file(tmp.path() / "modelbuild.lock"));
  const auto want = nlohmann::json::parse(read_file(tiny / "modelbuild.lock"));
  std::map<std::string, std::string> want_outputs;  // step key -> output digest
  for (const auto& [name, t] : want["targets"].items())
    for (const auto& step : t["steps"])
      if (step["output"].is_string()) want_outputs[step["key"].get<std::string>()] = step["output"];
  for (const auto& [name, t] : got["targets"].items())
    for (const auto& step : t["steps"]) {
      auto it = want_outputs.find(step["key"].get<std::string>());
      if (it != want_outputs.end() && step["output"].is_string()) {
        EXPECT_EQ(step["output"].get<std::string>(), it->second)
            << name << " " << step["kind"] << ": same key, different output — bump the rule's algorithm_version";
      }
    }
  EXPECT_TRUE(got == want) << "examples/tiny/modelbuild.lock is out of date: rebuild the example from an empty "
                              "cache and commit the lock it writes. The diff:\n"
                           << nlohmann::json::diff(want, got).dump(2);
}

}  // namespace
}  // namespace mb::e2e
