#include "tensors/safetensors_writer.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

namespace mb {

namespace {

// A JSON string literal as serde_json writes it (raw UTF-8; quotes,
// backslashes and control characters escaped), which nlohmann matches.
std::string json_quoted(const std::string& s) { return nlohmann::json(s).dump(); }

Status check_name(const std::string& name, std::string_view where, const char* what) {
  if (!is_valid_utf8(name))
    return make_error(Errc::kInvalidInput, std::string(where), "{} '{}' is not valid UTF-8", what, name);
  return {};
}

}  // namespace

Result<SafetensorsLayout> SafetensorsLayout::plan(std::vector<TensorDecl> tensors,
                                                  const std::map<std::string, std::string>& metadata,
                                                  std::string_view where) {
  std::string w(where);
  std::set<std::string_view> seen;
  for (const TensorDecl& t : tensors) {
    if (t.name.empty()) return make_error(Errc::kInvalidInput, w, "a tensor has an empty name");
    if (t.name == "__metadata__") return make_error(Errc::kInvalidInput, w, "a tensor cannot be named __metadata__");
    MB_TRY(check_name(t.name, where, "tensor name"));
    if (!seen.insert(t.name).second) return make_error(Errc::kInvalidInput, w, "tensor '{}' declared twice", t.name);
  }
  for (const auto& [k, v] : metadata) {
    MB_TRY(check_name(k, where, "metadata key"));
    MB_TRY(check_name(v, where, "metadata value"));
  }

  // The Hugging Face order: widest dtype first, then by name.
  std::sort(tensors.begin(), tensors.end(), [](const TensorDecl& a, const TensorDecl& b) {
    if (a.dtype != b.dtype) return a.dtype > b.dtype;
    return a.name < b.name;
  });

  SafetensorsLayout layout;
  std::string& h = layout.m_header;
  h = "{";
  if (!metadata.empty()) {
    // Sorted keys: the reference writer's HashMap order is not reproducible.
    h += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [k, v] : metadata) {
      if (!first) h += ',';
      first = false;
      h += json_quoted(k) + ":" + json_quoted(v);
    }
    h += "}";
  }
  uint64_t offset = 0;
  for (TensorDecl& t : tensors) {
    MB_ASSIGN(uint64_t nbytes, tensor_nbytes(t.dtype, t.shape, where, t.name));
    TensorInfo info;
    info.name = std::move(t.name);
    info.dtype = t.dtype;
    info.shape = std::move(t.shape);
    info.data_begin = offset;
    if (__builtin_add_overflow(offset, nbytes, &info.data_end))
      return make_error(Errc::kInvalidInput, w, "tensor '{}': file size overflows", info.name);
    offset = info.data_end;

    if (h.size() > 1) h += ',';
    h += json_quoted(info.name);
    h += fmt::format(":{{\"dtype\":\"{}\",\"shape\":[", dtype_name(info.dtype));
    for (size_t i = 0; i < info.shape.size(); ++i) h += fmt::format("{}{}", i ? "," : "", info.shape[i]);
    h += fmt::format("],\"data_offsets\":[{},{}]}}", info.data_begin, info.data_end);
    layout.m_index.emplace(info.name, layout.m_tensors.size());
    layout.m_tensors.push_back(std::move(info));
  }
  h += "}";
  h.append((8 - h.size() % 8) % 8, ' ');
  if (h.size() > kMaxSafetensorsHeader)
    return make_error(Errc::kInvalidInput, w, "header of {} bytes exceeds the {} byte limit", h.size(),
                      kMaxSafetensorsHeader);
  layout.m_data_size = offset;
  return layout;
}

const TensorInfo* SafetensorsLayout::find(std::string_view name) const {
  auto it = m_index.find(name);
  return it == m_index.end() ? nullptr : &m_tensors[it->second];
}

SafetensorsWriter::SafetensorsWriter(FileSystem& fs, fs::path path, fs::path tmp, SafetensorsLayout layout,
                                     std::unique_ptr<WritableFile> file)
    : m_fs(fs),
      m_path(std::move(path)),
      m_tmp(std::move(tmp)),
      m_layout(std::move(layout)),
      m_file(std::move(file)),
      m_written(m_layout.tensors().size(), 0) {}

Result<std::unique_ptr<SafetensorsWriter>> SafetensorsWriter::create(FileSystem& fs, const fs::path& path,
                                                                     SafetensorsLayout layout) {
  fs::path tmp = temp_path_for(path);
  MB_ASSIGN(auto file, fs.open_for_write(tmp));
  std::unique_ptr<SafetensorsWriter> writer(
      new SafetensorsWriter(fs, path, std::move(tmp), std::move(layout), std::move(file)));
  uint64_t n = writer->m_layout.header().size();
  std::byte len[8];
  std::memcpy(len, &n, 8);
  // On failure the writer's destructor removes the temp file.
  MB_TRY(writer->m_file->append(len));
  MB_TRY(writer->m_file->append(as_bytes(writer->m_layout.header())));
  return writer;
}

