#pragma once
// The CIFAR model zoo of the CRD repository (HobbitLong/RepDistiller, models/resnet.py and
// models/wrn.py), which the PLD and OPL papers train: CifarResNet (resnet8 ... resnet110,
// resnet8x4, resnet32x4) and WideResNet (wrn_16_1 ... wrn_40_2). Children are registered under the
// reference's names and in its order, so a state dict saved from those PyTorch models loads here
// by name (and ours loads there). Inputs are [N, 3, 32, 32]: the final 8x8 average pool assumes
// 32x32 images, as the reference does.
#include <array>
#include <memory>

#include "ember/nn/activation.h"
#include "ember/nn/container.h"
#include "ember/nn/conv.h"
#include "ember/nn/linear.h"
#include "ember/nn/module.h"
#include "ember/nn/normalization.h"
#include "ember/nn/pooling.h"

namespace ember::nn {

// resnet.py's BasicBlock (post-activation): relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)),
// where the shortcut is the identity, or downsample = Sequential(conv1x1, BatchNorm2d) when the
// stride or the channel count changes (downsample is null otherwise).
class CifarBasicBlock : public Module {
 public:
  CifarBasicBlock(int64_t in_planes, int64_t planes, int64_t stride);
  Tensor forward(const Tensor& x) override;

  std::shared_ptr<Conv2d> conv1;
  std::shared_ptr<BatchNorm2d> bn1;
  std::shared_ptr<ReLU> relu;
  std::shared_ptr<Conv2d> conv2;
  std::shared_ptr<BatchNorm2d> bn2;
  std::shared_ptr<Sequential> downsample;
};

// resnet.py's ResNet with BasicBlocks: stem conv3x3(3, f0) + BN + ReLU, then layer1..layer3 of
// n = (depth - 2) / 6 blocks with f1, f2, f3 channels (strides 1, 2, 2), AvgPool2d(8), fc.
// num_filters is {16, 16, 32, 64} for resnetN and {32, 64, 128, 256} for the x4 variants.
// Init as the reference: convs kaiming_normal (fan_out, relu), BN weight 1 / bias 0, fc PyTorch's
// default Linear init.
class CifarResNet : public Module {
 public:
  CifarResNet(int64_t depth, std::array<int64_t, 4> num_filters, int64_t num_classes = 100);
  Tensor forward(const Tensor& x) override;  // logits [N, num_classes]
  Tensor features(const Tensor& x);          // the pooled feature fc reads, [N, num_filters[3]]

  std::shared_ptr<Conv2d> conv1;
  std::shared_ptr<BatchNorm2d> bn1;
  std::shared_ptr<ReLU> relu;
  std::shared_ptr<Sequential> layer1, layer2, layer3;  // of CifarBasicBlock
  std::shared_ptr<AvgPool2d> avgpool;
  std::shared_ptr<Linear> fc;
};

std::shared_ptr<CifarResNet> resnet8(int64_t num_classes = 100);
std::shared_ptr<CifarResNet> resnet14(int64_t num_classes = 100);
std::shared_ptr<CifarResNet> resnet20(int64_t num_classes = 100);
std::shared_ptr<CifarResNet> resnet32(int64_t num_classes = 100);
std::shared_ptr<CifarResNet> resnet44(int64_t num_classes = 100);
std::shared_ptr<CifarResNet> resnet56(int64_t num_classes = 100);
std::shared_ptr<CifarResNet> resnet110(int64_t num_classes = 100);
std::shared_ptr<CifarResNet> resnet8x4(int64_t num_classes = 100);
std::shared_ptr<CifarResNet> resnet32x4(int64_t num_classes = 100);

// wrn.py's BasicBlock (pre-activation): a = relu1(bn1(x)); out = conv2(dropout(relu2(bn2(conv1(a)))));
// returns x + out when in == out channels, else convShortcut(a) + out (the projection reads the
// activated input, the identity the raw one). Dropout is functional, as in the reference.
class WideBasicBlock : public Module {
 public:
  WideBasicBlock(int64_t in_planes, int64_t out_planes, int64_t stride, double dropout = 0.0);
  Tensor forward(const Tensor& x) override;

  std::shared_ptr<BatchNorm2d> bn1;
  std::shared_ptr<ReLU> relu1;
  std::shared_ptr<Conv2d> conv1;
  std::shared_ptr<BatchNorm2d> bn2;
  std::shared_ptr<ReLU> relu2;
  std::shared_ptr<Conv2d> conv2;
  std::shared_ptr<Conv2d> conv_shortcut;  // registered as "convShortcut"; null when in == out
  double dropout;
};

// wrn.py's NetworkBlock: a stage of blocks held in a Sequential named "layer".
class WideStage : public Module {
 public:
  WideStage(int64_t num_blocks, int64_t in_planes, int64_t out_planes, int64_t stride, double dropout);
  Tensor forward(const Tensor& x) override { return layer->forward(x); }

  std::shared_ptr<Sequential> layer;  // of WideBasicBlock
};

// wrn.py's WideResNet: conv3x3(3, 16), block1..block3 of n = (depth - 4) / 6 blocks with
// 16k, 32k, 64k channels (strides 1, 2, 2), then bn1 + ReLU, 8x8 average pool and fc. depth must
// be 6n + 4 with n >= 1. Init as the reference: convs N(0, 2 / (kh * kw * out)) (= kaiming_normal
// fan_out), BN weight 1 / bias 0, fc bias 0 (weight PyTorch's default).
class WideResNet : public Module {
 public:
  WideResNet(int64_t depth, int64_t widen_factor, int64_t num_classes = 100, double dropout = 0.0);
  Tensor forward(const Tensor& x) override;  // logits [N, num_classes]
  Tensor features(const Tensor& x);          // the pooled feature fc reads, [N, 64 * widen_factor]

  std::shared_ptr<Conv2d> conv1;
  std::shared_ptr<WideStage> block1, block2, block3;
  std::shared_ptr<BatchNorm2d> bn1;
  std::shared_ptr<ReLU> relu;
  std::shared_ptr<Linear> fc;
};

std::shared_ptr<WideResNet> wrn_16_1(int64_t num_classes = 100, double dropout = 0.0);
std::shared_ptr<WideResNet> wrn_16_2(int64_t num_classes = 100, double dropout = 0.0);
std::shared_ptr<WideResNet> wrn_40_1(int64_t num_classes = 100, double dropout = 0.0);
std::shared_ptr<WideResNet> wrn_40_2(int64_t num_classes = 100, double dropout = 0.0);

}  // namespace ember::nn
