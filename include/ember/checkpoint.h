#pragma once
// Checkpoints in the safetensors format (https://github.com/huggingface/safetensors):
//
//   [8 bytes]  N, the header length, unsigned little-endian
//   [N bytes]  JSON: {"<name>": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]},
//                     ..., "__metadata__": {"<key>": "<string>", ...}}
//   [rest]     the tensors' raw little-endian bytes; offsets are relative to the end of the header
//
// dtypes: F32, F64, BF16, I64, I32, U8, BOOL. A module's state dict saved here uses PyTorch's key names,
// so `model.load_state_dict(safetensors.torch.load_file(path))` reads it in PyTorch, and a file
// that PyTorch wrote loads into the same ember model.
//
// Writing is atomic: the file is written under a temporary name in the same folder, flushed and
// fsync'ed, then renamed over `path`; a crash or error mid-write leaves any previous file intact.
// Reading checks the header strictly (length in range, valid JSON, known dtypes, data_offsets
// inside the data, no overlaps or gaps, byte sizes equal to dtype size x shape) and reports the
// first problem as an ember::Error naming the file.
#include <map>
#include <string>

#include "ember/nn/module.h"
#include "ember/optim/optimizer.h"
#include "ember/optim/scheduler.h"
#include "ember/state_dict.h"

namespace ember {

// ---- files of named tensors + string metadata ----
void save_safetensors(const std::string& path, const StateDict& state);
void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});
// Loads every tensor onto the CPU.
StateDict load_safetensors(const std::string& path);

// ---- modules, optimizers and schedulers (their state_dict in one file each) ----
void save(const nn::Module& module, const std::string& path);
void load(nn::Module& module, const std::string& path, bool strict = true);
void save(const optim::Optimizer& optimizer, const std::string& path);
void load(optim::Optimizer& optimizer, const std::string& path);
void save(const optim::LRScheduler& scheduler, const std::string& path);
void load(optim::LRScheduler& scheduler, const std::string& path);
// Several in one file: combine state dicts under prefixes with StateDict::insert, e.g.
//   StateDict all; all.insert("model.", {model.state_dict(), {}}); all.insert("optim.", opt.state_dict());
//   save_safetensors(path, all);  ...
//   model.load_state_dict(load_safetensors(path).extract("model.").tensors);

}  // namespace ember
