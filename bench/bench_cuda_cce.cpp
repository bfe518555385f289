// bench_cuda_cce: Cut Cross-Entropy on the GPU at the paper's Gemma 2 setting (Table 1 of
// Wijmans et al., ICLR 2025: N = 8192 tokens, D = 2304, V = 256000, bf16), beside the
// materialised baseline measured in the same run, and beside the paper's A100 numbers.
//
//   bench_cuda_cce [--N n] [--D d] [--V v] [--rounds r] [--no-torch] [--torch-compile] [--other-cores]
//
// Contenders (loss = mean cross-entropy of E C^T against random targets):
//   cce          ember::losses::cut_cross_entropy (tiled tensor-core kernels, filtering and
//                vocabulary sorting on, atomics; dE and dC summed in bf16 in place, so the
//                gradient memory is the lower bound)
//   cce-fp32     the same with CCEOptions::accumulate_fp32 (fp32 scratch for dE and dC: the
//                paper's CCE-Kahan memory, ~3x the bound); "lm" data only (memory does not
//                depend on the data)
//   cce-det      the same with CCEOptions::deterministic (fp32 scratch too)
//   cce-nomask   cce with the forward's signal mask off (losses/cce_testing.h): the backward then
//                computes every tile's logits before filtering, as in the paper
//   ember-mat    ember: logits = E.matmul(C.t()) (bf16 on cuBLAS), cross_entropy(logits.to(float32))
//   torch        PyTorch eager: F.cross_entropy((E @ C.T).float(), x), the paper's "baseline"
//   torch.compile  (with --torch-compile) the same function through torch.compile
// With --other-cores, instead: cce on the bf16 kernels' other cores, wmma and mma_wide
// (losses/cce_testing.h), each beside the default mma core's gradients.
// scripts/gpu_check.sh runs that in a process of its own, so that a fault in a new kernel cannot
// take the established rows with it.
// For each: forward ("loss"), backward ("grad") and forward + backward time (best of `rounds`,
// each after a warm-up), and the peak memory above what was allocated before the step (the inputs),
// as the paper's table reports it. The lower bound is the bf16 gradients dE + dC.
//
// Data. Random bf16 logits are flat (every softmax entry ~1/V), the worst case for CCE: gradient
// filtering skips nothing. The paper's inputs are a trained model's, whose softmax is peaked, so
// most tiles are negligible. Both are measured: "flat" (std-1 logits, uniform targets) and "lm"
// (bench_cce.cpp's language-model-like logits: a Zipf log-prior on column 0 plus context noise,
// targets drawn from the prior).
//
// Output: a table, and `RESULT key value` lines that scripts/gpu_check.sh puts in its summary.
#include <ember/cuda.h>
#include <ember/ember.h>
#include <ember/losses/cce.h>
#include <ember/losses/standard.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <string>

#include "bench_util.h"
#include "losses/cce_testing.h"

using namespace ember;

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
constexpr double kMiB = 1024.0 * 1024.0;

struct Measure {
  double fwd_ms = 1e30, bwd_ms = 1e30, both_ms = 1e30;
  double fwd_mib = 0, bwd_mib = 0, both_mib = 0;  // peak above the memory in use before
  double loss = 0;
  std::string error;
};

struct Problem {
  std::string name;
  Tensor E, C, x;  // bf16 [N, D], bf16 [V, D], int64 [N], on the GPU
};

Problem make_problem(const std::string& kind, int64_t N, int64_t D, int64_t V) {
  const TensorOptions gpu = TensorOptions(kFloat32).device(Device::cuda());
  if (kind == "flat") {
    const double scale = std::pow(static_cast<double>(D), -0.25);  // logits with std 1
    return {kind, (randn({N, D}, gpu) * scale).to(kBFloat16), (randn({V, D}, gpu) * scale).to(kBFloat16),
            randint(0, V, {N}).to(Device::cuda())};
  }
  const double alpha = 4.0, noise = 3.0;
  const double scale = std::sqrt(noise / std::sqrt(static_cast<double>(D - 1)));
  Tensor E = randn({N, D}, gpu) * scale, C = randn({V, D}, gpu) * scale;
  E.narrow(1, 0, 1).fill_(1.0);
  C.narrow(1, 0, 1).copy_(
      (log(arange(1.0, static_cast<double>(V) + 1.0, 1.0, gpu)) * -alpha).reshape({V, 1}));
  std::vector<double> weight(static_cast<size_t>(V));
  for (int64_t j = 0; j < V; ++j) weight[j] = std::pow(static_cast<double>(j + 1), -alpha);
  std::mt19937_64 gen(1);
  std::discrete_distribution<int64_t> zipf(weight.begin(), weight.end());
  std::vector<int64_t> t(static_cast<size_t>(N));
  for (int64_t& v : t) v = zipf(gen);
  return {kind, E.to(kBFloat16), C.to(kBFloat16), tensor<int64_t>(t, {N}).to(Device::cuda())};
}

