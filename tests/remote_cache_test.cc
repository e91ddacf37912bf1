// The remote cache against a real server: two project copies with two local
// caches stand in for two machines sharing one nginx (WebDAV PUT), and a
// fake server stands in for one that fails. Whatever the remote does, the
// build is correct: a broken remote is a local build plus one warning.
#include <gtest/gtest.h>

#include <map>

#include "base/temp_dir.h"
#include "tests/remote_cache_support.h"

namespace mb::e2e {
namespace {

int count(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// Every file of build/fused_8bit, concatenated in name order.
std::string artifact_bytes(const fs::path& project) {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(project / "build" / "fused_8bit"))
    if (e.path().filename().string().rfind(".modelbuild", 0) != 0) files.push_back(e.path());  // not the link record
  std::sort(files.begin(), files.end());
  std::string all;
  for (const auto& f : files) all += f.filename().string() + "\n" + read_file(f);
  return all;
}

class RemoteCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(first());
    fs::create_directories(second());
    copy_tiny_example(first());
    copy_tiny_example(second());
  }
  fs::path first() const { return m_tmp.path() / "machine1"; }
  fs::path second() const { return m_tmp.path() / "machine2"; }
  CliRun build(const fs::path& project, const std::string& url, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"fused_8bit", "--json", "--remote-cache", url};
    args.insert(args.end(), extra.begin(), extra.end());
    return modelbuild(project, args);
  }
  // The first machine builds and uploads.
  void warm(Nginx& server) {
    CliRun r = build(first(), server.url());
    ASSERT_EQ(r.code, 0) << r.output;
    ASSERT_EQ(count(r.out, "\"step_started\""), 2) << r.out;  // fuse and gate ran
    ASSERT_EQ(server.objects("ac").size(), 2u);
    ASSERT_FALSE(server.objects("cas").empty());
  }
  // The second machine built locally despite the remote, with one warning.
  void expect_local_build_with_one_warning(const CliRun& r) {
    EXPECT_EQ(r.code, 0) << r.output;
    EXPECT_GE(count(r.out, "\"step_started\""), 1) << r.out;
    EXPECT_EQ(count(r.out, "remote cache http"), 1) << r.out;
    EXPECT_TRUE(artifact_bytes(second()) == artifact_bytes(first())) << "outputs differ";
  }

  TempDir m_tmp{"remote-cache-test"};
};

TEST_F(RemoteCacheTest, SecondMachineDownloadsInsteadOfBuilding) {
  Nginx server(m_tmp.path() / "nginx");
  warm(server);
  CliRun r = build(second(), server.url());
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(count(r.out, "\"step_started\""), 0) << r.out;  // zero fuse and gate executions
  EXPECT_EQ(count(r.out, "\"remote\":\"hit\""), 0);         // debug events are hidden without -v
  EXPECT_TRUE(artifact_bytes(second()) == artifact_bytes(first())) << "outputs differ";
  // A local hit never contacts the remote: stop it, and the no-op build is quiet.
  server.stop();
  CliRun again = build(second(), server.url(), {"--remote-required"});
  EXPECT_EQ(again.code, 0) << again.output;
  EXPECT_EQ(count(again.out, "remote cache"), 0) << again.out;
}

TEST_F(RemoteCacheTest, NothingIsUploadedTwice) {
  Nginx server(m_tmp.path() / "nginx");
  warm(server);
  const size_t puts_before = count(read_file(m_tmp.path() / "nginx" / "access.log"), "\"PUT ");
  fs::remove_all(first() / ".modelbuild");
  fs::remove_all(first() / "build");
  CliRun r = modelbuild(first(), {"fused_8bit", "--json"});  // rebuild locally without the remote
  ASSERT_EQ(r.code, 0) << r.output;
  fs::remove_all(first() / ".modelbuild");
  r = modelbuild(first(), {"fused_8bit", "--json", "--remote-cache", server.url()});
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(count(read_file(m_tmp.path() / "nginx" / "access.log"), "\"PUT "), puts_before);
}

TEST_F(RemoteCacheTest, CorruptObjectOnTheServerIsAMiss) {
  Nginx server(m_tmp.path() / "nginx");
  warm(server);
  for (const fs::path& blob : server.objects("cas")) {
    std::string bytes = read_file(blob);
    ASSERT_FALSE(bytes.empty());
    bytes[bytes.size() / 2] ^= 1;
    write_file(blob, bytes);
  }
  CliRun r = build(second(), server.url());
  expect_local_build_with_one_warning(r);
  EXPECT_NE(r.out.find("does not match its digest"), std::string::npos) << r.out;
  // The second machine's good copies replaced the corrupt ones: a third
  // machine downloads instead of building.
  const fs::path third = m_tmp.path() / "machine3";
  fs::create_directories(third);
  copy_tiny_example(third);
  CliRun t = build(third, server.url());
  EXPECT_EQ(t.code, 0) << t.output;
  EXPECT_EQ(count(t.out, "\"step_started\""), 0) << t.out;
}

