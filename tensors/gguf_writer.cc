#include "tensors/gguf_writer.h"

#include <limits>
#include <unordered_set>

// File layout and the checks here: docs/formats/gguf.md, "Layout".
namespace mb {
namespace {

constexpr size_t kMaxNameBytes = 63;  // what the reader (and llama.cpp) accept
constexpr size_t kMaxDims = 4;

Error invalid(const fs::path& path, const std::string& message) {
  return Error{Errc::kInvalidInput, path.string(), message};
}

// Bytes of a declared tensor, or an error naming it.
Result<uint64_t> declared_bytes(const fs::path& path, const GgufTensorDecl& t) {
  const std::string what = "tensor " + t.name;
  if (t.name.empty() || t.name.size() > kMaxNameBytes)
    return invalid(path, fmt::format("{}: name of {} bytes (1 to {} allowed)", what, t.name.size(), kMaxNameBytes));
  if (t.dims.empty() || t.dims.size() > kMaxDims)
    return invalid(path, fmt::format("{}: {} dimensions (1 to 4 allowed)", what, t.dims.size()));
  if (!ggml_type_implemented(t.type))
    return invalid(path, fmt::format("{}: type {} cannot be written", what, ggml_type_name(t.type)));
  uint64_t numel = 1;
  for (uint64_t d : t.dims) {
    if (d == 0 || d > static_cast<uint64_t>(std::numeric_limits<int32_t>::max()) || numel > (uint64_t{1} << 40) / d)
      return invalid(path, fmt::format("{}: dimension {} is zero or too large", what, d));
    numel *= d;
  }
  if (!ggml_row_fits(t.type, static_cast<int64_t>(t.dims[0])))
    return invalid(path, fmt::format("{}: row length {} is not a multiple of {}'s block of {}", what, t.dims[0],
                                     ggml_type_name(t.type), ggml_block_size(t.type)));
  return ggml_row_size(t.type, static_cast<int64_t>(t.dims[0])) * (numel / t.dims[0]);
}

Status check_metadata(const fs::path& path, const GgufMetadata& metadata) {
  std::unordered_set<std::string> keys;
  for (const GgufMetadata::Entry& e : metadata.entries()) {
    if (e.key.empty()) return invalid(path, "empty metadata key");
    if (!keys.insert(e.key).second) return invalid(path, fmt::format("key {}: duplicate key", e.key));
  }
  if (const GgufValue* a = metadata.find("general.alignment")) {
    const uint32_t* v = std::get_if<uint32_t>(a);
    if (v == nullptr || *v != kGgufAlignment)
      return invalid(path, fmt::format("key general.alignment: must be the UINT32 {}", kGgufAlignment));
  }
  return {};
}

}  // namespace

Result<std::unique_ptr<GgufWriter>> GgufWriter::create(const fs::path& path, const GgufMetadata& metadata,
                                                       std::vector<GgufTensorDecl> tensors) {
  std::unique_ptr<FileSystem> fs = make_real_file_system();
  Result<std::unique_ptr<GgufWriter>> w = create(*fs, path, metadata, std::move(tensors));
  if (w) w.value()->m_owned_fs = std::move(fs);
  return w;
}

Result<std::unique_ptr<GgufWriter>> GgufWriter::create(FileSystem& fs, const fs::path& path,
                                                       const GgufMetadata& metadata,
                                                       std::vector<GgufTensorDecl> tensors) {
  if (Status st = check_metadata(path, metadata); !st) return st.error();
  std::unique_ptr<GgufWriter> w(new GgufWriter());
  GgufLayout layout;
  layout.add_metadata(metadata);
  if (metadata.find("general.alignment") == nullptr) layout.add_u32("general.alignment", kGgufAlignment);
  w->m_slots = std::make_unique<Slot[]>(tensors.size());
  std::vector<uint64_t> relative(tensors.size());
  uint64_t at = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    Result<uint64_t> bytes = declared_bytes(path, tensors[i]);
    if (!bytes) return bytes.error();
    if (!w->m_index.emplace(tensors[i].name, i).second)
      return invalid(path, fmt::format("tensor {}: duplicate tensor name", tensors[i].name));
    layout.add_tensor({tensors[i].name, tensors[i].dims, static_cast<uint32_t>(tensors[i].type), bytes.value()});
    w->m_slots[i].byte_size = bytes.value();
    relative[i] = at;
    at += GgufLayout::padded(bytes.value());
  }
  std::string header = layout.header();
  for (size_t i = 0; i < tensors.size(); ++i) w->m_slots[i].offset = header.size() + relative[i];
  w->m_file_size = header.size() + at;
  w->m_decls = std::move(tensors);
  w->m_fs = &fs;
  w->m_path = path;
  w->m_temp = temp_path_for(path);
  Result<std::unique_ptr<WritableFile>> file = fs.open_for_write(w->m_temp);
  if (!file) return file.error();
  w->m_file = std::move(file.value());
  if (Status st = w->m_file->write_at(0, as_bytes(header)); !st) return st.error();
  return w;
}

