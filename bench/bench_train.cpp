// bench_train: the time of one training step (forward, backward, optimizer step) of the two models of
// the Fashion-MNIST example and of a small transformer language model (the model class the Cut
// Cross-Entropy paper trains), ember against PyTorch with the same number of threads:
//
//   mlp  784-256-256-10, batch 128, SGD with momentum 0.9
//   cnn  conv 1->32 3x3, ReLU, conv 32->64 3x3, ReLU, max-pool 2, linear 9216->128, ReLU,
//        linear 128->10, batch 64, Adam
//   lm   token embedding 2048 x 256, two causal pre-norm transformer blocks (4 heads, GELU MLP
//        256-1024-256), LayerNorm, linear 256->2048; 8 sequences of 128 tokens, Adam. (No position
//        embedding: it would add one elementwise op and does not change what is timed.) PyTorch
//        runs nn.TransformerEncoderLayer(norm_first=True, activation="gelu", dropout=0) with an
//        additive causal mask.
//
// The goal is ember <= 0.8x PyTorch's step time. Each contender is measured in rounds, alternating
// (ember, PyTorch, ember, ...); the ratio is the median over rounds of the two best step times of
// that round, so background load on a shared machine hits both alike. PyTorch runs as an embedded Python
// script and is skipped cleanly when `import torch` fails.
//
//   bench_train [--threads N] [--rounds R] [--profile] [--cpu-time]
//
// --profile adds, per model, the forward and backward time of every layer on its own, which is
// where to look when the step is slow. --cpu-time measures process CPU time instead of wall time
// (for a machine busy with other work; best with --threads 1 and OMP_WAIT_POLICY=passive, so that
// idle threads do not spin).
#include <ember/ember.h>
#include <ember/losses.h>
#include <ember/nn.h>
#include <ember/optim.h>
#include <omp.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"

using namespace ember;
using ember::bench::find_torch_python;