TEST_F(RemoteCacheTest, TruncatedObjectIsAMiss) {
  Nginx server(m_tmp.path() / "nginx");
  warm(server);
  for (const fs::path& blob : server.objects("cas")) fs::resize_file(blob, fs::file_size(blob) / 2);
  expect_local_build_with_one_warning(build(second(), server.url()));
}

TEST_F(RemoteCacheTest, ServerDownIsALocalBuildUnlessRequired) {
  Nginx server(m_tmp.path() / "nginx");
  warm(server);
  server.stop();
  CliRun required = build(second(), server.url(), {"--remote-required"});
  EXPECT_NE(required.code, 0) << required.output;
  EXPECT_NE(required.output.find("--remote-required"), std::string::npos) << required.output;
  expect_local_build_with_one_warning(build(second(), server.url()));
}

TEST_F(RemoteCacheTest, ServerAnswering500IsALocalBuild) {
  Nginx reference(m_tmp.path() / "nginx");
  warm(reference);
  FakeServer failing(FakeMode::kError500);
  expect_local_build_with_one_warning(build(second(), failing.url()));
  EXPECT_GE(failing.requests(), 3);  // retried with backoff before giving up
}

TEST_F(RemoteCacheTest, SlowServerTimesOut) {
  Nginx reference(m_tmp.path() / "nginx");
  warm(reference);
  FakeServer silent(FakeMode::kSilent);
  expect_local_build_with_one_warning(build(second(), silent.url(), {"--remote-timeout", "1"}));
}

// The server dies in the middle of an answer: nothing partial is published
// locally (no entry beyond the two the local build wrote, no staging left).
TEST_F(RemoteCacheTest, ServerDyingMidAnswerPublishesNothing) {
  Nginx reference(m_tmp.path() / "nginx");
  warm(reference);
  FakeServer dying(FakeMode::kCutOff);
  expect_local_build_with_one_warning(build(second(), dying.url()));
  size_t entries = 0;
  for (const auto& e : fs::recursive_directory_iterator(second() / ".modelbuild" / "ac"))
    entries += e.is_regular_file() ? 1 : 0;
  EXPECT_EQ(entries, 2u);
  EXPECT_TRUE(fs::is_empty(second() / ".modelbuild" / "tmp"));
}

TEST_F(RemoteCacheTest, ReadOnlyModeUploadsNothing) {
  Nginx server(m_tmp.path() / "nginx");
  CliRun r = build(first(), server.url(), {"--no-remote-upload"});
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(server.objects("ac").empty());
  EXPECT_TRUE(server.objects("cas").empty());
}

TEST_F(RemoteCacheTest, NoSecretInOutput) {
  Nginx server(m_tmp.path() / "nginx");
  FakeServer failing(FakeMode::kError500);
  std::string url = failing.url();
  url.insert(std::string("http://").size(), "alice:hunter2@");
  SubprocessOptions opts;
  opts.cwd = first();
  opts.env["MODELBUILD_CACHE"] = "";
  opts.env["MODELBUILD_REMOTE_TOKEN"] = "s3cr3t-token";
  auto r = run_subprocess({binary().string(), "fused_8bit", "--json", "-v", "--remote-cache", url}, opts);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 0) << r->output;
  EXPECT_EQ(r->output.find("hunter2"), std::string::npos) << r->output;
  EXPECT_EQ(r->output.find("s3cr3t"), std::string::npos) << r->output;
  EXPECT_EQ(read_file(first() / "modelbuild.lock").find("hunter2"), std::string::npos);
}

// A build with extra environment variables (NETRC) and no user cache.
CliRun build_with_env(const fs::path& project, std::vector<std::string> args,
                      const std::map<std::string, std::string>& env) {
  args.insert(args.begin(), binary().string());
  SubprocessOptions opts;
  opts.cwd = project;
  opts.timeout = std::chrono::seconds(300);
  opts.env = env;
  opts.env["MODELBUILD_CACHE"] = "";
  auto r = run_subprocess(args, opts);
  EXPECT_TRUE(r.ok());
  if (!r.ok()) return {};
  return CliRun{r->exit_code, r->output, r->stdout_text};
}

