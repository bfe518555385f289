// Compiles against the installed ember and checks one gradient.
#include <ember/ember.h>

#include <cstdio>

int main() {
  ember::Tensor x = ember::tensor<float>({1.0f, 2.0f, 3.0f}).requires_grad_();
  ember::Tensor y = (x * x).sum();
  y.backward();
  std::vector<float> g = x.grad().to_vector<float>();
  if (g != std::vector<float>{2.0f, 4.0f, 6.0f}) {
    std::fprintf(stderr, "consumer: wrong gradient\n");
    return 1;
  }
  std::printf("consumer: ok (%s)\n", fmt::format("{}", x.grad()).c_str());
  return 0;
}
