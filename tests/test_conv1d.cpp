// The 1-D convolutions and pools (ops/conv_pool_1d.cpp) and their layers: values against PyTorch
// 1.13 (torch.nn.functional on the same inputs, float64), float64 gradchecks and second
// derivatives, errors in 1-D terms, and the layers' parameters and init.
#include <ember/nn.h>

#include <cmath>

#include "harness.h"

namespace ember::testing {
namespace {

// sin(0.37 i + phase) over the elements in row-major order: inputs that PyTorch rebuilds exactly
// (torch.sin(0.37 * torch.arange(n) + phase)) to produce the expected values below.
Tensor wave(const Shape& shape, double phase, bool requires_grad = true) {
  int64_t n = 1;
  for (int64_t size : shape) n *= size;
  std::vector<double> v(n);
  for (size_t i = 0; i < v.size(); ++i) v[i] = std::sin(0.37 * static_cast<double>(i) + phase);
  return T(v, shape, requires_grad);
}

Tensor expected(const std::vector<double>& v, const Shape& shape) { return tensor<double>(v, shape); }

std::vector<OpCase> conv1d_cases() {
  return with_gradgradcheck({
      {"conv1d_stride_padding_dilation_groups_bias",
       [](const std::vector<Tensor>& in) { return conv1d(in[0], in[1], in[2], 2, 1, 2, 2); },
       {wave({2, 4, 7}, 0.1), wave({6, 2, 3}, 1.0), wave({6}, 2.0)},
       expected({2.149516119195081,   2.533710926648042,    1.4765722247628774,  0.3095365127815034,
                 1.037037694076259,   1.7740301474733327,   -0.3805142365794032, -1.6443340267305064,
                 -1.4782962477528536, -0.23622702243213847, 0.9059931027953813,  1.0540763131211055,
                 -1.181353579072116,  -1.959566241251205,   -1.0876812143123287, 0.6441644631114681,
                 0.4428848024567592,  -0.7593985541435666,  -0.1342859407462691, 0.4755119934061648,
                 1.2564158844511013,  0.04766235698030363,  -1.0524423191326484, -0.7773952069445527,
                 2.219921054603935,   2.9402646811425672,   1.8268000774551532,  -1.1086494137568264,
                 -2.044302988301132,  -1.226645296549967,   0.5709696466926473,  0.45002469090901775,
                 -0.5857424479023285, -0.6021551170911317,  0.4797335528371619,  0.9144266131971411},
                {2, 6, 3}),
       1e-12},
      {"conv1d_unbatched",
       [](const std::vector<Tensor>& in) { return conv1d(in[0], in[1]); },
       {wave({3, 5}, 0.3), wave({2, 3, 2}, 0.5)},
       expected({0.6252307693741808, 0.18100386741762242, -0.2877210588663839, -0.7175042895933292,
                 1.1130342271212381, 1.7686191109408722, 2.1848296950619783, 2.305333829455879},
                {2, 4}),
       1e-12},
      {"conv_transpose1d_stride_padding_output_padding_groups_bias",
       [](const std::vector<Tensor>& in) { return conv_transpose1d(in[0], in[1], in[2], 2, 1, 1, 2); },
       {wave({2, 4, 3}, 0.2), wave({4, 3, 3}, 0.7), wave({6}, 1.5)},
       expected({0.2523442200458763,   -0.19391957826141504, 0.5249269191288073,   0.3717130400645705,
                 0.8614694892274914,   0.9122650219897891,   0.44369960442416334,  0.30701175818413784,
                 0.7038677586687189,   0.8436034948015875,   0.998102835787801,    1.0577766962015274,
                 1.0742472097264786,   1.398951357975276,    1.0330380427920962,   1.3105221306000536,
                 0.9581655040341803,   0.9604393098346837,   1.5403466946223658,   2.450261457389682,
                 1.5349961024297807,   2.3104711296988056,   1.390498453209797,    1.3088403832773827,
                 0.6717521019811346,   1.0697381277277844,   0.6165282922886951,   0.8641632993018799,
                 0.499636019860204,    0.18079656301130392,  -0.7860206599299493,  -1.3419972829962463,
                 -0.8297818736935552,  -1.3850293853289282,  -0.7892392147804466,  -0.9911324178071008,
                 0.606271240591414,    0.026252925740587574, 0.3134556226577979,   -0.4534527792669484,
                 0.1132215236605878,   0.013896977567479651, 0.49260686611320126,  -0.18221286229702227,
                 0.2849860122645804,   -0.4636514580966149,  0.1681257606031823,   0.4370542722602244,
                 0.7638145435056033,   0.7437001304321964,   0.8719881538801476,   0.9731160096839262,
                 0.9682957393762079,   1.3067846052463363,   0.056860784829132816, 0.006128825213586042,
                 0.4298706234645504,   0.7190823438013516,   0.8133069542725282,   0.8511160183775011,
                 0.07845753328238886,  0.3000997773726232,   0.26751664711349105,  0.6459751364394097,
                 0.4421443870953632,   0.34990090562626175,  0.16983472427888088,  0.4176782367568268,
                 -0.03504048973657478, 0.012319641701501155, -0.26317634909352094, -0.3830196659576661},
                {2, 6, 6}),
       1e-12},
      // output_padding 1 >= stride 1 is allowed with dilation 2: the extra last column is zero
      {"conv_transpose1d_dilated_output_padding",
       [](const std::vector<Tensor>& in) { return conv_transpose1d(in[0], in[1], {}, 1, 0, 1, 2, 2); },
       {wave({2, 4, 3}, 0.2), wave({4, 3, 3}, 0.7)},
       expected({-0.6218392422461616,  -0.423804934588655,    -0.9135613837515759,  -0.4725680674752472,
                 -0.9036351276533774,  -0.45737132934608615,  -0.08522996461426535, 0.0,
                 -0.6861761315570458,  -0.3802715274158327,   -0.5347708684020462,  -0.2517037581842251,
                 -0.2257569123181163,  -0.08906906607809084,  0.10220517934858342,  0.0,
                 0.01160700342593561,  0.08562070627983534,   0.43797733284570867,  0.24872211770767644,
                 0.7028643055607813,   0.3781601573119839,    0.17612338475026384,  0.0,
                 0.9427807037319658,   0.9591268587048716,    1.8790995351938804,   1.0280892501817274,
                 1.8678193473985005,   0.9579045846311846,    0.8019335310293294,   0.0,
                 0.8018050422400698,   0.75807202728436,      1.122599306726034,    0.45563797732123934,
                 0.48952149036871684,  0.0915354646220687,    0.01990624804384815,  0.0,
                 -0.2297170113047293,  -0.2849559438014225,   -0.8807461143499054,  -0.6228799020201554,
                 -1.432476610628471,   -0.8764999875621726,   -0.7842304461337011,  0.0,
                 -0.24807122749296823, -0.4898160950404062,   -1.0564903979679423,  -0.6840393639462565,
                 -1.3656994287665274,  -0.785681113915701,    -0.9835980090365748,  0.0,
                 -0.5064694396306306,  -0.7809846109133789,   -1.4127618296131763,  -0.6705855045883635,
                 -1.144245524486349,   -0.4694257960761252,   -0.5185172445927195,  0.0,
                 -0.20234371092598885, -0.20473150824094344,  -0.19991123793322516, 0.08767222879572777,
                 0.34809552788050807,  0.368209940953915,     0.5224686801619165,   0.0,
                 -0.46710271928916264, -0.12870023544939702,  -0.2229248459205746,  -0.07703622878350302,
                 -0.06567768956059561, -0.014945729945047836, 0.34420916612944763,  0.0,
                 -0.24375053215600773, 0.04916760332788084,   0.2529983526719274,   0.10662633214603529,
                 0.37129593120519405,  0.14965368711495963,   0.18901059065880602,  0.0,
                 0.25032975661898543,  0.17242611759005755,   0.4479221083850801,   0.171861481936825,
                 0.3958797134200479,   0.14803620094210146,   -0.17611769428426638, 0.0},
                {2, 6, 8}),
       1e-12},
  });
}
EMBER_OP_SUITE(Conv1d, conv1d_cases);

std::vector<OpCase> pool1d_cases() {
  const Tensor x = wave({2, 3, 8}, 0.4);
  return with_gradgradcheck({
      {"max_pool1d_kernel3_stride2_padding1",
       [](const std::vector<Tensor>& in) { return max_pool1d(in[0], 3, 2, 1); },
       {x},
       expected({0.6961352386273567,   0.9981524724975481,  0.9981524724975481,  0.7780731968879212,
                 -0.21667508038737962, -0.5550369171994238, -0.8787253947281899, -0.32705481486974064,
                 0.3956859992033308,   0.9114581539520616,  0.998543345374605,   0.9504803793792889,
                 0.14427271702045727,  -0.2233227991637839, -0.8221753290297625, -0.6414375431251021,
                 0.043615545366196974, 0.7058549609746644,  0.9988878460399827,  0.9988878460399827,
                 0.4863986888537981,   0.13752602195000313, -0.566322288586166,  -0.8721382987735395},
                {2, 3, 4}),
       1e-12},
      {"avg_pool1d_kernel3_stride2_padding1",  // the padding counts in the mean, as PyTorch's default
       [](const std::vector<Tensor>& in) { return avg_pool1d(in[0], 3, 2, 1); },
       {x},
       expected({0.36185119364533574,   0.8676404024135961,  0.9096006212190216,  0.4757825171287015,
                 -0.2572373325289345,   -0.7813604549740409, -0.9471204962324636, -0.6174769606180379,
                 0.14416412554305258,   0.669385176796997,   0.9534939595686517,  0.7388654433630634,
                 -0.026350027381108875, -0.5353969167764542, -0.9285114175025337, -0.8359560597176712,
                 -0.0923306012843804,   0.38380192894568443, 0.8729944302717253,  0.9055559484577529,
                 0.2079749036012671,    -0.2195854711657179, -0.7887686947608886, -0.9453762912164659},
                {2, 3, 4}),
       1e-12},
      {"avg_pool1d_default_stride",
       [](const std::vector<Tensor>& in) { return avg_pool1d(in[0], 2); },
       {x},
       expected({0.5427767904680036,   0.9533929843067157,   0.8653246955797582,  0.32463717724909164,
                 -0.3858559987934017,  -0.8945222238613497,  -0.9352970760195513, -0.48685274356296204,
                 0.21624618831457887,  0.8062347655938302,   0.9745118623769469,  0.6330579753549508,
                 -0.03952504107166331, -0.6914339755827892,  -0.9816794617389193, -0.7584448589067654,
                 -0.1384959019265706,  0.5538951207354281,   0.9565641649202559,  0.8588899996666379,
                 0.31196235540190065,  -0.39814121772357836, -0.89999189784825,   -0.9310902216210291},
                {2, 3, 4}),
       1e-12},
      {"adaptive_avg_pool1d_8_to_3",
       [](const std::vector<Tensor>& in) { return adaptive_avg_pool1d(in[0], 3); },
       {x},
       expected({0.6647290256839635, 0.909358839943237, 0.4757825171287015, -0.5299963695504047,
                 -0.9149096499404505, -0.6174769606180379, 0.37783458462158553, 0.8903733139853887,
                 0.7388654433630634, -0.21324756809304754, -0.8365567186608542, -0.8359560597176712,
                 0.04164782554768356, 0.755229642827842, 0.9055559484577529, 0.1313215213142702,
                 -0.6490665577859142, -0.9453762912164659},
                {2, 3, 3}),
       1e-12},
      {"max_pool1d_unbatched",
       [](const std::vector<Tensor>& in) { return max_pool1d(in[0], 2); },
       {wave({3, 8}, 0.9)},
       expected({0.9551008555846923, 0.9976063813191737, 0.6900749835569364, 0.021590975726096404,
                 -0.6581864701049049, -0.9670013802437658, -0.5423110198196698, 0.1660421058649572,
                 0.787544769032711, 0.997111995180267, 0.9021718337562933, 0.3753533418804611},
                {3, 4}),
       1e-12},
  });
}
EMBER_OP_SUITE(Pool1d, pool1d_cases);

TEST(Conv1d, ErrorsSpeakOfSequences) {
  const Tensor x = zeros({2, 4, 7}), w = zeros({6, 2, 3});
  EMBER_EXPECT_THROW_MSG(conv1d(zeros({2, 4, 1, 7}), w),
                         "conv1d: expected input [N, C, L] (or unbatched [C, L]), got shape [2,4,1,7]");
  EMBER_EXPECT_THROW_MSG(conv1d(x, zeros({6, 2})),
                         "conv1d: expected weight [out_channels, in_channels/groups, k]");
  EMBER_EXPECT_THROW_MSG(conv1d(x, w),
                         "conv1d: input [2,4,7] has 4 channels, but weight [6,2,3] with groups=1 expects 2");
  EMBER_EXPECT_THROW_MSG(conv1d(x, w, {}, 0, 0, 1, 2), "conv1d: stride must be positive, got 0");
  EMBER_EXPECT_THROW_MSG(conv1d(x, w, {}, 1, -1, 1, 2), "conv1d: padding must be non-negative, got -1");
  EMBER_EXPECT_THROW_MSG(
      conv1d(x, w, {}, 1, 0, 4, 2),
      "conv1d: input [2,4,7] padded by 0 is shorter than the kernel 3 dilated by 4 (span 9)");
  EMBER_EXPECT_THROW_MSG(conv1d(x, w, zeros({5}), 1, 0, 1, 2),
                         "conv1d: bias must have shape [6] (out_channels), got [5]");
  EMBER_EXPECT_THROW_MSG(
      conv1d(zeros({4, 7}, DType::float64), zeros({6, 4, 3})),
      "conv1d (as its 2-D form on [N, C, 1, L]): conv2d: dtype mismatch: input float64, weight float32");
  const Tensor xt = zeros({2, 4, 3}), wt = zeros({4, 3, 3});
  EMBER_EXPECT_THROW_MSG(
      conv_transpose1d(xt, wt, {}, 2, 0, 2),
      "conv_transpose1d: output_padding 2 must be non-negative and smaller than stride 2 or dilation 1");
  EMBER_EXPECT_THROW_MSG(
      conv_transpose1d(zeros({2, 3, 3}), wt),
      "conv_transpose1d: input [2,3,3] has 3 channels, but weight [4,3,3] expects 4 (its first dim)");
  EMBER_EXPECT_THROW_MSG(
      conv_transpose1d(xt, wt, {}, 1, 3),
      "conv_transpose1d: input [2,4,3] with stride 1, padding 3 and kernel 3 gives an empty output");
  EMBER_EXPECT_THROW_MSG(max_pool1d(zeros({2, 3}), 4),
                         "max_pool1d: input [2,3] padded by 0 is shorter than the kernel size 4");
  EMBER_EXPECT_THROW_MSG(avg_pool1d(zeros({1, 2, 8}), 2, 1, 2),
                         "avg_pool1d: padding 2 must be non-negative and at most half the kernel size 2");
  EMBER_EXPECT_THROW_MSG(max_pool1d(zeros({8}), 2),
                         "max_pool1d: expected input [N, C, L] (or unbatched [C, L]), got shape [8]");
  EMBER_EXPECT_THROW_MSG(adaptive_avg_pool1d(zeros({1, 2, 8}), 0),
                         "adaptive_avg_pool1d: output size must be positive, got 0");
}

// A 1-D convolution is the 2-D one on a height-1 image, in float32 and bfloat16 too.
TEST(Conv1d, Float32AndBfloat16AgreeWithFloat64) {
  const Tensor x = wave({2, 4, 9}, 0.3, false), w = wave({4, 4, 3}, 0.8, false), b = wave({4}, 0.1, false);
  const Tensor ref = conv1d(x, w, b, 2, 1);
  EXPECT_TRUE(tensors_close(conv1d(x.to(kFloat32), w.to(kFloat32), b.to(kFloat32), 2, 1), ref, 1e-5));
  const Tensor bf = conv1d(x.to(DType::bfloat16), w.to(DType::bfloat16), b.to(DType::bfloat16), 2, 1);
  EXPECT_EQ(bf.dtype(), DType::bfloat16);
  EXPECT_TRUE(tensors_close(bf, ref, 3e-2));
}

TEST(Conv1dLayers, ShapesParametersAndInit) {
  manual_seed(11);
  nn::Conv1d conv(4, 6, 3, 2, 1, 1, 2);
  EXPECT_EQ(conv.weight.shape(), (Shape{6, 2, 3}));
  EXPECT_EQ(conv.bias.shape(), (Shape{6}));
  // PyTorch's init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the bias, fan_in = 2 * 3
  const double bound = 1 / std::sqrt(6.0);
  EXPECT_LE(amax(abs(conv.bias), {0}).item<float>(), bound);
  EXPECT_LE(amax(abs(conv.weight), {0, 1, 2}).item<float>(), bound);
  EXPECT_EQ(conv.forward(zeros({2, 4, 9})).shape(), (Shape{2, 6, 5}));
  EXPECT_EQ(conv.forward(zeros({4, 9})).shape(), (Shape{6, 5}));
  EXPECT_EQ(conv.str(), "Conv1d(4, 6, kernel_size=3, stride=2, padding=1, groups=2)");
  std::vector<std::string> names;
  for (const auto& [name, p] : conv.named_parameters()) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"weight", "bias"}));
  EMBER_EXPECT_THROW_MSG(conv.forward(zeros({2, 3, 9})),
                         "Conv1d: input of shape [2,3,9] has 3 channels, expected in_channels = 4");
  EMBER_EXPECT_THROW_MSG(conv.forward(zeros({2, 4, 3, 9})),
                         "Conv1d: expected input [N, C, L] or [C, L], got shape [2,4,3,9]");
  EMBER_EXPECT_THROW_MSG(nn::Conv1d(4, 6, 3, 1, 0, 1, 4),
                         "Conv1d: in_channels (4) and out_channels (6) must both be divisible by groups (4)");

  nn::ConvTranspose1d up(4, 6, 3, 2, 1, 1, 2, false);
  EXPECT_EQ(up.weight.shape(), (Shape{4, 3, 3}));
  EXPECT_FALSE(up.bias.defined());
  EXPECT_EQ(up.forward(zeros({2, 4, 5})).shape(), (Shape{2, 6, 10}));  // (5 - 1) 2 - 2 + 2 + 1 + 1
  EXPECT_EQ(
      up.str(),
      "ConvTranspose1d(4, 6, kernel_size=3, stride=2, padding=1, output_padding=1, groups=2, bias=false)");
  EMBER_EXPECT_THROW_MSG(
      nn::ConvTranspose1d(4, 6, 3, 1, 0, 1),
      "ConvTranspose1d: output_padding 1 must be non-negative and smaller than stride 1 or dilation 1");
}

