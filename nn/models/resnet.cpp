// CifarResNet and WideResNet: CRD's CIFAR models (models/resnet.py, models/wrn.py) built from the
// existing layers. Registration order follows the reference's attribute order, because that fixes
// named_parameters() and the optimizer's parameter order as well as the state dict names.
#include "ember/nn/resnet.h"

#include "ember/nn/init.h"
#include "ember/ops.h"

namespace ember::nn {

namespace {

std::shared_ptr<Conv2d> conv3x3(int64_t in, int64_t out, int64_t stride) {
  return std::make_shared<Conv2d>(in, out, 3, stride, 1, 1, 1, /*bias=*/false);
}

std::shared_ptr<Conv2d> conv1x1(int64_t in, int64_t out, int64_t stride) {
  return std::make_shared<Conv2d>(in, out, 1, stride, 0, 1, 1, /*bias=*/false);
}

// Both references re-initialise every conv with N(0, 2 / fan_out) (resnet.py through
// kaiming_normal_(mode='fan_out', nonlinearity='relu'), wrn.py by hand with the same formula) and
// every BatchNorm to weight 1, bias 0 (already BatchNorm2d's own init; kept for clarity).
void init_convs_and_norms(Module& model) {
  model.apply([](Module& m) {
    if (auto* conv = dynamic_cast<Conv2d*>(&m)) {
      init::kaiming_normal_(conv->weight, 0.0, init::FanMode::fan_out, init::Nonlinearity::relu);
    } else if (auto* bn = dynamic_cast<BatchNorm2d*>(&m)) {
      init::ones_(bn->weight);
      init::zeros_(bn->bias);
    }
  });
}

// The pooled map [N, C, 1, 1] as [N, C] (the references' view).
Tensor flatten_pooled(const Tensor& x) { return x.reshape({x.size(0), -1}); }

}  // namespace

// ---- CifarResNet ----

CifarBasicBlock::CifarBasicBlock(int64_t in_planes, int64_t planes, int64_t stride) {
  conv1 = register_module("conv1", conv3x3(in_planes, planes, stride));
  bn1 = register_module("bn1", std::make_shared<BatchNorm2d>(planes));
  relu = register_module("relu", std::make_shared<ReLU>());
  conv2 = register_module("conv2", conv3x3(planes, planes, 1));
  bn2 = register_module("bn2", std::make_shared<BatchNorm2d>(planes));
  if (stride != 1 || in_planes != planes)
    downsample =
        register_module("downsample", std::make_shared<Sequential>(conv1x1(in_planes, planes, stride),
                                                                   std::make_shared<BatchNorm2d>(planes)));
}

Tensor CifarBasicBlock::forward(const Tensor& x) {
  Tensor out = relu->forward(bn1->forward(conv1->forward(x)));
  out = bn2->forward(conv2->forward(out));
  return ember::relu(out + (downsample ? downsample->forward(x) : x));
}

CifarResNet::CifarResNet(int64_t depth, std::array<int64_t, 4> num_filters, int64_t num_classes) {
  if (depth < 8 || (depth - 2) % 6 != 0)
    fail("CifarResNet: depth must be 6n + 2 with n >= 1 (8, 14, 20, 32, 44, 56, 110, ...), got {}", depth);
  const int64_t n = (depth - 2) / 6;
  int64_t in_planes = num_filters[0];
  auto make_layer = [&](int64_t planes, int64_t stride) {
    auto layer = std::make_shared<Sequential>();
    for (int64_t i = 0; i < n; ++i) {
      layer->push_back(std::make_shared<CifarBasicBlock>(in_planes, planes, i == 0 ? stride : 1));
      in_planes = planes;
    }
    return layer;
  };
  conv1 = register_module("conv1", conv3x3(3, num_filters[0], 1));
  bn1 = register_module("bn1", std::make_shared<BatchNorm2d>(num_filters[0]));
  relu = register_module("relu", std::make_shared<ReLU>());
  layer1 = register_module("layer1", make_layer(num_filters[1], 1));
  layer2 = register_module("layer2", make_layer(num_filters[2], 2));
  layer3 = register_module("layer3", make_layer(num_filters[3], 2));
  avgpool = register_module("avgpool", std::make_shared<AvgPool2d>(8));
  fc = register_module("fc", std::make_shared<Linear>(num_filters[3], num_classes));
  init_convs_and_norms(*this);
}

Tensor CifarResNet::features(const Tensor& x) {
  Tensor h = relu->forward(bn1->forward(conv1->forward(x)));
  h = layer3->forward(layer2->forward(layer1->forward(h)));
  return flatten_pooled(avgpool->forward(h));
}

Tensor CifarResNet::forward(const Tensor& x) { return fc->forward(features(x)); }

namespace {
constexpr std::array<int64_t, 4> kNarrow{16, 16, 32, 64}, kWide{32, 64, 128, 256};
}  // namespace

std::shared_ptr<CifarResNet> resnet8(int64_t c) { return std::make_shared<CifarResNet>(8, kNarrow, c); }
std::shared_ptr<CifarResNet> resnet14(int64_t c) { return std::make_shared<CifarResNet>(14, kNarrow, c); }
std::shared_ptr<CifarResNet> resnet20(int64_t c) { return std::make_shared<CifarResNet>(20, kNarrow, c); }
std::shared_ptr<CifarResNet> resnet32(int64_t c) { return std::make_shared<CifarResNet>(32, kNarrow, c); }
std::shared_ptr<CifarResNet> resnet44(int64_t c) { return std::make_shared<CifarResNet>(44, kNarrow, c); }
std::shared_ptr<CifarResNet> resnet56(int64_t c) { return std::make_shared<CifarResNet>(56, kNarrow, c); }
std::shared_ptr<CifarResNet> resnet110(int64_t c) { return std::make_shared<CifarResNet>(110, kNarrow, c); }
std::shared_ptr<CifarResNet> resnet8x4(int64_t c) { return std::make_shared<CifarResNet>(8, kWide, c); }
std::shared_ptr<CifarResNet> resnet32x4(int64_t c) { return std::make_shared<CifarResNet>(32, kWide, c); }

// ---- WideResNet ----

WideBasicBlock::WideBasicBlock(int64_t in_planes, int64_t out_planes, int64_t stride, double dropout)
    : dropout(dropout) {
  if (!(dropout >= 0.0 && dropout < 1.0)) fail("WideResNet: dropout must be in [0, 1), got {}", dropout);
  bn1 = register_module("bn1", std::make_shared<BatchNorm2d>(in_planes));
  relu1 = register_module("relu1", std::make_shared<ReLU>());
  conv1 = register_module("conv1", conv3x3(in_planes, out_planes, stride));
  bn2 = register_module("bn2", std::make_shared<BatchNorm2d>(out_planes));
  relu2 = register_module("relu2", std::make_shared<ReLU>());
  conv2 = register_module("conv2", conv3x3(out_planes, out_planes, 1));
  // The reference projects whenever the channel count changes (never on stride alone: every
  // strided block also widens).
  if (in_planes != out_planes)
    conv_shortcut = register_module("convShortcut", conv1x1(in_planes, out_planes, stride));
}

Tensor WideBasicBlock::forward(const Tensor& x) {
  Tensor act = relu1->forward(bn1->forward(x));
  Tensor out = relu2->forward(bn2->forward(conv1->forward(act)));
  if (dropout > 0.0) out = ember::dropout(out, dropout, is_training());
  out = conv2->forward(out);
  return (conv_shortcut ? conv_shortcut->forward(act) : x) + out;
}

WideStage::WideStage(int64_t num_blocks, int64_t in_planes, int64_t out_planes, int64_t stride,
                     double dropout) {
  layer = register_module("layer", std::make_shared<Sequential>());
  for (int64_t i = 0; i < num_blocks; ++i)
    layer->push_back(std::make_shared<WideBasicBlock>(i == 0 ? in_planes : out_planes, out_planes,
                                                      i == 0 ? stride : 1, dropout));
}

WideResNet::WideResNet(int64_t depth, int64_t widen_factor, int64_t num_classes, double dropout) {
  if (depth < 10 || (depth - 4) % 6 != 0)
    fail("WideResNet: depth must be 6n + 4 with n >= 1 (10, 16, 22, 28, 40, ...), got {}", depth);
  if (widen_factor <= 0) fail("WideResNet: widen_factor must be positive, got {}", widen_factor);
  const int64_t n = (depth - 4) / 6, k = widen_factor;
  conv1 = register_module("conv1", conv3x3(3, 16, 1));
  block1 = register_module("block1", std::make_shared<WideStage>(n, 16, 16 * k, 1, dropout));
  block2 = register_module("block2", std::make_shared<WideStage>(n, 16 * k, 32 * k, 2, dropout));
  block3 = register_module("block3", std::make_shared<WideStage>(n, 32 * k, 64 * k, 2, dropout));
  bn1 = register_module("bn1", std::make_shared<BatchNorm2d>(64 * k));
  relu = register_module("relu", std::make_shared<ReLU>());
  fc = register_module("fc", std::make_shared<Linear>(64 * k, num_classes));
  init_convs_and_norms(*this);
  init::zeros_(fc->bias);
}

Tensor WideResNet::features(const Tensor& x) {
  Tensor h = block3->forward(block2->forward(block1->forward(conv1->forward(x))));
  h = relu->forward(bn1->forward(h));
  return flatten_pooled(avg_pool2d(h, {8, 8}, {8, 8}));
}

Tensor WideResNet::forward(const Tensor& x) { return fc->forward(features(x)); }

std::shared_ptr<WideResNet> wrn_16_1(int64_t c, double p) {
  return std::make_shared<WideResNet>(16, 1, c, p);
}
std::shared_ptr<WideResNet> wrn_16_2(int64_t c, double p) {
  return std::make_shared<WideResNet>(16, 2, c, p);
}
std::shared_ptr<WideResNet> wrn_40_1(int64_t c, double p) {
  return std::make_shared<WideResNet>(40, 1, c, p);
}
std::shared_ptr<WideResNet> wrn_40_2(int64_t c, double p) {
  return std::make_shared<WideResNet>(40, 2, c, p);
}

}  // namespace ember::nn
