#include "inference/lora.h"

#include <fmt/format.h>

#include <map>

namespace mb::inference {

Status attach_adapter(Model& model, std::shared_ptr<const Adapter> adapter) {
  const std::string source = adapter->dir.string();
  std::map<std::string, Linear*> by_name;
  for (Linear* l : model.linears()) by_name[l->name] = l;
  if (!model.config.tie_word_embeddings) by_name[model.lm_head.name] = &model.lm_head;
  std::vector<Linear*> targets;
  for (const LoraModule& m : adapter->modules) {
    if (m.is_dora())
      return Error{
          Errc::kUnsupported, source,
          fmt::format("module {} is DoRA; runtime adapters support plain LoRA only (fuse it instead)", m.module)};
    auto it = by_name.find(m.module);
    if (it == by_name.end())
      return Error{m.module == "model.embed_tokens" ? Errc::kUnsupported : Errc::kInvalidInput, source,
                   fmt::format("adapter module {} is not a linear module of this {} model{}", m.module,
                               architecture_name(model.config.arch),
                               m.module == "model.embed_tokens" ? " (embedding LoRA is not supported at run time)"
                                                                : ": the adapter was made for a different model")};
    const WeightMatrix& w = it->second->weight;
    if (m.in != w.cols || m.out != w.rows)
      return Error{Errc::kInvalidInput, source,
                   fmt::format("adapter module {} is [out {}, in {}] but the model's weight is [out {}, in {}]: "
                               "the adapter was made for a different model",
                               m.module, m.out, m.in, w.rows, w.cols)};
    if (m.rank <= 0 || static_cast<int64_t>(m.a.size()) != m.rank * m.in ||
        static_cast<int64_t>(m.b.size()) != m.out * m.rank)
      return Error{Errc::kInvalidInput, source, fmt::format("adapter module {} has inconsistent A/B sizes", m.module)};
    targets.push_back(it->second);
  }
  for (size_t i = 0; i < adapter->modules.size(); ++i) {
    const LoraModule& m = adapter->modules[i];
    LoraTerm t;
    t.a = {m.rank, m.in, WeightFormat::kFloat, FloatType::kF32};
    t.a.data = reinterpret_cast<const std::byte*>(m.a.data());
    t.b = {m.out, m.rank, WeightFormat::kFloat, FloatType::kF32};
    t.b.data = reinterpret_cast<const std::byte*>(m.b.data());
    t.scale = m.scale;
    t.source = source;
    targets[i]->lora.push_back(t);
  }
  model.storage.push_back(std::move(adapter));
  return Status();
}

}  // namespace mb::inference