TEST(Conv1dLayers, LayersComputeTheirOps) {
  manual_seed(12);
  nn::Conv1d conv(3, 2, 2, 1, 1);
  const Tensor x = wave({2, 3, 5}, 0.2, false).to(kFloat32);
  EXPECT_TRUE(equal(conv.forward(x), conv1d(x, conv.weight, conv.bias, 1, 1)));
  nn::ConvTranspose1d up(3, 2, 3, 2);
  EXPECT_TRUE(equal(up.forward(x), conv_transpose1d(x, up.weight, up.bias, 2)));
  EXPECT_TRUE(equal(nn::MaxPool1d(2).forward(x), max_pool1d(x, 2)));
  EXPECT_TRUE(equal(nn::AvgPool1d(3, 1, 1).forward(x), avg_pool1d(x, 3, 1, 1)));
  EXPECT_TRUE(equal(nn::AdaptiveAvgPool1d(2).forward(x[0]), adaptive_avg_pool1d(x[0], 2)));
  EXPECT_EQ(nn::MaxPool1d(3, 2, 1).str(), "MaxPool1d(kernel_size=3, stride=2, padding=1)");
  EXPECT_EQ(nn::AdaptiveAvgPool1d(4).str(), "AdaptiveAvgPool1d(output_size=4)");
  EMBER_EXPECT_THROW_MSG(nn::MaxPool1d(2, 2, 2),
                         "MaxPool1d: padding 2 must be non-negative and at most half the kernel size 2");
  EMBER_EXPECT_THROW_MSG(nn::AvgPool1d(2).forward(zeros({5})),
                         "AvgPool1d: expected input [N, C, L] or [C, L], got shape [5]");
  EMBER_EXPECT_THROW_MSG(nn::AdaptiveAvgPool1d(0), "AdaptiveAvgPool1d: output_size must be positive, got 0");
}

}  // namespace
}  // namespace ember::testing
