#include "inference/lora.h"

#include <map>
#include <memory>

#include <fmt/format.h>

namespace mb::inference {

Status attach_adapter(Model& model, std::vector<AdapterModule> modules, const std::string& source) {
  std::map<std::string, Linear*> by_name;
  for (Linear* l : model.linears()) by_name[l->name] = l;
  by_name[model.lm_head.name] = &model.lm_head;
  std::vector<Linear*> targets;
  for (const AdapterModule& m : modules) {
    auto it = by_name.find(m.module);
    if (it == by_name.end())
      return Error{Errc::kInvalidInput, source,
                   fmt::format("adapter module {} does not exist in this {} model", m.module,
                               architecture_name(model.config.arch))};
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
  for (size_t i = 0; i < modules.size(); ++i) {
    auto storage = std::make_shared<AdapterModule>(std::move(modules[i]));
    const AdapterModule& m = *storage;
    LoraTerm t;
    t.a = {m.rank, m.in, WeightFormat::kFloat, FloatType::kF32};
    t.a.data = reinterpret_cast<const std::byte*>(m.a.data());
    t.b = {m.out, m.rank, WeightFormat::kFloat, FloatType::kF32};
    t.b.data = reinterpret_cast<const std::byte*>(m.b.data());
    t.scale = m.scale;
    t.source = source;
    targets[i]->lora.push_back(t);
    model.storage.push_back(std::move(storage));
  }
  return Status();
}

}  // namespace mb::inference