// HTTPS with a private CA and basic auth from the .netrc that $NETRC names:
// the second machine downloads, and the password is never printed.
TEST_F(RemoteCacheTest, HttpsWithBasicAuthFromNetrc) {
  Nginx server(m_tmp.path() / "nginx", {.tls = true, .user = "alice", .password = "pw-0451"});
  write_file(m_tmp.path() / "netrc", "machine 127.0.0.1 login alice password pw-0451\n");
  const std::map<std::string, std::string> env = {{"NETRC", (m_tmp.path() / "netrc").string()}};
  const std::vector<std::string> args = {
      "fused_8bit", "--json", "-v", "--remote-cache", server.url(), "--remote-ca-bundle", server.cert().string()};
  CliRun up = build_with_env(first(), args, env);
  ASSERT_EQ(up.code, 0) << up.output;
  EXPECT_EQ(count(up.out, "remote cache http"), 0) << up.output;
  EXPECT_EQ(server.objects("ac").size(), 2u);
  CliRun down = build_with_env(second(), args, env);
  ASSERT_EQ(down.code, 0) << down.output;
  EXPECT_EQ(count(down.out, "\"step_started\""), 0) << down.out;
  EXPECT_TRUE(artifact_bytes(second()) == artifact_bytes(first())) << "outputs differ";
  EXPECT_EQ((up.output + down.output).find("pw-0451"), std::string::npos);
}

// Without the CA bundle the certificate is not trusted, and with a wrong
// password nginx answers 401: either way a local build, one warning, and
// nothing reaches the server.
TEST_F(RemoteCacheTest, UntrustedCertificateOrWrongPasswordIsALocalBuild) {
  Nginx server(m_tmp.path() / "nginx", {.tls = true, .user = "alice", .password = "pw-0451"});
  write_file(m_tmp.path() / "netrc", "machine 127.0.0.1 login alice password wrong\n");
  const std::map<std::string, std::string> env = {{"NETRC", (m_tmp.path() / "netrc").string()}};
  CliRun untrusted = build_with_env(second(), {"fused_8bit", "--json", "--remote-cache", server.url()}, {});
  EXPECT_EQ(untrusted.code, 0) << untrusted.output;
  EXPECT_EQ(count(untrusted.out, "remote cache http"), 1) << untrusted.out;
  fs::remove_all(second() / ".modelbuild");
  CliRun refused = build_with_env(
      second(), {"fused_8bit", "--json", "--remote-cache", server.url(), "--remote-ca-bundle", server.cert().string()},
      env);
  EXPECT_EQ(refused.code, 0) << refused.output;
  EXPECT_EQ(count(refused.out, "remote cache http"), 1) << refused.out;
  EXPECT_TRUE(server.objects("ac").empty());
  EXPECT_TRUE(server.objects("cas").empty());
}

// A real nginx killed (SIGKILL, master and worker) while it streams a
// blob: the download is cut off half-way, so the second machine builds
// locally with one warning and publishes nothing it did not build itself.
TEST_F(RemoteCacheTest, NginxKilledMidDownloadPublishesNothing) {
  Nginx server(m_tmp.path() / "nginx", {.limit_rate = "2m"});  // 16 MiB take ~8 s to send
  const std::string recipe =
      "targets:\n  big:\n    command: \"head -c 16777216 /dev/zero > {out}/big.bin\"\n    outputs: [big.bin]\n";
  write_file(first() / "modelbuild.yaml", recipe);
  write_file(second() / "modelbuild.yaml", recipe);
  CliRun up = modelbuild(first(), {"big", "--json", "--remote-cache", server.url()});
  ASSERT_EQ(up.code, 0) << up.output;
  ASSERT_EQ(server.objects("ac").size(), 1u);
  std::thread killer([&] {
    // Kill once the blob is being sent: its GET is in the access log only
    // when it ends, so wait for the entry's GET instead, then a second more.
    const fs::path log = m_tmp.path() / "nginx" / "access.log";
    for (int i = 0; i < 200 && count(read_file(log), "GET /mb/ac/") == 0; ++i) ::usleep(20 * 1000);
    ::usleep(1000 * 1000);
    server.kill_hard();
  });
  CliRun down = modelbuild(second(), {"big", "--json", "--remote-cache", server.url()});
  killer.join();
  EXPECT_EQ(down.code, 0) << down.output;
  EXPECT_EQ(count(down.out, "remote cache http"), 1) << down.out;
  EXPECT_NE(down.out.find("\"step\":\"remote download\""), std::string::npos) << "not cut mid-transfer";
  EXPECT_EQ(count(down.out, "\"step_started\""), 1) << down.out;  // built locally after all
  EXPECT_EQ(fs::file_size(second() / "build" / "big" / "big.bin"), 16777216u);
  EXPECT_TRUE(fs::is_empty(second() / ".modelbuild" / "tmp"));
}

}  // namespace
}  // namespace mb::e2e