double peak_above(int64_t before) {
  return static_cast<double>(cuda::memory_stats().peak_bytes - before) / kMiB;
}

// Times `loss_of` (forward) and the backward of its result, `rounds` times after one warm-up.
Measure measure(const Problem& p, const std::function<Tensor(const Tensor&, const Tensor&)>& loss_of,
                int rounds) {
  Measure m;
  Tensor E = p.E.detach().requires_grad_(), C = p.C.detach().requires_grad_();
  try {
    for (int r = 0; r <= rounds; ++r) {
      E.set_grad(Tensor());
      C.set_grad(Tensor());
      cuda::synchronize();
      cuda::reset_peak_memory_stats();
      const int64_t before = cuda::memory_stats().current_bytes;
      const double t0 = now_s();
      Tensor loss = loss_of(E, C);
      cuda::synchronize();
      const double t1 = now_s();
      const double fwd_mib = peak_above(before);
      cuda::reset_peak_memory_stats();
      loss.backward();
      cuda::synchronize();
      const double t2 = now_s();
      const double bwd_mib = peak_above(before);
      if (r == 0) continue;  // warm-up: allocator, kernel attributes
      m.fwd_ms = std::min(m.fwd_ms, (t1 - t0) * 1e3);
      m.bwd_ms = std::min(m.bwd_ms, (t2 - t1) * 1e3);
      m.both_ms = std::min(m.both_ms, (t2 - t0) * 1e3);
      m.fwd_mib = fwd_mib;
      m.bwd_mib = bwd_mib;
      m.both_mib = std::max(fwd_mib, bwd_mib);
      m.loss = loss.to(kFloat64).item<double>();
    }
  } catch (const Error& e) {
    m.error = e.what();
  }
  E.set_grad(Tensor());
  C.set_grad(Tensor());
  cuda::empty_cache();  // hand cached blocks back (PyTorch runs next, in another process)
  return m;
}

using ember::bench::print_result;

// Runs `body` with the CUDA kernels' bf16 core set to `core`, restoring the previous choice.
template <class Body>
auto with_core(losses::detail::CCECudaCore core, Body&& body) {
  const losses::detail::CCECudaCore saved = losses::detail::cce_cuda_core();
  losses::detail::cce_cuda_core() = core;
  struct Restore {
    losses::detail::CCECudaCore saved;
    ~Restore() { losses::detail::cce_cuda_core() = saved; }
  } restore{saved};
  return body();
}

// max |a - b| / max |b| over two gradients, in float32.
double relative_gap(const Tensor& a, const Tensor& b) {
  const double scale = b.to(kFloat32).abs().max().item<double>();
  const double gap = (a.to(kFloat32) - b.to(kFloat32)).abs().max().item<double>();
  return scale > 0 ? gap / scale : gap;
}

// Two bf16 cores on the same problem: loss, dE and dC side by side (bf16 atomics add in a
// varying order, so the gradients differ by rounding even between runs of one core).
void compare_cores(const Problem& p, losses::detail::CCECudaCore core, const char* name) {
  using losses::detail::CCECudaCore;
  auto grads = [&](CCECudaCore core) {
    return with_core(core, [&] {
      Tensor E = p.E.detach().requires_grad_(), C = p.C.detach().requires_grad_();
      Tensor loss = losses::cut_cross_entropy(E, C, p.x);
      loss.backward();
      return std::vector<Tensor>{loss.detach(), E.grad(), C.grad()};
    });
  };
  const std::vector<Tensor> w = grads(CCECudaCore::mma), m = grads(core);
  const double loss_gap = std::abs(m[0].item<double>() - w[0].item<double>());
  const double dE_gap = relative_gap(m[1], w[1]), dC_gap = relative_gap(m[2], w[2]);
  std::printf("  %s vs mma core: |loss diff| %.3g, dE %.3g, dC %.3g (max diff / max)\n", name, loss_gap,
              dE_gap, dC_gap);
  const std::string key = "cce_" + p.name + "_" + name;
  print_result(key + "_loss_gap", loss_gap);
  print_result(key + "_dE_gap", dE_gap);
  print_result(key + "_dC_gap", dC_gap);
  cuda::empty_cache();
}

