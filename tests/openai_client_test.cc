// `modelbuild serve` driven by the official OpenAI Node client (the `openai`
// npm package, pinned in tests/openai/package.json; scripts/install-deps.sh
// --test installs it). Each test runs one check of tests/openai/check.mjs
// against one server started for the whole suite with --api-key, so the
// client authenticates as a real application would. A missing node or
// package is a failure with a message, never a skip.
#include <gtest/gtest.h>

#include "base/subprocess.h"
#include "tests/serve_support.h"

namespace mb::e2e {
namespace {

constexpr const char* kKey = "test-key-5b1f";

fs::path client_dir() { return source_dir() / "tests" / "openai"; }

class OpenAIClient : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server = new Serve({"--api-key", kKey}); }
  static void TearDownTestSuite() {
    delete server;
    server = nullptr;
  }

  void SetUp() override {
    ASSERT_TRUE(!test::node_executable().empty() && fs::exists(test::node_executable()))
        << "node was not found when this build was configured; run scripts/install-deps.sh --test";
    ASSERT_TRUE(fs::exists(client_dir() / "node_modules" / "openai" / "package.json"))
        << "the openai npm package is not installed in " << client_dir() << "; run scripts/install-deps.sh --test";
    ASSERT_GT(server->port(), 0) << "the server did not start";
  }

  // node tests/openai/check.mjs CHECK URL KEY MODEL; passes when it exits 0.
  void check(const std::string& name) {
    SubprocessOptions opts;
    opts.cwd = client_dir();
    opts.timeout = std::chrono::seconds(180);
    auto r = run_subprocess({test::node_executable(), (client_dir() / "check.mjs").string(), name,
                             server->origin() + "/v1", kKey, "base-4bit"},
                            opts);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_FALSE(r->timed_out) << r->output;
    EXPECT_EQ(r->exit_code, 0) << r->output << "\nserver log:\n" << server->stderr_text();
    std::printf("%s", r->stdout_text.c_str());
  }

  static Serve* server;
};
Serve* OpenAIClient::server = nullptr;

TEST_F(OpenAIClient, ListsTheModel) { check("models"); }
TEST_F(OpenAIClient, ChatWithToolsGetsToolCallsOrText) { check("chat_with_tools"); }
TEST_F(OpenAIClient, StreamedToolCallReassemblesToTheWholeReply) { check("stream_with_tool_call"); }
TEST_F(OpenAIClient, StreamedTextReassemblesToTheWholeReply) { check("stream_without_tool_call"); }
TEST_F(OpenAIClient, RunToolsCallsTheToolAndSendsItsResultBack) { check("run_tools"); }
TEST_F(OpenAIClient, ToolChoiceNone) { check("tool_choice_none"); }
TEST_F(OpenAIClient, ToolChoiceRequired) { check("tool_choice_required"); }
TEST_F(OpenAIClient, ToolChoiceNamed) { check("tool_choice_named"); }
TEST_F(OpenAIClient, AWrongOrMissingKeyIs401) { check("unauthorized"); }
TEST_F(OpenAIClient, UnsupportedParametersAre400) { check("refused_parameters"); }
TEST_F(OpenAIClient, EightConcurrentRequestsGetTheRepliesTheyGetAlone) { check("concurrency"); }

}  // namespace
}  // namespace mb::e2e
