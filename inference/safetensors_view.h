#pragma once
// SafetensorsView: the tensors of one or more mmapped safetensors files, as
// a TensorSource.
//
// STOPGAP: tensors/safetensors.h (another module) is the project's reader;
// until it exists the engine reads headers here. It checks what the engine
// relies on (header size and JSON, entry fields, offsets inside the file)
// and nothing more.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/fs.h"
#include "inference/tensor_source.h"

namespace mb::inference {

class SafetensorsView : public TensorSource {
 public:
  // Maps `path` and adds its tensors (a later file wins on duplicate names).
  Status add_file(const FileSystem& fs, const fs::path& path);

  const TensorData* find(const std::string& name) const override;
  std::string location(const std::string& name) const override;
  const std::map<std::string, TensorData>& tensors() const { return m_tensors; }

 private:
  std::vector<std::unique_ptr<ReadOnlyMapping>> m_mappings;
  std::map<std::string, TensorData> m_tensors;
  std::map<std::string, std::string> m_location;
};

// The values of a float tensor (F32/F16/BF16) as f32.
Result<std::vector<float>> tensor_to_f32(const TensorData& t, const std::string& name);

}  // namespace mb::inference
