#include "gate/prefix_constraint.h"

#include <limits>
#include <string_view>

namespace mb::gate {

PrefixConstraint::PrefixConstraint(std::shared_ptr<const std::vector<std::string>> token_texts,
                                   std::vector<std::string> prefixes)
    : m_texts(std::move(token_texts)), m_prefixes(std::move(prefixes)) {}

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
  const std::vector<std::string>& texts = *m_texts;
  std::string so_far;
  for (int32_t id : generated)
    if (id >= 0 && static_cast<size_t>(id) < texts.size()) so_far += texts[id];
  if (complete(so_far)) return;
  // What each prefix still needs; prefixes the text has left are out.
  std::vector<std::string_view> rest;
  for (const std::string& p : m_prefixes)
    if (std::string_view(p).starts_with(so_far)) rest.push_back(std::string_view(p).substr(so_far.size()));
  std::vector<bool> allowed(logits.size(), false);
  bool any = false;
  for (size_t id = 0; id < logits.size() && id < texts.size(); ++id) {
    const std::string_view t = texts[id];
    if (t.empty()) continue;
    for (std::string_view r : rest) {
      if (r.starts_with(t) || t.starts_with(r)) {
        allowed[id] = any = true;
        break;
      }
    }
  }
  if (!any) return;
  for (size_t id = 0; id < logits.size(); ++id)
    if (!allowed[id]) logits[id] = -std::numeric_limits<float>::infinity();
}

}  // namespace mb::gate
