// save/load for modules, optimizers and schedulers: their state dicts as safetensors files.
#include "ember/checkpoint.h"

namespace ember {

namespace {
// Runs `body`, prefixing any ember::Error with what was being loaded from where.
template <class F>
void with_context(const char* what, const std::string& path, F body) {
  try {
    body();
  } catch (const Error& e) {
    fail("load({}): {}: {}", what, path, e.what());
  }
}
}  // namespace

void save(const nn::Module& module, const std::string& path) {
  // "format": "pt" is what safetensors.torch writes; some PyTorch tools look for it.
  save_safetensors(path, module.state_dict(), {{"format", "pt"}});
}

void load(nn::Module& module, const std::string& path, bool strict) {
  StateDict state = load_safetensors(path);
  with_context("module", path, [&] { module.load_state_dict(state.tensors, strict); });
}

void save(const optim::Optimizer& optimizer, const std::string& path) {
  save_safetensors(path, optimizer.state_dict());
}

void load(optim::Optimizer& optimizer, const std::string& path) {
  StateDict state = load_safetensors(path);
  with_context("optimizer", path, [&] { optimizer.load_state_dict(state); });
}

void save(const optim::LRScheduler& scheduler, const std::string& path) {
  save_safetensors(path, scheduler.state_dict());
}

void load(optim::LRScheduler& scheduler, const std::string& path) {
  StateDict state = load_safetensors(path);
  with_context("scheduler", path, [&] { scheduler.load_state_dict(state); });
}

}  // namespace ember
