// bench_cuda_losses: PLD and OPL forward + backward on the GPU, beside the same computations
// written in PyTorch (the papers' reference formulations: pld.md's Appendix C code, opl.md's
// Gram-matrix code, variant A) on the same GPU in the same run. No goal: the issue asks for the
// timings. Prints "RESULT <name> <value>" lines for scripts/gpu_check.sh; exits 0 without a GPU.
//
// Timing: the best of several repetitions of `iters` back-to-back fwd + bwd calls followed by a
// device synchronisation (ember queues its work on one stream; PyTorch is timed the same way).
#include <ember/ember.h>
#include <ember/losses/opl.h>
#include <ember/losses/pld.h>

#include <cstdio>
#include <string>

#include "bench_util.h"
#include "torch_timing.h"

using namespace ember;
using namespace ember::bench;

namespace {

double ms_per_step(const std::function<void()>& step) {
  return best_per_call(
             step, 20, 5, [] { cuda::synchronize(); }, 3) *
         1e3;
}

struct Case {
  std::string name;  // RESULT key stem, e.g. "pld_n256"
  int64_t rows, cols;
};

const Case kPld[] = {{"pld_n256_c1000", 256, 1000}, {"pld_n4096_c1000", 4096, 1000}};
const Case kOpl[] = {{"opl_b256_d512", 256, 512}, {"opl_b1024_d2048", 1024, 2048}};

void bench_ember() {
  const Device gpu = Device::cuda();
  for (const Case& c : kPld) {
    Tensor s = randn({c.rows, c.cols}).to(gpu).requires_grad_();
    Tensor t = randn({c.rows, c.cols}).to(gpu);
    Tensor y = randint(0, c.cols, {c.rows}).to(gpu);
    print_result(c.name + "_ms_ember", ms_per_step([&] {
                   s.set_grad(Tensor());
                   losses::pld(s, t, y).backward();
                 }));
  }
  for (const Case& c : kOpl) {
    Tensor f = rand({c.rows, c.cols}).to(gpu).requires_grad_();  // post-ReLU features are >= 0
    Tensor y = randint(0, 100, {c.rows}).to(gpu);
    print_result(c.name + "_ms_ember", ms_per_step([&] {
                   f.set_grad(Tensor());
                   losses::opl(f, y).backward();
                 }));
  }
}

// The references, written as the papers' code computes them.
const char* kTorchScript = R"(
import torch
import torch.nn.functional as F
torch.backends.cuda.matmul.allow_tf32 = False  # ember's default: full float32 GEMMs

def pld(s, t, y, tau=1.0):  # pld.md, Appendix C: ascending teacher order, label moved last
    n, c = s.shape
    order = torch.sort(t, dim=1).indices
    rest = order[order != y[:, None]].view(n, c - 1)
    perm = torch.cat([rest, y[:, None]], 1)
    s_perm, t_perm = s.gather(1, perm), t.gather(1, perm)
    per_pos = torch.logcumsumexp(s_perm, 1) - s_perm
    return (torch.softmax(t_perm / tau, 1) * per_pos).sum(-1).mean()

def opl(f, y, gamma=0.5):  # opl.md, variant A (the README's loss.py)
    f = F.normalize(f, p=2, dim=1)
    same = y[:, None] == y[None, :]
    eye = torch.eye(len(y), dtype=torch.bool, device=f.device)
    pos, neg = (same & ~eye).float(), (~same).float()
    g = f @ f.t()
    return (1.0 - (pos * g).sum() / (pos.sum() + 1e-6)) + gamma * (neg * g).sum() / (neg.sum() + 1e-6)

def ms_per_step(step):
    return best_seconds(step) * 1e3

torch.manual_seed(0)
for name, n, c in CASES_PLD:
    s = torch.randn(n, c, device="cuda", requires_grad=True); t = torch.randn(n, c, device="cuda")
    y = torch.randint(0, c, (n,), device="cuda")
    def step():
        s.grad = None; pld(s, t, y).backward()
    print("RESULT %s_ms_torch %.6g" % (name, ms_per_step(step)))
for name, b, d in CASES_OPL:
    f = torch.rand(b, d, device="cuda", requires_grad=True); y = torch.randint(0, 100, (b,), device="cuda")
    def step():
        f.grad = None; opl(f, y).backward()
    print("RESULT %s_ms_torch %.6g" % (name, ms_per_step(step)))
)";

std::string python_cases(const Case* cases, size_t n) {
  std::string list = "[";
  for (size_t i = 0; i < n; ++i)
    list += fmt::format("(\"{}\", {}, {}), ", cases[i].name, cases[i].rows, cases[i].cols);
  return list + "]";
}

}  // namespace

int main() {
  if (!cuda::is_available()) {
    std::printf("bench_cuda_losses: no GPU, nothing to measure\n");
    return 0;
  }
  manual_seed(0);
  bench_ember();
  const std::string python = find_torch_python();
  if (python.empty()) {
    std::printf("PyTorch reference: skipped (no python3 can import torch; set EMBER_PYTHON)\n");
    return 0;
  }
  const std::string script =
      fmt::format("{}\nCASES_PLD = {}\nCASES_OPL = {}\n{}", kTorchTiming, python_cases(kPld, std::size(kPld)),
                  python_cases(kOpl, std::size(kOpl)), kTorchScript);
  if (auto out = run_python_output(python, script))
    std::fputs(out->c_str(), stdout);
  else
    std::printf("PyTorch reference: the script failed (run with %s)\n", python.c_str());
  return 0;
}
