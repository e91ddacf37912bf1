// Tokenizer encoding and decoding. Loading lives in tokenizer_load.cc.
#include "inference/tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <queue>

#include "inference/tokenizer_impl.h"
#include "inference/tokenizer_unicode.h"

namespace mb::inference {

// ---- regexes ---------------------------------------------------------------

void RegexDeleter::operator()(pcre2_real_code_8* code) const { pcre2_code_free(code); }

Result<Regex> compile_split_regex(std::string_view pattern, std::string_view where) {
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  pcre2_code* code =
      pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                    PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &error_code, &error_offset, nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error_code, message, sizeof(message));
    return make_error(Errc::kInvalidInput, std::string(where), "regex does not compile at offset {}: {}", error_offset,
                      reinterpret_cast<const char*>(message));
  }
  // JIT is an optimization only: the interpreter gives the same matches.
  (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  return Regex(code);
}

namespace {

struct MatchData {
  explicit MatchData(const pcre2_code* code) : md(pcre2_match_data_create_from_pattern(code, nullptr)) {}
  ~MatchData() { pcre2_match_data_free(md); }
  MatchData(const MatchData&) = delete;
  MatchData& operator=(const MatchData&) = delete;
  pcre2_match_data* md;
};

struct Range {
  size_t begin;
  size_t end;
};

// Splits subject[r] with `code`, appending matches and the gaps between them
// (the "Isolated" behaviour) to `out` as ranges of `subject`.
Status split_isolated(const pcre2_code* code, std::string_view subject, Range r, std::vector<Range>& out) {
  MatchData data(code);
  if (data.md == nullptr) return make_error(Errc::kInternal, "", "out of memory for regex match data");
  std::string_view piece = subject.substr(r.begin, r.end - r.begin);
  const auto* s = reinterpret_cast<PCRE2_SPTR>(piece.data());
  size_t pos = 0, gap_start = 0;
  while (pos < piece.size()) {
    int rc = pcre2_match(code, s, piece.size(), pos, 0, data.md, nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(rc, message, sizeof(message));
      return make_error(Errc::kInternal, "", "pre-tokenizer regex failed: {}", reinterpret_cast<const char*>(message));
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(data.md);
    size_t m_begin = ov[0], m_end = ov[1];
    if (m_end == m_begin) {
      // An empty match splits nothing; step over one character and go on.
      pos = m_begin + 1;
      while (pos < piece.size() && (static_cast<uint8_t>(piece[pos]) & 0xC0) == 0x80) ++pos;
      continue;
    }
    if (m_begin > gap_start) out.push_back({r.begin + gap_start, r.begin + m_begin});
    out.push_back({r.begin + m_begin, r.begin + m_end});
    pos = gap_start = m_end;
  }
  if (gap_start < piece.size()) out.push_back({r.begin + gap_start, r.end});
  return Status();
}

// Length of the whitespace character that ends at text[end] (0 if none).
size_t whitespace_before(std::string_view text, size_t end, size_t floor) {
  size_t start = end;
  for (int k = 0; k < 4 && start > floor; ++k) {
    --start;
    if ((static_cast<uint8_t>(text[start]) & 0xC0) != 0x80) break;
  }
  if (start == end) return 0;
  char32_t cp = 0;
  int n = decode_utf8(text, start, cp);
  return (n > 0 && start + static_cast<size_t>(n) == end && is_unicode_whitespace(cp)) ? end - start : 0;
}

size_t whitespace_at(std::string_view text, size_t pos) {
  char32_t cp = 0;
  int n = decode_utf8(text, pos, cp);
  return (n > 0 && is_unicode_whitespace(cp)) ? static_cast<size_t>(n) : 0;
}

struct Segment {
  size_t begin;
  size_t end;
  int32_t added_index;  // -1: plain text
};

// Cuts `text` at the added tokens `matcher` knows, leftmost-longest; lstrip
// and rstrip tokens swallow the whitespace next to them.
void split_on_added(std::string_view text, const AddedTokenMatcher& matcher, const std::vector<AddedToken>& added,
                    std::vector<Segment>& out) {
  size_t text_start = 0, pos = 0;
  while (pos < text.size()) {
    size_t len = 0;
    int32_t index = matcher.may_start(static_cast<uint8_t>(text[pos])) ? matcher.longest_at(text, pos, len) : -1;
    if (index < 0) {
      ++pos;
      continue;
    }
    size_t begin = pos, end = pos + len;
    if (added[index].lstrip) {
      while (size_t n = whitespace_before(text, begin, text_start)) begin -= n;
    }
    if (added[index].rstrip) {
      while (end < text.size()) {
        size_t n = whitespace_at(text, end);
        if (n == 0) break;
        end += n;
      }
    }
    if (begin > text_start) out.push_back({text_start, begin, -1});
    out.push_back({begin, end, index});
    text_start = pos = end;
  }
  if (text_start < text.size()) out.push_back({text_start, text.size(), -1});
}

}  // namespace

// ---- added-token matcher ---------------------------------------------------

int32_t AddedTokenMatcher::child(int32_t node, uint8_t byte) const {
  for (const auto& [b, next] : m_nodes[node].next) {
    if (b == byte) return next;
  }
  return -1;
}

void AddedTokenMatcher::add(std::string_view content, int32_t index) {
  if (content.empty()) return;
  int32_t node = 0;
  for (char c : content) {
    auto byte = static_cast<uint8_t>(c);
    int32_t next = child(node, byte);
    if (next < 0) {
      next = static_cast<int32_t>(m_nodes.size());
      m_nodes[node].next.emplace_back(byte, next);
      m_nodes.emplace_back();
    }
    node = next;
  }
  m_nodes[node].token = index;
  m_first[static_cast<uint8_t>(content[0])] = true;
}

int32_t AddedTokenMatcher::longest_at(std::string_view text, size_t pos, size_t& len) const {
  int32_t node = 0, best = -1;
  for (size_t i = pos; i < text.size(); ++i) {
    node = child(node, static_cast<uint8_t>(text[i]));
    if (node < 0) break;
    if (m_nodes[node].token >= 0) {
      best = m_nodes[node].token;
      len = i + 1 - pos;
    }
  }
  return best;
}

// ---- encoding --------------------------------------------------------------

Status Tokenizer::Impl::encode(std::string_view text, bool parse_added, std::vector<int32_t>& out) const {
  if (!parse_added || raw_matcher.empty()) return encode_normalized(text, parse_added, out);
  std::vector<Segment> segments;
  split_on_added(text, raw_matcher, added, segments);
  for (const Segment& s : segments) {
    if (s.added_index >= 0) {
      out.push_back(added[s.added_index].id);
    } else {
      MB_TRY(encode_normalized(text.substr(s.begin, s.end - s.begin), parse_added, out));
    }
  }
  return Status();
}

Status Tokenizer::Impl::encode_normalized(std::string_view text, bool parse_added, std::vector<int32_t>& out) const {
  std::string normalized;
  if (nfc) {
    normalized = nfc_normalize(text);
    text = normalized;
  }
  if (!parse_added || normalized_matcher.empty()) return encode_plain(text, out);
  std::vector<Segment> segments;
  split_on_added(text, normalized_matcher, added, segments);
  for (const Segment& s : segments) {
    if (s.added_index >= 0) {
      out.push_back(added[s.added_index].id);
    } else {
      MB_TRY(encode_plain(text.substr(s.begin, s.end - s.begin), out));
    }
  }
  return Status();
}

Status Tokenizer::Impl::encode_plain(std::string_view text, std::vector<int32_t>& out) const {
  std::vector<Range> pieces{{0, text.size()}};
  std::vector<Range> next;
  for (const Regex& regex : split_regexes) {
    next.clear();
    for (Range r : pieces) MB_TRY(split_isolated(regex.get(), text, r, next));
    pieces.swap(next);
  }
  for (Range r : pieces) MB_TRY(bpe(text.substr(r.begin, r.end - r.begin), out));
  return Status();
}

Status Tokenizer::Impl::bpe(std::string_view piece, std::vector<int32_t>& out) const {
  if (piece.size() == 1 && byte_ids[static_cast<uint8_t>(piece[0])] >= 0) {
    out.push_back(byte_ids[static_cast<uint8_t>(piece[0])]);
    return Status();
  }
  bool cacheable = piece.size() <= kCacheMaxWord;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex);
    auto it = cache.find(piece);
    if (it != cache.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return Status();
    }
  }
  size_t first = out.size();
  MB_TRY(bpe_uncached(piece, out));
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex);
    if (cache.size() >= kCacheEntries) cache.clear();
    cache.emplace(std::string(piece), std::vector<int32_t>(out.begin() + static_cast<ptrdiff_t>(first), out.end()));
  }
  return Status();
}

