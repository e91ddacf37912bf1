#include "cache/staging.h"

#include <charconv>

namespace mb {

StagingDir& StagingDir::operator=(StagingDir&& other) noexcept {
  if (this != &other) {
    if (active()) (void)abandon();
    m_fs = std::exchange(other.m_fs, nullptr);
    m_dir = std::move(other.m_dir);
    m_key = other.m_key;
  }
  return *this;
}

StagingDir::~StagingDir() {
  if (active()) (void)abandon();  // best effort; gc removes what is left
}

Status StagingDir::abandon() {
  if (!active()) return {};
  FileSystem* fs = std::exchange(m_fs, nullptr);
  return fs->remove_all(m_dir);
}

bool parse_staging_name(const std::string& name, Digest* key, long* pid) {
  if (name.size() < 64 + 4 || name[64] != '.') return false;
  auto d = Digest::from_hex(std::string_view(name).substr(0, 64));
  if (!d.ok()) return false;
  size_t dot = name.find('.', 65);
  if (dot == std::string::npos) return false;
  long value = 0;
  auto [ptr, ec] = std::from_chars(name.data() + 65, name.data() + dot, value);
  if (ec != std::errc() || ptr != name.data() + dot || value <= 0) return false;
  *key = *d;
  *pid = value;
  return true;
}

}  // namespace mb