SafetensorsWriter::~SafetensorsWriter() {
  if (m_finished) return;
  if (m_file) (void)m_file->close();
  (void)m_fs.remove(m_tmp);
}

Status SafetensorsWriter::write_tensor(std::string_view name, std::span<const std::byte> bytes) {
  const TensorInfo* info = m_layout.find(name);
  if (info && bytes.size() != info->nbytes())
    return make_error(Errc::kInvalidInput, std::string(name), "got {} bytes for {} {} (needs {})", bytes.size(),
                      dtype_name(info->dtype), nlohmann::json(info->shape).dump(), info->nbytes());
  return write_tensor_part(name, 0, bytes);
}

Status SafetensorsWriter::write_tensor_part(std::string_view name, uint64_t offset, std::span<const std::byte> bytes) {
  const TensorInfo* info = m_layout.find(name);
  if (!info)
    return make_error(Errc::kInvalidInput, std::string(name), "tensor was not declared for {}", m_path.string());
  size_t index = static_cast<size_t>(info - m_layout.tensors().data());
  {
    std::lock_guard<std::mutex> lock(m_mu);
    if (m_finished || !m_file) return make_error(Errc::kInternal, std::string(name), "write after finish()");
    if (offset > info->nbytes() || bytes.size() > info->nbytes() - offset)
      return make_error(Errc::kInvalidInput, std::string(name), "write of {} bytes at {} overruns the {}-byte tensor",
                        bytes.size(), offset, info->nbytes());
    if (m_written[index] + bytes.size() > info->nbytes())
      return make_error(Errc::kInvalidInput, std::string(name), "tensor written more than once");
    m_written[index] += bytes.size();
  }
  if (bytes.empty()) return {};
  Status st = m_file->write_at(m_layout.data_offset() + info->data_begin + offset, bytes);
  if (!st.ok()) {
    std::lock_guard<std::mutex> lock(m_mu);
    m_failed = true;
  }
  return st;
}

Status SafetensorsWriter::finish() {
  std::lock_guard<std::mutex> lock(m_mu);
  if (m_finished || !m_file) return make_error(Errc::kInternal, m_path.string(), "finish() called twice");
  if (m_failed) return make_error(Errc::kIo, m_path.string(), "an earlier write failed");
  for (size_t i = 0; i < m_written.size(); ++i) {
    const TensorInfo& t = m_layout.tensors()[i];
    if (m_written[i] != t.nbytes())
      return make_error(Errc::kInvalidInput, t.name, "only {} of {} bytes were written to {}", m_written[i], t.nbytes(),
                        m_path.string());
  }
  MB_TRY(m_file->sync());
  Status closed = m_file->close();
  m_file.reset();
  MB_TRY(closed);
  MB_TRY(m_fs.rename(m_tmp, m_path));
  m_finished = true;
  fs::path dir = m_path.parent_path();
  return m_fs.sync_dir(dir.empty() ? fs::path(".") : dir);
}

Result<std::string> serialize_safetensors(const std::vector<TensorData>& tensors,
                                          const std::map<std::string, std::string>& metadata) {
  std::vector<TensorDecl> decls;
  std::map<std::string_view, std::span<const std::byte>> bytes;
  for (const TensorData& t : tensors) {
    decls.push_back(t.decl);
    bytes.emplace(t.decl.name, t.bytes);
  }
  MB_ASSIGN(SafetensorsLayout layout, SafetensorsLayout::plan(std::move(decls), metadata));
  std::string out;
  out.reserve(layout.file_size());
  uint64_t n = layout.header().size();
  out.append(reinterpret_cast<const char*>(&n), 8);
  out += layout.header();
  for (const TensorInfo& t : layout.tensors()) {
    std::span<const std::byte> b = bytes.at(t.name);
    if (b.size() != t.nbytes())
      return make_error(Errc::kInvalidInput, t.name, "got {} bytes for a {}-byte tensor", b.size(), t.nbytes());
    out += as_chars(b);
  }
  return out;
}

Status write_safetensors(FileSystem& fs, const fs::path& path, const std::vector<TensorData>& tensors,
                         const std::map<std::string, std::string>& metadata) {
  std::vector<TensorDecl> decls;
  for (const TensorData& t : tensors) decls.push_back(t.decl);
  MB_ASSIGN(SafetensorsLayout layout, SafetensorsLayout::plan(std::move(decls), metadata, path.string()));
  MB_ASSIGN(auto writer, SafetensorsWriter::create(fs, path, std::move(layout)));
  for (const TensorData& t : tensors) MB_TRY(writer->write_tensor(t.decl.name, t.bytes));
  return writer->finish();
}

}  // namespace mb
