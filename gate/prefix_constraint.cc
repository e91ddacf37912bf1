#include "gate/prefix_constraint.h"

#include <algorithm>
#include <limits>
#include <string_view>
#include <utility>

namespace mb::gate {

TokenTexts::TokenTexts(std::vector<std::string> texts) : text(std::move(texts)) {
  for (size_t id = 0; id < text.size(); ++id)
    if (!text[id].empty()) by_first_byte[static_cast<unsigned char>(text[id][0])].push_back(static_cast<int32_t>(id));
}

PrefixConstraint::PrefixConstraint(std::shared_ptr<const TokenTexts> tokens, std::vector<std::string> prefixes)
    : m_tokens(std::move(tokens)), m_prefixes(std::move(prefixes)) {}

std::string tool_call_prefix(const std::string& name) {
  // The name is a valid OpenAI function name ([a-zA-Z0-9_-]), so it needs
  // no JSON escaping.
  return "<tool_call>\n{\"name\": \"" + name + "\", \"arguments\": ";
}

bool PrefixConstraint::complete(std::string_view text) const {
  for (const std::string& p : m_prefixes)
    if (text.starts_with(p)) return true;
  return false;
}

void PrefixConstraint::apply(std::span<const int32_t> generated, std::span<float> logits) const {
  const std::vector<std::string>& texts = m_tokens->text;
  std::string so_far;
  for (int32_t id : generated)
    if (id >= 0 && static_cast<size_t>(id) < texts.size()) so_far += texts[id];
  if (complete(so_far)) return;
  // What each prefix still needs; prefixes the text has left are out.
  std::vector<std::string_view> rest;
  for (const std::string& p : m_prefixes)
    if (std::string_view(p).starts_with(so_far)) rest.push_back(std::string_view(p).substr(so_far.size()));
  std::vector<std::pair<int32_t, float>> allowed;  // ids and their logits
  std::array<bool, 256> seen{};
  for (std::string_view r : rest) {
    const unsigned char first = static_cast<unsigned char>(r[0]);
    if (std::exchange(seen[first], true)) continue;
    for (int32_t id : m_tokens->by_first_byte[first]) {
      if (static_cast<size_t>(id) >= logits.size()) continue;
      const std::string_view t = texts[static_cast<size_t>(id)];
      for (std::string_view q : rest) {
        if (q.starts_with(t) || t.starts_with(q)) {
          allowed.emplace_back(id, logits[static_cast<size_t>(id)]);
          break;
        }
      }
    }
  }
  if (allowed.empty()) return;
  std::fill(logits.begin(), logits.end(), -std::numeric_limits<float>::infinity());
  for (const auto& [id, value] : allowed) logits[static_cast<size_t>(id)] = value;
}

}  // namespace mb::gate