GgufWriter::~GgufWriter() {
  if (m_finished || m_fs == nullptr) return;
  m_file.reset();
  (void)m_fs->remove(m_temp);
}

uint64_t GgufWriter::tensor_bytes(std::string_view name) const {
  auto it = m_index.find(std::string(name));
  return it == m_index.end() ? 0 : m_slots[it->second].byte_size;
}

Result<GgufWriter::Slot*> GgufWriter::claim(std::string_view name, uint64_t byte_size) {
  auto it = m_index.find(std::string(name));
  if (it == m_index.end()) return invalid(m_path, fmt::format("tensor {}: not declared", name));
  Slot& slot = m_slots[it->second];
  if (byte_size != slot.byte_size)
    return invalid(m_path, fmt::format("tensor {}: {} bytes given, {} declared", name, byte_size, slot.byte_size));
  if (slot.written.exchange(true)) return invalid(m_path, fmt::format("tensor {}: written twice", name));
  return &slot;
}

// The tensor's bytes, then zeros up to the alignment, so the file has no holes.
Status GgufWriter::write_slot(Slot& slot, std::string_view name, const uint8_t* data) {
  static const std::byte kZeros[kGgufAlignment] = {};
  std::span<const std::byte> body(reinterpret_cast<const std::byte*>(data), slot.byte_size);
  uint64_t pad = GgufLayout::padded(slot.byte_size) - slot.byte_size;
  Status st = m_file->write_at(slot.offset, body);
  if (st && pad > 0) st = m_file->write_at(slot.offset + slot.byte_size, std::span(kZeros, pad));
  if (!st) {
    Error e = st.error();
    e.message = fmt::format("tensor {}: {}", name, e.message);
    return e;
  }
  return {};
}

Status GgufWriter::write_tensor(std::string_view name, std::span<const float> values) {
  auto it = m_index.find(std::string(name));
  if (it == m_index.end()) return invalid(m_path, fmt::format("tensor {}: not declared", name));
  const GgufTensorDecl& d = m_decls[it->second];
  const int64_t cols = static_cast<int64_t>(d.dims[0]);
  const uint64_t numel = m_slots[it->second].byte_size / ggml_row_size(d.type, cols) * cols;
  if (values.size() != numel)
    return invalid(m_path, fmt::format("tensor {}: {} values given, {} declared", name, values.size(), numel));
  Result<Slot*> slot = claim(name, m_slots[it->second].byte_size);
  if (!slot) return slot.error();
  std::vector<uint8_t> encoded = quantize_rows(d.type, values.data(), static_cast<int64_t>(numel) / cols, cols);
  return write_slot(*slot.value(), name, encoded.data());
}

Status GgufWriter::write_raw(std::string_view name, std::span<const uint8_t> bytes) {
  Result<Slot*> slot = claim(name, bytes.size());
  if (!slot) return slot.error();
  return write_slot(*slot.value(), name, bytes.data());
}

Status GgufWriter::finish() {
  for (size_t i = 0; i < m_decls.size(); ++i)
    if (!m_slots[i].written.load()) return invalid(m_path, fmt::format("tensor {}: never written", m_decls[i].name));
  if (Status st = m_file->sync(); !st) return st;
  if (Status st = m_file->close(); !st) return st;
  if (Status st = m_fs->rename(m_temp, m_path); !st) return st;
  m_finished = true;
  return m_fs->sync_dir(m_path.parent_path().empty() ? fs::path(".") : m_path.parent_path());
}

}  // namespace mb