Status Tokenizer::Impl::bpe_uncached(std::string_view piece, std::vector<int32_t>& out) const {
  if (ignore_merges) {
    auto it = vocab.find(byte_level_encode(piece));
    if (it != vocab.end()) {
      out.push_back(it->second);
      return Status();
    }
  }
  // One symbol per byte, in a doubly linked list over positions.
  std::vector<int32_t> ids;
  ids.reserve(piece.size());
  for (char c : piece) {
    auto b = static_cast<uint8_t>(c);
    int32_t id = byte_ids[b];
    if (id < 0) {
      if (unk_id < 0) {
        return make_error(Errc::kInvalidInput, "", "the tokenizer has no token for byte 0x{:02X} and no unk_token",
                          static_cast<int>(b));
      }
      if (fuse_unk && !ids.empty() && ids.back() == unk_id) continue;
      id = unk_id;
    }
    ids.push_back(id);
  }
  const auto n = static_cast<int32_t>(ids.size());
  std::vector<int32_t> prev(n), next(n);
  for (int32_t i = 0; i < n; ++i) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }

  // Candidate merges ordered by (rank, position of the left symbol): the
  // lowest rank first, the leftmost on ties. Entries go stale when either
  // side has been merged since; they are checked on pop instead of removed.
  struct Candidate {
    int32_t rank;
    int32_t left;
    int32_t right;
    int32_t merged;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
  };
  std::vector<Candidate> storage;
  storage.reserve(static_cast<size_t>(n));
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> queue(std::greater<Candidate>(),
                                                                                        std::move(storage));
  auto push_pair = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    auto it = merges.find(pair_key(ids[left], ids[right]));
    if (it != merges.end()) queue.push({it->second.rank, left, right, it->second.merged});
  };
  for (int32_t i = 0; i + 1 < n; ++i) push_pair(i, i + 1);

  std::vector<bool> dead(n, false);
  while (!queue.empty()) {
    Candidate c = queue.top();
    queue.pop();
    if (dead[c.left] || dead[c.right] || next[c.left] != c.right) continue;
    // The pair may have changed under the same positions (the left symbol
    // grew by an earlier merge): only a rule for the current ids counts.
    auto it = merges.find(pair_key(ids[c.left], ids[c.right]));
    if (it == merges.end() || it->second.rank != c.rank || it->second.merged != c.merged) continue;
    ids[c.left] = c.merged;
    dead[c.right] = true;
    next[c.left] = next[c.right];
    if (next[c.right] >= 0) prev[next[c.right]] = c.left;
    push_pair(prev[c.left], c.left);
    push_pair(c.left, next[c.left]);
  }
  for (int32_t i = 0; i >= 0 && i < n; i = next[i]) out.push_back(ids[i]);
  return Status();
}

