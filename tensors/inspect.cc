#include "tensors/inspect.h"

#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "base/parallel.h"
#include "tensors/adapters.h"
#include "tensors/diff_source.h"
#include "tensors/fuse.h"
#include "tensors/gguf_reader.h"
#include "tensors/safetensors.h"

namespace mb {

namespace {

uint64_t numel_of(const std::vector<int64_t>& shape) {
  uint64_t n = 1;
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

std::string human_bytes(uint64_t b) {
  const double v = static_cast<double>(b);
  if (v >= 1e9) return fmt::format("{:.2f} GB", v / 1e9);
  if (v >= 1e6) return fmt::format("{:.1f} MB", v / 1e6);
  if (v >= 1e3) return fmt::format("{:.1f} kB", v / 1e3);
  return fmt::format("{} B", b);
}

std::string human_count(uint64_t n) {
  const double v = static_cast<double>(n);
  if (v >= 1e9) return fmt::format("{:.2f}B", v / 1e9);
  if (v >= 1e6) return fmt::format("{:.2f}M", v / 1e6);
  if (v >= 1e3) return fmt::format("{:.1f}k", v / 1e3);
  return std::to_string(n);
}

std::string shape_str(const std::vector<int64_t>& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

// Sizes of the regular files directly in `dir`.
void add_disk_sizes(const FileSystem& fs, const fs::path& dir, Inspection& out) {
  auto names = fs.list_dir(dir);
  if (!names.ok()) return;
  for (const std::string& n : *names) {
    auto st = fs.stat(dir / n);
    if (!st.ok() || !st->is_regular) continue;
    out.disk_bytes += st->size;
    if (n.size() > 12 && n.compare(n.size() - 12, 12, ".safetensors") == 0) out.safetensors_bytes += st->size;
  }
}

void finish_groups(Inspection& out, std::map<std::string, SizeGroup>& groups) {
  for (auto& [label, g] : groups) out.groups.push_back(g);
  for (const TensorSummary& t : out.tensors) {
    out.parameters += t.parameters;
    out.tensor_bytes += t.bytes;
  }
}

// A float (or integer) tensor counts in the group of its dtype.
void add_float_tensor(std::map<std::string, SizeGroup>& groups, const TensorSummary& s) {
  SizeGroup& g = groups[dtype_name(s.dtype)];
  g.label = dtype_name(s.dtype);
  g.nominal_bits = dtype_bits(s.dtype);
  ++g.tensors;
  g.parameters += s.parameters;
  g.bytes += s.bytes;
}

Result<Inspection> inspect_model(const FileSystem& fs, const fs::path& dir) {
  MB_ASSIGN(ModelDir model, ModelDir::open(fs, dir));
  Inspection out;
  out.kind = InspectKind::kModel;
  out.path = dir;
  std::map<std::string, SizeGroup> groups;
  for (const TensorRef& t : model.weights().tensors()) {
    TensorSummary s;
    s.name = t.info->name;
    s.dtype = t.info->dtype;
    s.shape = t.info->shape;
    s.logical_shape = s.shape;
    s.bytes = t.info->nbytes();
    if (is_quant_companion(model, s.name)) {
      s.quant_overhead = true;
      const std::string module(module_of(s.name));
      const LayerQuant q = *model.module_quant(module);
      groups[fmt::format("{}-bit gs{} ({} scales)", q.bits, q.group_size, dtype_name(s.dtype))].bytes += s.bytes;
      out.tensors.push_back(std::move(s));
      continue;
    }
    auto rows = WeightRows::open(model, s.name);
    if (!rows.ok() && rows.error().code != Errc::kUnsupported) return rows.error();
    if (rows.ok() && rows->quantized()) {
      s.quant = rows->quant();
      s.logical_shape = rows->shape();
      const std::string label =
          fmt::format("{}-bit gs{} ({} scales)", s.quant->bits, s.quant->group_size, dtype_name(rows->dtype()));
      SizeGroup& g = groups[label];
      g.label = label;
      g.nominal_bits = s.quant->bits + 2.0 * dtype_bits(rows->dtype()) / s.quant->group_size;
      ++g.tensors;
      s.parameters = numel_of(s.logical_shape);
      g.parameters += s.parameters;
      g.bytes += s.bytes;
    } else {
      s.parameters = numel_of(s.shape);
      add_float_tensor(groups, s);
    }
    out.tensors.push_back(std::move(s));
  }
  finish_groups(out, groups);
  add_disk_sizes(fs, dir, out);
  return out;
}

Result<Inspection> inspect_adapter(const FileSystem& fs, const fs::path& dir) {
  MB_ASSIGN(Adapter adapter, load_adapter(fs, dir));
  MB_ASSIGN(SafetensorsFile file, SafetensorsFile::open(fs, adapter.weights_file));
  Inspection out;
  out.kind = InspectKind::kAdapter;
  out.path = dir;
  AdapterSummary a;
  a.format = adapter_format_name(adapter.format);
  a.dora = adapter.dora;
  a.modules = static_cast<int64_t>(adapter.modules.size());
  std::set<int64_t> ranks;
  std::set<float> scales;
  for (const LoraModule& m : adapter.modules) ranks.insert(m.rank), scales.insert(m.scale);
  a.ranks.assign(ranks.begin(), ranks.end());
  a.scales.assign(scales.begin(), scales.end());
  out.adapter = a;
  std::map<std::string, SizeGroup> groups;
  for (const TensorInfo& info : file.tensors()) {
    TensorSummary s{info.name,    info.dtype,    info.shape, std::nullopt, info.shape, false,
                    info.numel(), info.nbytes(), {}};
    add_float_tensor(groups, s);
    out.tensors.push_back(std::move(s));
  }
  finish_groups(out, groups);
  add_disk_sizes(fs, dir, out);
  return out;
}

}  // namespace

Result<Inspection> inspect(const FileSystem& fs, const fs::path& path) {
  MB_ASSIGN(std::optional<fs::path> gguf, find_gguf_model(fs, path));  // a .gguf or a GGUF target's directory
  if (gguf) return inspect_gguf(fs, *gguf);
  if (fs.stat(path / "config.json").ok()) return inspect_model(fs, path);
  if (fs.stat(path / "adapter_config.json").ok() || fs.stat(path / "adapters.safetensors").ok() ||
      fs.stat(path / "adapter_model.safetensors").ok())
    return inspect_adapter(fs, path);
  if (!fs.stat(path).ok()) return make_error(Errc::kNotFound, path.string(), "no such directory");
  return make_error(Errc::kInvalidInput, path.string(),
                    "neither a model directory (config.json) nor an adapter directory (adapter_config.json)");
}

nlohmann::json Inspection::to_json() const {
  nlohmann::json j;
  j["kind"] = kind == InspectKind::kModel ? "model" : kind == InspectKind::kGguf ? "gguf" : "adapter";
  j["path"] = path.string();
  j["parameters"] = parameters;
  j["tensor_bytes"] = tensor_bytes;
  j["safetensors_bytes"] = safetensors_bytes;
  j["disk_bytes"] = disk_bytes;
  j["bits_per_weight"] = bits_per_weight();
  j["groups"] = nlohmann::json::array();
  for (const SizeGroup& g : groups)
    j["groups"].push_back({{"label", g.label},
                           {"tensors", g.tensors},
                           {"parameters", g.parameters},
                           {"bytes", g.bytes},
                           {"nominal_bits", g.nominal_bits}});
  j["tensors"] = nlohmann::json::array();
  for (const TensorSummary& t : tensors) {
    nlohmann::json e = {{"name", t.name},
                        {"dtype", t.ggml_type.empty() ? dtype_name(t.dtype) : t.ggml_type.c_str()},
                        {"shape", t.shape},
                        {"parameters", t.parameters},
                        {"bytes", t.bytes}};
    if (t.quant)
      e["quantization"] = {{"bits", t.quant->bits}, {"group_size", t.quant->group_size}, {"shape", t.logical_shape}};
    if (t.quant_overhead) e["quantization_overhead"] = true;
    j["tensors"].push_back(std::move(e));
  }
  if (kind == InspectKind::kGguf) j["metadata"] = gguf_metadata;
  if (adapter)
    j["adapter"] = {{"format", adapter->format},
                    {"dora", adapter->dora},
                    {"modules", adapter->modules},
                    {"ranks", adapter->ranks},
                    {"scales", adapter->scales}};
  return j;
}

std::string render_inspection(const Inspection& in, bool list_tensors) {
  const char* kind = in.kind == InspectKind::kModel ? "model" : in.kind == InspectKind::kGguf ? "gguf" : "adapter";
  std::string s = fmt::format("{} {}\n", kind, in.path.string());
  if (in.kind == InspectKind::kGguf) {
    for (const auto& [key, value] : in.gguf_metadata.items()) {
      std::string text = value.is_string() ? value.get<std::string>() : value.dump();
      if (text.size() > 80 || text.find('\n') != std::string::npos) text = fmt::format("<{} bytes>", text.size());
      s += fmt::format("  {} = {}\n", key, text);
    }
  }
  if (in.adapter)
    s += fmt::format("  {} {}: {} modules, rank {}, scale {}\n", in.adapter->format, in.adapter->dora ? "DoRA" : "LoRA",
                     in.adapter->modules, fmt::join(in.adapter->ranks, "/"), fmt::join(in.adapter->scales, "/"));
  s += fmt::format("  parameters       {} ({}){}\n", human_count(in.parameters), in.parameters,
                   in.kind == InspectKind::kModel ? ", quantized weights counted unpacked" : "");
  s += fmt::format("  tensor data      {} ({} bytes); safetensors files {}; directory {}\n",
                   human_bytes(in.tensor_bytes), in.tensor_bytes, human_bytes(in.safetensors_bytes),
                   human_bytes(in.disk_bytes));
  s += fmt::format("  bits per weight  {:.3f}\n", in.bits_per_weight());
  s += "  size ≈ parameters × bits / 8 (quantized: bits + 2 × scale bits / group size):\n";
  size_t width = 5;
  for (const SizeGroup& g : in.groups) width = std::max(width, g.label.size());
  for (const SizeGroup& g : in.groups)
    s += fmt::format(
        "    {:<{}}  {:>5} tensors  {:>9} × {:>5.2f} / 8 = {}\n", g.label, width, g.tensors, human_count(g.parameters),
        g.nominal_bits,
        human_bytes(static_cast<uint64_t>(std::llround(static_cast<double>(g.parameters) * g.nominal_bits / 8))));
  s += fmt::format("    {:<{}}  {:>5}          {:>9} × {:>5.2f} / 8 = {}\n", "total", width, "",
                   human_count(in.parameters), in.bits_per_weight(), human_bytes(in.tensor_bytes));
  if (list_tensors) {
    s += "  tensors:\n";
    for (const TensorSummary& t : in.tensors) {
      s += fmt::format("    {}  {} {}", t.name, t.ggml_type.empty() ? dtype_name(t.dtype) : t.ggml_type.c_str(),
                       shape_str(t.shape));
      if (t.quant)
        s += fmt::format("  {}-bit gs{} → {}", t.quant->bits, t.quant->group_size, shape_str(t.logical_shape));
      s += "\n";
    }
  }
  return s;
}

// ---- diff -------------------------------------------------------------------

const char* diff_kind_name(DiffKind kind) {
  switch (kind) {
    case DiffKind::kIdentical:
      return "identical";
    case DiffKind::kDifferent:
      return "different";
    case DiffKind::kOnlyInA:
      return "only in a";
    case DiffKind::kOnlyInB:
      return "only in b";
    case DiffKind::kShapeMismatch:
      return "shape mismatch";
  }
  return "?";
}

namespace {

struct DiffSums {
  int64_t differing = 0;
  double max_abs = 0, delta_sq = 0, a_sq = 0;
};

Result<TensorDiff> diff_tensor(const DiffSource& a, const DiffSource& b, const std::string& name, int threads) {
  TensorDiff d;
  d.name = name;
  MB_ASSIGN(const DiffTensor ta, a.tensor(name));
  MB_ASSIGN(const DiffTensor tb, b.tensor(name));
  d.stored_a = ta.stored();
  d.stored_b = tb.stored();
  d.shape_a = ta.shape();
  d.shape_b = tb.shape();
  if (d.shape_a != d.shape_b) {
    d.kind = DiffKind::kShapeMismatch;
    return d;
  }
  if (!ta.has_values() || !tb.has_values()) {
    // A non-float tensor on at least one side: compare what is stored.
    const bool same = d.stored_a == d.stored_b && as_chars(ta.bytes()) == as_chars(tb.bytes());
    d.kind = same ? DiffKind::kIdentical : DiffKind::kDifferent;
    return d;
  }
  d.compared_values = true;
  const int64_t rows = ta.rows(), cols = ta.cols(), per = row_chunk_rows(rows, cols);
  std::vector<DiffSums> sums(static_cast<size_t>(rows == 0 ? 0 : (rows + per - 1) / per));
  MB_TRY(for_each_row_chunk(rows, cols, threads, [&](int64_t chunk, int64_t begin, int64_t end) -> Status {
    std::vector<float> va(static_cast<size_t>(cols)), vb(va.size());
    DiffTensor::Scratch sa = ta.make_scratch(), sb = tb.make_scratch();
    DiffSums& s = sums[static_cast<size_t>(chunk)];
    for (int64_t r = begin; r < end; ++r) {
      ta.read_row(r, va, sa);
      tb.read_row(r, vb, sb);
      for (size_t i = 0; i < va.size(); ++i) {
        const double x = va[i], y = vb[i];
        s.a_sq += x * x;
        if (x == y || (std::isnan(x) && std::isnan(y))) continue;
        ++s.differing;
        const double delta = y - x;
        s.delta_sq += delta * delta;
        s.max_abs = std::isnan(delta) ? INFINITY : std::max(s.max_abs, std::abs(delta));
      }
    }
    return Status::ok_status();
  }));
  DiffSums total;
  for (const DiffSums& s : sums) {
    total.differing += s.differing;
    total.max_abs = std::max(total.max_abs, s.max_abs);
    total.delta_sq += s.delta_sq;
    total.a_sq += s.a_sq;
  }
  d.differing = total.differing;
  d.max_abs = total.max_abs;
  d.rel = total.delta_sq == 0 ? 0.0 : (total.a_sq == 0 ? INFINITY : std::sqrt(total.delta_sq / total.a_sq));
  d.kind = d.differing == 0 ? DiffKind::kIdentical : DiffKind::kDifferent;
  return d;
}

}  // namespace

Result<ModelDiff> diff_models(const FileSystem& fs, const fs::path& a_path, const fs::path& b_path, int threads) {
  MB_ASSIGN(const DiffSource a, DiffSource::open(fs, a_path));
  MB_ASSIGN(const DiffSource b, DiffSource::open(fs, b_path));
  const std::vector<std::string>&na = a.names(), &nb = b.names();
  ModelDiff out;
  size_t i = 0, j = 0;
  threads = resolve_threads(threads);
  while (i < na.size() || j < nb.size()) {
    TensorDiff d;
    if (j == nb.size() || (i < na.size() && na[i] < nb[j])) {
      d.name = na[i++];
      d.kind = DiffKind::kOnlyInA;
    } else if (i == na.size() || nb[j] < na[i]) {
      d.name = nb[j++];
      d.kind = DiffKind::kOnlyInB;
    } else {
      MB_ASSIGN(d, diff_tensor(a, b, na[i], threads));
      ++i, ++j;
    }
    switch (d.kind) {
      case DiffKind::kIdentical:
        ++out.identical;
        break;
      case DiffKind::kDifferent:
        ++out.different;
        break;
      case DiffKind::kOnlyInA:
        ++out.only_a;
        break;
      case DiffKind::kOnlyInB:
        ++out.only_b;
        break;
      case DiffKind::kShapeMismatch:
        ++out.shape_mismatch;
        break;
    }
    out.tensors.push_back(std::move(d));
  }
  return out;
}

nlohmann::json ModelDiff::to_json() const {
  auto num = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); };
  nlohmann::json j = {{"same", same()},
                      {"identical", identical},
                      {"different", different},
                      {"only_in_a", only_a},
                      {"only_in_b", only_b},
                      {"shape_mismatch", shape_mismatch},
                      {"tensors", nlohmann::json::array()}};
  for (const TensorDiff& t : tensors) {
    nlohmann::json e = {{"name", t.name}, {"kind", diff_kind_name(t.kind)}};
    if (!t.stored_a.empty()) e["stored_a"] = t.stored_a;
    if (!t.stored_b.empty()) e["stored_b"] = t.stored_b;
    if (t.kind == DiffKind::kShapeMismatch) e["shape_a"] = t.shape_a, e["shape_b"] = t.shape_b;
    if (t.compared_values && t.kind == DiffKind::kDifferent)
      e["differing"] = t.differing, e["max_abs"] = num(t.max_abs), e["rel"] = num(t.rel);
    j["tensors"].push_back(std::move(e));
  }
  return j;
}

namespace {

// "BF16" when both sides store a tensor alike, else "q4_K vs BF16".
std::string stored_pair(const TensorDiff& t) {
  return t.stored_a == t.stored_b ? t.stored_a : fmt::format("{} vs {}", t.stored_a, t.stored_b);
}

}  // namespace

std::string render_diff(const ModelDiff& d, bool all) {
  std::string s;
  for (const TensorDiff& t : d.tensors) {
    switch (t.kind) {
      case DiffKind::kIdentical:
        if (all) s += fmt::format("  = {}\n", t.name);
        break;
      case DiffKind::kDifferent:
        if (t.compared_values)
          s += fmt::format("  ~ {}  {}  {} of {} values differ, max |Δ| {:.3g}, ‖Δ‖/‖a‖ {:.3g}\n", t.name,
                           stored_pair(t), t.differing, numel_of(t.shape_a), t.max_abs, t.rel);
        else
          s += fmt::format("  ~ {}  {}  bytes differ\n", t.name, stored_pair(t));
        break;
      case DiffKind::kOnlyInA:
        s += fmt::format("  - {}  only in a\n", t.name);
        break;
      case DiffKind::kOnlyInB:
        s += fmt::format("  + {}  only in b\n", t.name);
        break;
      case DiffKind::kShapeMismatch:
        s += fmt::format("  ! {}  shape {} vs {}\n", t.name, shape_str(t.shape_a), shape_str(t.shape_b));
        break;
    }
  }
  s += fmt::format("{} identical, {} different, {} only in a, {} only in b, {} shape mismatches\n", d.identical,
                   d.different, d.only_a, d.only_b, d.shape_mismatch);
  return s;
}

}  // namespace mb