namespace {

// Wall-clock seconds, or with --cpu-time the CPU seconds of the whole process (all threads): on a
// machine busy with other work, CPU time still says how much work a step took.
bool g_cpu_time = false;

double now() {
  if (g_cpu_time) {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double since(double t0) { return now() - t0; }

struct Workload {
  std::string name, torch_name;
  int64_t batch;
  Shape input;  // one example
  int steps;    // per round
  std::function<std::shared_ptr<nn::Sequential>()> make;
  std::function<std::unique_ptr<optim::Optimizer>(const std::vector<Tensor>&)> optimizer;
  int64_t tokens = 0;  // when > 0, the input holds token ids below this, and each position has a target
};

std::vector<Workload> workloads() {
  return {
      {"mlp 784-256-256-10, batch 128, SGD momentum",
       "mlp",
       128,
       {784},
       60,
       [] {
         return std::make_shared<nn::Sequential>(
             std::make_shared<nn::Linear>(784, 256), std::make_shared<nn::ReLU>(),
             std::make_shared<nn::Linear>(256, 256), std::make_shared<nn::ReLU>(),
             std::make_shared<nn::Linear>(256, 10));
       },
       [](const std::vector<Tensor>& p) {
         optim::SGDOptions o;
         o.lr = 0.01;
         o.momentum = 0.9;
         return std::unique_ptr<optim::Optimizer>(new optim::SGD(p, o));
       }},
      {"cnn (conv32, conv64, pool, fc128), batch 64, Adam",
       "cnn",
       64,
       {1, 28, 28},
       8,
       [] {
         return std::make_shared<nn::Sequential>(
             std::make_shared<nn::Conv2d>(1, 32, 3), std::make_shared<nn::ReLU>(),
             std::make_shared<nn::Conv2d>(32, 64, 3), std::make_shared<nn::ReLU>(),
             std::make_shared<nn::MaxPool2d>(2), std::make_shared<nn::Flatten>(),
             std::make_shared<nn::Linear>(9216, 128), std::make_shared<nn::ReLU>(),
             std::make_shared<nn::Linear>(128, 10));
       },
       [](const std::vector<Tensor>& p) {
         return std::unique_ptr<optim::Optimizer>(new optim::Adam(p, {}));
       }},
      {"lm (embed 256, 2 blocks, vocab 2048), 8 x 128 tokens, Adam",
       "lm",
       8,
       {128},
       4,
       [] {
         auto model = std::make_shared<nn::Sequential>(std::make_shared<nn::Embedding>(2048, 256));
         for (int i = 0; i < 2; ++i)
           model->push_back(std::make_shared<nn::TransformerBlock>(256, 4, 1024, 0.0, /*causal=*/true));
         model->push_back(std::make_shared<nn::LayerNorm>(256));
         model->push_back(std::make_shared<nn::Linear>(256, 2048));
         return model;
       },
       [](const std::vector<Tensor>& p) { return std::unique_ptr<optim::Optimizer>(new optim::Adam(p, {})); },
       2048},
  };
}

struct StepTimes {
  double step = 1e30, forward = 1e30, backward = 1e30, update = 1e30;  // best seen, seconds
  void keep_best(const StepTimes& o) {
    step = std::min(step, o.step);
    forward = std::min(forward, o.forward);
    backward = std::min(backward, o.backward);
    update = std::min(update, o.update);
  }
};

// Ember's model, optimizer and one fixed batch, kept across rounds.
struct EmberRun {
  std::shared_ptr<nn::Sequential> model;
  std::unique_ptr<optim::Optimizer> opt;
  Tensor x, y;

  explicit EmberRun(const Workload& w) {
    manual_seed(0);
    model = w.make();
    opt = w.optimizer(model->parameters());
    Shape shape = w.input;
    shape.insert(shape.begin(), w.batch);
    x = w.tokens > 0 ? randint(0, w.tokens, shape) : randn(shape);
    y = w.tokens > 0 ? randint(0, w.tokens, shape).reshape({-1}) : randint(0, 10, {w.batch});
  }

  // The loss over every position: the logits' last dim holds the classes.
  Tensor loss() { return losses::cross_entropy(flat_logits(model->forward(x)), y); }
  static Tensor flat_logits(const Tensor& out) { return out.reshape({-1, out.size(-1)}); }

  StepTimes round(int steps) {
    StepTimes best;
    for (int s = 0; s < steps; ++s) {
      StepTimes t;
      double t0 = now();
      opt->zero_grad();
      Tensor loss = this->loss();
      t.forward = since(t0);
      double t1 = now();
      loss.backward();
      t.backward = since(t1);
      double t2 = now();
      opt->step();
      t.update = since(t2);
      t.step = since(t0);
      best.keep_best(t);
    }
    return best;
  }
};

// ---- PyTorch ----

const char* kTorchScript = R"PY(
import json, sys, time
try:
    import torch
    import torch.nn as nn
except Exception as e:
    print(json.dumps({"error": "import torch failed: %s" % e})); sys.exit(0)
model_name, threads, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
clock = time.process_time if sys.argv[4] == "cpu" else time.perf_counter
torch.set_num_threads(threads)
torch.manual_seed(0)
if model_name == "mlp":
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(128, 784); y = torch.randint(0, 10, (128,))
elif model_name == "cnn":
    model = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(9216, 128), nn.ReLU(), nn.Linear(128, 10))
    opt = torch.optim.Adam(model.parameters())
    x = torch.randn(64, 1, 28, 28); y = torch.randint(0, 10, (64,))
else:
    B, T, E, V = 8, 128, 256, 2048
    class LM(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(V, E)
            self.blocks = nn.ModuleList([nn.TransformerEncoderLayer(E, 4, 4 * E, 0.0, activation="gelu",
                                         batch_first=True, norm_first=True) for _ in range(2)])
            self.norm, self.head = nn.LayerNorm(E), nn.Linear(E, V)
            self.mask = torch.triu(torch.full((T, T), float("-inf")), 1)
        def forward(self, x):
            h = self.embed(x)
            for block in self.blocks:
                h = block(h, src_mask=self.mask)
            return self.head(self.norm(h)).reshape(-1, V)
    model = LM()
    opt = torch.optim.Adam(model.parameters())
    x = torch.randint(0, V, (B, T)); y = torch.randint(0, V, (B * T,))
loss_fn = nn.CrossEntropyLoss()
best = {"step": 1e30, "forward": 1e30, "backward": 1e30, "update": 1e30}
for s in range(steps + 2):  # the first two warm up
    t0 = clock()
    opt.zero_grad()
    loss = loss_fn(model(x), y)
    t1 = clock()
    loss.backward()
    t2 = clock()
    opt.step()
    t3 = clock()
    if s >= 2:
        for k, v in (("step", t3 - t0), ("forward", t1 - t0), ("backward", t2 - t1), ("update", t3 - t2)):
            best[k] = min(best[k], v)
best["torch"] = torch.__version__
print(json.dumps(best))
)PY";

struct TorchResult {
  std::optional<StepTimes> times;
  std::string version, why_not;
};

// Pulls "key": number out of the script's one-line JSON answer.
std::optional<double> json_number(const std::string& line, const std::string& key) {
  size_t at = line.find("\"" + key + "\":");
  if (at == std::string::npos) return std::nullopt;
  return std::strtod(line.c_str() + at + key.size() + 3, nullptr);
}

std::string json_string(const std::string& line, const std::string& key) {
  size_t at = line.find("\"" + key + "\": \"");
  if (at == std::string::npos) return "";
  size_t begin = at + key.size() + 5, end = line.find('"', begin);
  return line.substr(begin, end - begin);
}

TorchResult torch_round(const std::string& python, const std::string& script, const std::string& model,
                        int threads, int steps) {
  TorchResult r;
  FILE* pipe = popen(fmt::format("'{}' {} {} {} {} {} 2>&1", python, script, model, threads, steps,
                                 g_cpu_time ? "cpu" : "wall")
                         .c_str(),
                     "r");
  if (!pipe) return {std::nullopt, "", "cannot start python3"};
  std::string out, last;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, pipe)) {
    out += buf;
    last = buf;
  }
  int status = pclose(pipe);
  if (std::string err = json_string(last, "error"); !err.empty()) return {std::nullopt, "", err};
  auto step = json_number(last, "step");
  if (status != 0 || !step) return {std::nullopt, "", "the PyTorch script failed: " + out};
  r.times = StepTimes{*step, *json_number(last, "forward"), *json_number(last, "backward"),
                      *json_number(last, "update")};
  r.version = json_string(last, "torch");
  return r;
}