// ---- Tokenizer -------------------------------------------------------------

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Result<std::vector<int32_t>> Tokenizer::encode(std::string_view text) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 1);
  MB_TRY(m_impl->encode(text, true, ids));
  return ids;
}

Result<std::vector<int32_t>> Tokenizer::encode_ordinary(std::string_view text) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 1);
  MB_TRY(m_impl->encode(text, false, ids));
  return ids;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  std::string bytes;
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size()) continue;
    if (skip_special && (m_impl->id_flags[id] & Impl::kSpecial)) continue;
    bytes += m_impl->id_bytes[id];
  }
  return utf8_lossy(bytes);
}

const std::string& Tokenizer::token_bytes(int32_t id) const {
  static const std::string kEmpty;
  return id >= 0 && id < vocab_size() ? m_impl->id_bytes[id] : kEmpty;
}

std::optional<int32_t> Tokenizer::token_id(std::string_view token) const {
  if (auto it = m_impl->added_by_content.find(token); it != m_impl->added_by_content.end()) return it->second;
  if (auto it = m_impl->vocab.find(token); it != m_impl->vocab.end()) return it->second;
  return std::nullopt;
}

const std::string& Tokenizer::id_to_token(int32_t id) const {
  static const std::string kEmpty;
  return id >= 0 && id < vocab_size() ? m_impl->id_to_token[id] : kEmpty;
}

bool Tokenizer::is_added(int32_t id) const {
  return id >= 0 && id < vocab_size() && (m_impl->id_flags[id] & Impl::kAdded);
}

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && id < vocab_size() && (m_impl->id_flags[id] & Impl::kSpecial);
}

int32_t Tokenizer::vocab_size() const { return static_cast<int32_t>(m_impl->id_to_token.size()); }

const std::vector<AddedToken>& Tokenizer::added_tokens() const { return m_impl->added; }

bool Tokenizer::wants_nfc() const { return m_impl->nfc; }

// ---- TokenStreamDecoder ----------------------------------------------------

TokenStreamDecoder::TokenStreamDecoder(const Tokenizer& tokenizer, bool skip_special)
    : m_tokenizer(tokenizer), m_skip_special(skip_special) {}

std::string TokenStreamDecoder::push(int32_t id) {
  if (m_skip_special && m_tokenizer.is_special(id)) return {};
  m_pending += m_tokenizer.token_bytes(id);
  // Cutting just before an incomplete sequence is safe: a lossy decode of
  // the part before it gives the same text as a decode of everything, since
  // a lead byte always starts a new sequence.
  size_t ready = m_pending.size() - utf8_incomplete_tail(m_pending);
  std::string text = utf8_lossy(std::string_view(m_pending).substr(0, ready));
  m_pending.erase(0, ready);
  return text;
}

std::string TokenStreamDecoder::finish() {
  std::string text = utf8_lossy(m_pending);
  m_pending.clear();
  return text;
}

}  // namespace mb::inference