void print_row(const std::string& name, const Measure& m) {
  if (!m.error.empty()) {
    std::printf("  %-22s n/a: %.200s\n", name.c_str(), m.error.c_str());
    return;
  }
  std::printf("  %-22s %8.1f ms %9.1f MiB | %8.1f ms %9.1f MiB | %8.1f ms %9.1f MiB | loss %.6f\n",
              name.c_str(), m.fwd_ms, m.fwd_mib, m.bwd_ms, m.bwd_mib, m.both_ms, m.both_mib, m.loss);
}

// ---- PyTorch (embedded script; skipped when `import torch` fails) ----

const char* kTorchScript = R"PY(
import sys, time, json
try:
    import torch
    import torch.nn.functional as F
except Exception as e:
    print(json.dumps({"error": "import torch failed: %s" % e})); sys.exit(0)
N, D, V, rounds, kind, compiled = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6] == "1"
dev = "cuda"
torch.manual_seed(0)
if kind == "flat":
    s = D ** -0.25
    E = (torch.randn(N, D, device=dev) * s).bfloat16(); C = (torch.randn(V, D, device=dev) * s).bfloat16()
    x = torch.randint(0, V, (N,), device=dev)
else:
    s = (3.0 / (D - 1) ** 0.5) ** 0.5
    E = torch.randn(N, D, device=dev) * s; C = torch.randn(V, D, device=dev) * s
    E[:, 0] = 1.0; C[:, 0] = -4.0 * torch.log(torch.arange(1, V + 1, device=dev, dtype=torch.float32))
    E = E.bfloat16(); C = C.bfloat16()
    w = torch.arange(1, V + 1, device=dev, dtype=torch.float64) ** -4.0
    x = torch.multinomial(w / w.sum(), N, replacement=True)
def loss_fn(E, C, x):
    return F.cross_entropy((E @ C.T).float(), x)
fn = torch.compile(loss_fn) if compiled else loss_fn
E.requires_grad_(True); C.requires_grad_(True)
best = {"fwd": 1e30, "bwd": 1e30, "both": 1e30}
mem = {}
for r in range(rounds + 2):
    E.grad = None; C.grad = None
    torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    t0 = time.perf_counter(); loss = fn(E, C, x); torch.cuda.synchronize(); t1 = time.perf_counter()
    fwd_mib = (torch.cuda.max_memory_allocated() - before) / 2**20
    torch.cuda.reset_peak_memory_stats()
    loss.backward(); torch.cuda.synchronize(); t2 = time.perf_counter()
    bwd_mib = (torch.cuda.max_memory_allocated() - before) / 2**20
    if r < 2: continue  # warm-up (and compilation)
    best["fwd"] = min(best["fwd"], (t1 - t0) * 1e3); best["bwd"] = min(best["bwd"], (t2 - t1) * 1e3)
    best["both"] = min(best["both"], (t2 - t0) * 1e3)
    mem = {"fwd_mib": fwd_mib, "bwd_mib": bwd_mib, "both_mib": max(fwd_mib, bwd_mib)}
print(json.dumps(dict(best, **mem, loss=loss.item(), torch=torch.__version__)))
)PY";

double json_number(const std::string& line, const std::string& key) {
  const size_t at = line.find("\"" + key + "\":");
  return at == std::string::npos ? NAN : std::strtod(line.c_str() + at + key.size() + 3, nullptr);
}

std::string find_torch_python() {
  std::vector<std::string> candidates = {"python3", "/usr/bin/python3"};
  if (const char* chosen = std::getenv("EMBER_PYTHON")) candidates = {chosen};
  for (const std::string& python : candidates)
    if (std::system(("'" + python + "' -c 'import torch' >/dev/null 2>&1").c_str()) == 0) return python;
  return "";
}

