#include "cache/http_client.h"

#include <gtest/gtest.h>

namespace mb {
namespace {

TEST(RedactUrl, DropsUserInfoOnly) {
  EXPECT_EQ(redact_url("http://alice:hunter2@cache:8080/mb"), "http://cache:8080/mb");
  EXPECT_EQ(redact_url("https://token@cache/mb/ac/ff"), "https://cache/mb/ac/ff");
  EXPECT_EQ(redact_url("http://cache:8080/a@b"), "http://cache:8080/a@b");  // '@' in the path is not user info
  EXPECT_EQ(redact_url("http://cache:8080"), "http://cache:8080");
}

TEST(HttpClient, UnreachableServerIsAnErrorNamingTheRedactedUrl) {
  HttpOptions o;
  o.attempts = 2;
  o.first_backoff = std::chrono::milliseconds(1);
  HttpClient client(o);
  // Port 1 on loopback: nothing listens there.
  auto r = client.head("http://bob:pw@127.0.0.1:1/mb/cas/00");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().where, "http://127.0.0.1:1/mb/cas/00");
  EXPECT_EQ(r.error().to_string().find("pw"), std::string::npos);
}

}  // namespace
}  // namespace mb