// ---- per-layer profile ----

void profile(const Workload& w) {
  EmberRun run(w);
  std::printf("  per layer (best of 5, forward / backward of that layer alone, ms):\n");
  Tensor x = run.x;
  for (size_t i = 0; i < run.model->size(); ++i) {
    const auto& layer = (*run.model)[i];
    // (token ids have no gradient)
    auto fresh_input = [&] { return x.is_floating_point() ? x.detach().requires_grad_(true) : x; };
    Tensor in = fresh_input();
    double fwd = 1e30, bwd = 1e30;
    Tensor out;
    for (int r = 0; r < 5; ++r) {
      double t0 = now();
      out = layer->forward(in);
      fwd = std::min(fwd, since(t0));
      Tensor g = ones_like(out);
      double t1 = now();
      out.backward(g);
      bwd = std::min(bwd, since(t1));
      run.model->zero_grad();
      in = fresh_input();
    }
    std::printf("    %-12s %-16s %8.3f %8.3f\n", layer->name().c_str(), shape_str(out.shape()).c_str(),
                fwd * 1e3, bwd * 1e3);
    x = out.detach();
  }
  StepTimes t = run.round(5);
  std::printf("    %-12s %-16s %8.3f %8.3f   (optimizer step %.3f ms)\n", "whole step", "", t.forward * 1e3,
              t.backward * 1e3, t.update * 1e3);
}

}  // namespace