Measure torch_measure(const std::string& python, const std::string& script, int64_t N, int64_t D, int64_t V,
                      int rounds, const std::string& kind, bool compiled) {
  Measure m;
  const std::string cmd = "timeout 150 '" + python + "' " + script + " " + std::to_string(N) + " " +
                          std::to_string(D) + " " + std::to_string(V) + " " + std::to_string(rounds) + " " +
                          kind + " " + (compiled ? "1" : "0") + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) {
    m.error = "cannot start python";
    return m;
  }
  std::string out, last;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, pipe)) {
    out += buf;
    last = buf;
  }
  pclose(pipe);
  if (last.find("\"both\"") == std::string::npos) {
    m.error = out.size() > 400 ? out.substr(out.size() - 400) : out;
    return m;
  }
  m.fwd_ms = json_number(last, "fwd");
  m.bwd_ms = json_number(last, "bwd");
  m.both_ms = json_number(last, "both");
  m.fwd_mib = json_number(last, "fwd_mib");
  m.bwd_mib = json_number(last, "bwd_mib");
  m.both_mib = json_number(last, "both_mib");
  m.loss = json_number(last, "loss");
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // lines survive a timeout that kills the run
  int64_t N = 8192, D = 2304, V = 256000;
  int rounds = 3;
  bool torch = true, torch_compile = false, other_cores = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::atoll(argv[++i]) : 0; };
    if (a == "--N")
      N = next();
    else if (a == "--D")
      D = next();
    else if (a == "--V")
      V = next();
    else if (a == "--rounds")
      rounds = static_cast<int>(next());
    else if (a == "--no-torch")
      torch = false;
    else if (a == "--torch-compile")
      torch_compile = true;
    else if (a == "--other-cores")
      other_cores = true;
    else {
      std::fprintf(stderr,
                   "usage: %s [--N n] [--D d] [--V v] [--rounds r] [--no-torch] [--torch-compile] "
                   "[--other-cores]\n",
                   argv[0]);
      return 2;
    }
  }
  if (!cuda::is_available()) {
    std::printf("bench_cuda_cce: no CUDA device; nothing to measure\n");
    return 0;
  }
  const double lower_bound_mib = static_cast<double>((N + V) * D * 2) / kMiB;  // bf16 dE + dC
  std::printf("Cut Cross-Entropy, N = %lld, D = %lld, V = %lld, bf16 inputs; best of %d\n",
              static_cast<long long>(N), static_cast<long long>(D), static_cast<long long>(V), rounds);
  std::printf("lower bound (bf16 dE + dC): %.1f MiB\n", lower_bound_mib);
  std::printf("  %-22s %23s | %23s | %23s\n", "", "loss (forward)", "gradient (backward)", "loss + gradient");

  std::string python, script;
  if (torch) {
    python = find_torch_python();
    if (python.empty()) {
      std::printf(
          "  (PyTorch skipped: import torch failed in python3 and /usr/bin/python3; set EMBER_PYTHON)\n");
    } else {
      char path[] = "/tmp/bench_cuda_cce_XXXXXX";
      const int fd = mkstemp(path);
      if (fd >= 0) {
        close(fd);
        std::ofstream(path) << kTorchScript;
        script = path;
      }
    }
  }

  // The forward is one logits product (2 N V D flops); the backward at least one more (the
  // recompute) plus 4 N V D per kept tile.
  const double logits_tflop =
      2.0 * static_cast<double>(N) * static_cast<double>(V) * static_cast<double>(D) / 1e12;
  for (const std::string kind : {"lm", "flat"}) {
    std::printf("%s logits:\n", kind.c_str());
    Problem p = make_problem(kind, N, D, V);
    std::map<std::string, Measure> ms;
    auto tflops = [&](const std::string& core, const Measure& m) {
      if (!m.error.empty()) return;
      std::printf("  %s core: forward %.0f TFLOP/s, backward >= %.0f TFLOP/s\n", core.c_str(),
                  logits_tflop / (m.fwd_ms / 1e3), logits_tflop / (m.bwd_ms / 1e3));
      print_result("cce_" + kind + "_" + core + "_fwd_tflops", logits_tflop / (m.fwd_ms / 1e3));
    };
    if (other_cores) {
      // The other cores: time, then their gradients against the default mma core's.
      for (const auto& [core, name] : {std::pair{losses::detail::CCECudaCore::wmma, "wmma"},
                                       std::pair{losses::detail::CCECudaCore::mma_wide, "mma_wide"}}) {
        const Measure& m = ms[name] = with_core(core, [&] {
          return measure(
              p, [&](const Tensor& E, const Tensor& C) { return losses::cut_cross_entropy(E, C, p.x); },
              rounds);
        });
        print_row(std::string("cce (") + name + " core)", m);
        tflops(name, m);
        if (m.error.empty())
          print_result("cce_" + kind + "_" + name + "_mem_over_bound", m.both_mib / lower_bound_mib);
        compare_cores(p, core, name);
      }
    } else {
      ms["cce"] = measure(
          p, [&](const Tensor& E, const Tensor& C) { return losses::cut_cross_entropy(E, C, p.x); }, rounds);
      print_row("cce", ms["cce"]);
      tflops("mma", ms["cce"]);
      // Without the signal mask the backward computes every tile's logits before filtering.
      losses::detail::cce_signal_mask() = false;
      ms["nomask"] = measure(
          p, [&](const Tensor& E, const Tensor& C) { return losses::cut_cross_entropy(E, C, p.x); }, rounds);
      losses::detail::cce_signal_mask() = true;
      print_row("cce without the signal mask", ms["nomask"]);
      if (kind == "lm") {
        losses::CCEOptions fp32;
        fp32.accumulate_fp32 = true;
        ms["fp32"] = measure(
            p, [&](const Tensor& E, const Tensor& C) { return losses::cut_cross_entropy(E, C, p.x, fp32); },
            rounds);
        print_row("cce accumulate_fp32", ms["fp32"]);
      }
      losses::CCEOptions deterministic;
      deterministic.deterministic = true;
      ms["det"] = measure(
          p,
          [&](const Tensor& E, const Tensor& C) {
            return losses::cut_cross_entropy(E, C, p.x, deterministic);
          },
          rounds);
      print_row("cce deterministic", ms["det"]);
      if (kind == "lm") {  // the baseline's cost does not depend on the data
        ms["mat"] = measure(
            p,
            [&](const Tensor& E, const Tensor& C) {
              return losses::cross_entropy(E.matmul(C.t()).to(kFloat32), p.x);
            },
            1);
        print_row("ember materialised", ms["mat"]);
      }
      if (!script.empty()) {
        ms["torch"] = torch_measure(python, script, N, D, V, rounds, kind, false);
        print_row("torch eager (baseline)", ms["torch"]);
        if (torch_compile && kind == "lm") {
          ms["compile"] = torch_measure(python, script, N, D, V, rounds, kind, true);
          print_row("torch.compile", ms["compile"]);
        }
      }
      const Measure& c = ms["cce"];
      if (ms.count("fp32") && ms["fp32"].error.empty())
        print_result("cce_" + kind + "_fp32_mem_over_bound", ms["fp32"].both_mib / lower_bound_mib);
      if (c.error.empty()) {
        print_result("cce_" + kind + "_mem_over_bound", c.both_mib / lower_bound_mib);
        for (const char* base : {"torch", "mat"})
          if (ms.count(base) && ms[base].error.empty())
            print_result("cce_" + kind + "_time_over_" + base, c.both_ms / ms[base].both_ms);
      }
    }
    for (const auto& [name, m] : ms) {
      if (!m.error.empty()) continue;
      const std::string key = "cce_" + kind + "_" + name;
      print_result(key + "_fwd_ms", m.fwd_ms);
      print_result(key + "_bwd_ms", m.bwd_ms);
      print_result(key + "_both_ms", m.both_ms);
      print_result(key + "_fwd_mib", m.fwd_mib);
      print_result(key + "_both_mib", m.both_mib);
    }
  }
  std::printf(
      "paper, Table 1 (A100-SXM4 80 GB): CCE 46 ms / 1 MB loss, 100 ms / 1163 MB gradient, 145 ms / 1164 MB "
      "loss + gradient; baseline 82 ms / 24000 MB, 122 ms / 16000 MB, 208 ms / 28000 MB; torch.compile "
      "49 ms / 4000 MB, 92 ms / 12000 MB, 143 ms / 16000 MB\n");
  if (!script.empty()) std::remove(script.c_str());
  return 0;
}