int main(int argc, char** argv) {
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency())), rounds = 3;
  bool with_profile = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc)
      threads = std::atoi(argv[++i]);
    else if (a == "--rounds" && i + 1 < argc)
      rounds = std::atoi(argv[++i]);
    else if (a == "--profile")
      with_profile = true;
    else if (a == "--cpu-time")
      g_cpu_time = true;
    else {
      std::fprintf(stderr, "usage: %s [--threads N] [--rounds R] [--profile] [--cpu-time]\n", argv[0]);
      return a == "--help" || a == "-h" ? 0 : 2;
    }
  }
  if (threads < 1 || rounds < 1) {
    std::fprintf(stderr, "bench_train: --threads and --rounds must be positive\n");
    return 2;
  }
  set_num_threads(threads);

  char script[] = "/tmp/ember_bench_train_XXXXXX.py";
  int fd = mkstemps(script, 3);
  if (fd < 0) {
    std::perror("mkstemps");
    return 1;
  }
  close(fd);
  std::ofstream(script) << kTorchScript;

  std::printf("== Training step: ember vs PyTorch, %d thread(s), %d rounds, %s (goal: ember <= 0.8x) ==\n",
              threads, rounds, g_cpu_time ? "process CPU time" : "wall time");
  double load = 0;
  if (std::ifstream loadavg("/proc/loadavg"); loadavg) loadavg >> load;
  std::printf("BLAS kernels: %s; machine load (1-minute average) %.1f on %d hardware threads\n",
              blas_core_name().c_str(), load, omp_get_num_procs());
  std::printf("%-52s %9s %9s %9s %9s | %9s %9s %9s %9s | %6s\n", "", "fwd ms", "bwd ms", "opt ms", "step ms",
              "fwd ms", "bwd ms", "opt ms", "step ms", "ratio");
  const std::string python = find_torch_python();
  std::string torch_note =
      python.empty() ? "import torch failed (in python3 and /usr/bin/python3; set EMBER_PYTHON)" : "";
  std::string torch_version;
  for (const Workload& w : workloads()) {
    EmberRun ember_run(w);
    ember_run.round(2);  // warm-up
    StepTimes ember_best, torch_best;
    std::vector<double> ratios;  // per round: the two contenders ran seconds apart, under similar load
    bool have_torch = torch_note.empty();
    for (int r = 0; r < rounds; ++r) {
      const StepTimes e = ember_run.round(w.steps);
      ember_best.keep_best(e);
      if (!have_torch) continue;
      TorchResult t = torch_round(python, script, w.torch_name, threads, w.steps);
      if (!t.times) {
        have_torch = false;
        torch_note = t.why_not;
        continue;
      }
      torch_best.keep_best(*t.times);
      ratios.push_back(e.step / t.times->step);
      torch_version = t.version;
    }
    std::printf("%-52s %9.3f %9.3f %9.3f %9.3f | ", w.name.c_str(), ember_best.forward * 1e3,
                ember_best.backward * 1e3, ember_best.update * 1e3, ember_best.step * 1e3);
    if (have_torch && !ratios.empty()) {
      std::sort(ratios.begin(), ratios.end());
      const double median = ratios[ratios.size() / 2];
      std::printf("%9.3f %9.3f %9.3f %9.3f | %5.2fx\n", torch_best.forward * 1e3, torch_best.backward * 1e3,
                  torch_best.update * 1e3, torch_best.step * 1e3, median);
    } else
      std::printf("%9s %9s %9s %9s | %6s\n", "-", "-", "-", "-", "-");
    if (with_profile) profile(w);
  }
  if (!torch_note.empty()) std::printf("PyTorch skipped: %s\n", torch_note.c_str());
  if (!torch_version.empty()) std::printf("PyTorch %s (%s)\n", torch_version.c_str(), python.c_str());
  std::printf(
      "(columns left: ember, right: PyTorch, best step of all rounds; fwd includes the loss. ratio = median "
      "over "
      "rounds of ember's best step / PyTorch's best step in that round)\n");
  std::remove(script);
  return 0;
}
