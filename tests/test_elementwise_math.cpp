// The elementwise math ops PyTorch users expect beyond the basics: trigonometric and hyperbolic
// functions and their inverses, exp2 / log2 / log10, erfc / erfinv, rounding, fmod / remainder,
// atan2, hypot, and the composites logaddexp, xlogy, lerp, sinc. Every expected value below came
// from torch 1.13 (/usr/bin/python3, torch.<op>(torch.tensor(..., dtype=torch.float64)).tolist()),
// edge values (+-0, +-inf, NaN, domain edges) included, in float64 and in float32.
#include <cmath>
#include <limits>

#include "harness.h"

namespace ember::testing {
namespace {

auto u(Tensor (*f)(const Tensor&)) {
  return [f](const std::vector<Tensor>& in) { return f(in[0]); };
}
auto b2(Tensor (*f)(const Tensor&, const Tensor&)) {
  return [f](const std::vector<Tensor>& in) { return f(in[0], in[1]); };
}

// Values from torch 1.13 (float64), on inputs away from each op's singular points.
std::vector<OpCase> unary_math_cases() {
  const std::vector<double> general = {-1.3, -0.4, 0.7, 2.1}, unit = {-0.9, -0.35, 0.2, 0.75},
                            positive = {0.3, 1.0, 2.5, 7.0}, above_one = {1.2, 1.9, 3.5, 10.0},
                            between = {-2.7, -1.2, 0.3, 1.8};  // (between: away from whole and half numbers)
  auto row = [](const char* name, Tensor (*f)(const Tensor&), const std::vector<double>& x,
                const std::vector<double>& want) {
    return OpCase{name, u(f), {T(x, {2, 2})}, tensor<double>(want, {2, 2})};
  };
  std::vector<OpCase> cases = with_gradgradcheck({
      row("tan", tan, general,
          {-3.6021024479679786, -0.4227932187381618, 0.8422883804630794, -1.7098465429045073}),
      row("asin", asin, unit,
          {-1.1197695149986342, -0.35757110364551026, 0.2013579207903308, 0.848062078981481}),
      row("acos", acos, unit,
          {2.6905658417935308, 1.9283674304404068, 1.369438406004566, 0.7227342478134156}),
      row("atan", atan, general,
          {-0.9151007005533605, -0.3805063771123649, 0.6107259643892086, 1.1263771168937977}),
      row("sinh", sinh, general,
          {-1.698382437292616, -0.4107523258028155, 0.7585837018395334, 4.021856742157334}),
      row("cosh", cosh, general,
          {1.9709142303266285, 1.081072371838455, 1.255169005630943, 4.144313170410316}),
      row("asinh", asinh, general,
          {-1.078451058954897, -0.39003531977071526, 0.6526665660823557, 1.4874828366412711}),
      row("acosh", acosh, above_one,
          {0.6223625037147786, 1.2571958266003804, 1.9248473002384139, 2.993222846126381}),
      row("atanh", atanh, unit,
          {-1.4722194895832204, -0.36544375427139614, 0.2027325540540822, 0.9729550745276566}),
      row("exp2", exp2, general,
          {0.40612619817811774, 0.757858283255199, 1.624504792712471, 4.2870938501451725}),
      row("log2", log2, positive, {-1.7369655941662063, 0.0, 1.3219280948873624, 2.807354922057604}),
      row("log10", log10, positive, {-0.5228787452803376, 0.0, 0.3979400086720376, 0.8450980400142568}),
      row("erfc", erfc, general,
          {1.9340079449406524, 1.4283923550466686, 0.32219880616258156, 0.002979466656332984}),
      row("erfinv", erfinv, unit,
          {-1.1630871536766743, -0.32085832171518147, 0.1791434546212917, 0.8134198475976187}),
      row("sinc", sinc, general,
          {-0.19809085184633993, 0.756826728640657, 0.3678830105717742, 0.046839602051593585}),
      row("floor", floor, between, {-3.0, -2.0, 0.0, 1.0}),
      row("ceil", ceil, between, {-2.0, -1.0, 1.0, 2.0}),
      row("round", round, between, {-3.0, -1.0, 0.0, 2.0}),
      row("trunc", trunc, between, {-2.0, -1.0, 0.0, 1.0}),
      row("frac", frac, between, {-0.7000000000000002, -0.19999999999999996, 0.3, 0.8}),
  });
  // the rounding ops' gradient is the constant 0: no function of x for a second derivative to check
  for (OpCase& c : cases)
    if (c.name == "floor" || c.name == "ceil" || c.name == "round" || c.name == "trunc")
      c.gradgradcheck = false;
  return cases;
}
EMBER_OP_SUITE(UnaryMath, unary_math_cases);

// Values from torch 1.13 (float64). Operands keep a / b away from whole numbers, where fmod's and
// remainder's derivative in b jumps.
std::vector<OpCase> binary_math_cases() {
  const std::vector<double> av = {1.5, -2.25, 4.0, -0.7, 3.3, -5.1}, bv = {0.6, 0.8, -1.5, 2.2, -0.9, -1.3};
  Tensor a = T(av, {6}), b = T(bv, {6});
  Tensor a23 = T(av, {2, 3}), r3 = T({0.65, -1.6, 2.4}, {3});
  Tensor pos = T({0.4, 1.7, 2.2, 0.9, 3.1, 0.25}, {6});
  Tensor w = T({0.1, 0.45, 0.5, 0.9, -0.3, 1.4}, {6}), col = T({0.25, 0.7}, {2, 1});
  auto e6 = [](std::vector<double> v) { return tensor<double>(v, {6}); };
  auto e23 = [](std::vector<double> v) { return tensor<double>(v, {2, 3}); };
  auto row = [](const char* name, Tensor (*f)(const Tensor&, const Tensor&), const Tensor& x, const Tensor& y,
                const std::vector<double>& want) {
    return OpCase{name, b2(f), {x, y}, tensor<double>(want, x.dim() >= y.dim() ? x.shape() : y.shape())};
  };
  return with_gradgradcheck({
      row("atan2", atan2, a, b,
          {1.1902899496825317, -1.2291808361470895, 1.9295669970654687, -0.30805278102377637,
           1.837048375945822, -1.8203832522318812}),
      row("fmod", fmod, a, b,
          {0.30000000000000004, -0.6499999999999999, 1.0, -0.7, 0.5999999999999998, -1.1999999999999995}),
      row("remainder", remainder, a, b,
          {0.30000000000000004, 0.15000000000000013, -0.5, 1.5000000000000002, -0.30000000000000027,
           -1.1999999999999995}),
      row("hypot", hypot, a, b,
          {1.6155494421403511, 2.3879907872519106, 4.272001872658765, 2.3086792761230392, 3.420526275297414,
           5.263078946776306}),
      row("logaddexp", logaddexp, a, b,
          {1.841153874732088, 0.846271685358662, 4.00407844327057, 2.2535627762179633, 3.314884254671918,
           -1.2778757835451209}),
      row("xlogy", xlogy, a, pos,
          {-1.3744360978112324, -1.1939135648898833, 3.153829441457081, 0.0737523609604784,
           3.7336269679206318, 7.070101241711441}),
      row("atan2_row_broadcast", atan2, a23, r3,
          {1.1618884978439712, -2.188940552730084, 1.0303768265243125, -0.8224182792713783, 2.022249418347451,
           -1.1309537439791604}),
      row("fmod_row_broadcast", fmod, a23, r3,
          {0.19999999999999996, -0.6499999999999999, 1.6, -0.04999999999999993, 0.09999999999999964,
           -0.2999999999999998}),
      row("remainder_row_broadcast", remainder, a23, r3,
          {0.19999999999999996, -0.6499999999999999, 1.6, 0.6000000000000001, -1.5000000000000004, 2.1}),
      row("hypot_row_broadcast", hypot, a23, r3,
          {1.6347782724271815, 2.760887538455705, 4.66476151587624, 0.95524865872714, 3.6674241641784495,
           5.63648826841678}),
      row("logaddexp_row_broadcast", logaddexp, a23, r3,
          {1.855865068442196, -1.1799446642972848, 4.183900740888339, 0.8805085713638754, 3.3074189941486867,
           2.4005529314753606}),
      {"fmod_scalar",
       [](const std::vector<Tensor>& in) { return fmod(in[0], 1.25); },
       {a},
       e6({0.25, -1.0, 0.25, -0.7, 0.7999999999999998, -0.09999999999999964})},
      {"remainder_scalar",
       [](const std::vector<Tensor>& in) { return remainder(in[0], 1.25); },
       {a},
       e6({0.25, 0.25, 0.25, 0.55, 0.7999999999999998, 1.1500000000000004})},
      {"remainder_negative_scalar",
       [](const std::vector<Tensor>& in) { return remainder(in[0], -1.25); },
       {a},
       e6({-1.0, -1.0, -1.0, -0.7, -0.4500000000000002, -0.09999999999999964})},
      {"lerp",
       [](const std::vector<Tensor>& in) { return lerp(in[0], in[1], in[2]); },
       {a, b, w},
       e6({1.41, -0.8775000000000001, 1.25, 1.9100000000000001, 4.56, 0.21999999999999956})},
      {"lerp_broadcast",
       [](const std::vector<Tensor>& in) { return lerp(in[0], in[1], in[2]); },
       {a23, r3, col},
       e23({1.2875, -2.0875, 3.6, 0.24499999999999994, -0.12999999999999975, 0.14999999999999958})},
      {"lerp_scalar_small",
       [](const std::vector<Tensor>& in) { return lerp(in[0], in[1], 0.3); },
       {a, b},
       e6({1.23, -1.3350000000000002, 2.35, 0.17000000000000012, 2.04, -3.9599999999999995})},
      {"lerp_scalar_large",
       [](const std::vector<Tensor>& in) { return lerp(in[0], in[1], 0.8); },
       {a, b},
       e6({0.7799999999999999, 0.19000000000000022, -0.40000000000000024, 1.6200000000000003,
           -0.06000000000000017, -2.06})},
  });
}
EMBER_OP_SUITE(BinaryMath, binary_math_cases);

// Tables of torch's values, one row per line.
// clang-format off
// unary edge values: torch.<op>(torch.tensor(kEdge, dtype=...)).tolist(), torch 1.13
const std::vector<double> kEdge = {0.0, -0.0, 1.0, -1.0, INFINITY, -INFINITY, NAN, 0.5, -0.5, 2.0, -2.5, 1e-30, 3.7};
struct EdgeRow { const char* name; Tensor (*fn)(const Tensor&); std::vector<double> f64, f32; };
const std::vector<EdgeRow> kUnaryEdges = {
    {"tan", tan, {0.0, -0.0, 1.5574077246549023, -1.5574077246549023, NAN, NAN, NAN, 0.5463024898437905, -0.5463024898437905, -2.185039863261519, 0.7470222972386603, 1e-30, 0.6247330752245639},
     {0.0, -0.0, 1.5574077367782593, -1.5574077367782593, NAN, NAN, NAN, 0.5463024973869324, -0.5463024973869324, -2.185039758682251, 0.7470223307609558, 1.0000000031710769e-30, 0.6247331500053406}},
    {"asin", asin, {0.0, -0.0, 1.5707963267948966, -1.5707963267948966, NAN, NAN, NAN, 0.5235987755982989, -0.5235987755982989, NAN, NAN, 1e-30, NAN},
     {0.0, -0.0, 1.5707963705062866, -1.5707963705062866, NAN, NAN, NAN, 0.5235987901687622, -0.5235987901687622, NAN, NAN, 1.0000000031710769e-30, NAN}},
    {"acos", acos, {1.5707963267948966, 1.5707963267948966, 0.0, 3.141592653589793, NAN, NAN, NAN, 1.0471975511965976, 2.0943951023931957, NAN, NAN, 1.5707963267948966, NAN},
     {1.5707963705062866, 1.5707963705062866, 0.0, 3.1415927410125732, NAN, NAN, NAN, 1.0471975803375244, 2.094395160675049, NAN, NAN, 1.5707963705062866, NAN}},
    {"atan", atan, {0.0, -0.0, 0.7853981633974483, -0.7853981633974483, 1.5707963267948966, -1.5707963267948966, NAN, 0.4636476090008061, -0.4636476090008061, 1.1071487177940904, -1.1902899496825317, 1e-30, 1.3068326031691921},
     {0.0, -0.0, 0.7853981256484985, -0.7853981256484985, 1.5707963705062866, -1.5707963705062866, NAN, 0.46364760398864746, -0.46364760398864746, 1.1071487665176392, -1.1902899742126465, 1.0000000031710769e-30, 1.3068325519561768}},
    {"sinh", sinh, {0.0, -0.0, 1.1752011936438014, -1.1752011936438014, INFINITY, -INFINITY, NAN, 0.5210953054937474, -0.5210953054937474, 3.626860407847019, -6.0502044810397875, 1e-30, 20.21129041679853},
     {0.0, -0.0, 1.175201177597046, -1.175201177597046, INFINITY, -INFINITY, NAN, 0.5210952758789062, -0.5210952758789062, 3.6268603801727295, -6.050204753875732, 1.0000000031710769e-30, 20.211292266845703}},
    {"cosh", cosh, {1.0, 1.0, 1.5430806348152437, 1.5430806348152437, INFINITY, INFINITY, NAN, 1.1276259652063807, 1.1276259652063807, 3.7621956910836314, 6.132289479663686, 1.0, 20.23601394326887},
     {1.0, 1.0, 1.5430805683135986, 1.5430805683135986, INFINITY, INFINITY, NAN, 1.1276259422302246, 1.1276259422302246, 3.7621958255767822, 6.132289409637451, 1.0, 20.23601531982422}},
    {"asinh", asinh, {0.0, -0.0, 0.881373587019543, -0.881373587019543, INFINITY, -INFINITY, NAN, 0.48121182505960347, -0.48121182505960347, 1.4436354751788103, -1.6472311463710958, 1e-30, 2.0192606561549606},
     {0.0, -0.0, 0.8813735842704773, -0.8813735842704773, INFINITY, -INFINITY, NAN, 0.4812118411064148, -0.4812118411064148, 1.4436354637145996, -1.6472312211990356, 1.0000000031710769e-30, 2.0192606449127197}},
    {"acosh", acosh, {NAN, NAN, 0.0, NAN, INFINITY, NAN, NAN, NAN, NAN, 1.3169578969248166, NAN, NAN, 1.9826969446812033},
     {NAN, NAN, 0.0, NAN, INFINITY, NAN, NAN, NAN, NAN, 1.316957950592041, NAN, NAN, 1.9826970100402832}},
    {"atanh", atanh, {0.0, -0.0, INFINITY, -INFINITY, NAN, NAN, NAN, 0.5493061443340548, -0.5493061443340548, NAN, NAN, 1e-30, NAN},
     {0.0, -0.0, INFINITY, -INFINITY, NAN, NAN, NAN, 0.5493061542510986, -0.5493061542510986, NAN, NAN, 1.0000000031710769e-30, NAN}},
    {"exp2", exp2, {1.0, 1.0, 2.0, 0.5, INFINITY, 0.0, NAN, 1.4142135623730951, 0.7071067811865476, 4.0, 0.1767766952966369, 1.0, 12.99603834169977},
     {1.0, 1.0, 2.0, 0.5, INFINITY, 0.0, NAN, 1.4142135381698608, 0.7071067690849304, 4.0, 0.1767766922712326, 1.0, 12.996038436889648}},
    {"log2", log2, {-INFINITY, -INFINITY, 0.0, NAN, INFINITY, NAN, NAN, -1.0, NAN, 1.0, NAN, -99.65784284662087, 1.8875252707415875},
     {-INFINITY, -INFINITY, 0.0, NAN, INFINITY, NAN, NAN, -1.0, NAN, 1.0, NAN, -99.65784454345703, 1.8875253200531006}},
    {"log10", log10, {-INFINITY, -INFINITY, 0.0, NAN, INFINITY, NAN, NAN, -0.3010299956639812, NAN, 0.3010299956639812, NAN, -30.0, 0.568201724066995},
     {-INFINITY, -INFINITY, 0.0, NAN, INFINITY, NAN, NAN, -0.3010300099849701, NAN, 0.3010300099849701, NAN, -30.0, 0.5682017207145691}},
    {"erfc", erfc, {1.0, 1.0, 0.15729920705028513, 1.8427007929497148, 0.0, 2.0, NAN, 0.4795001221869535, 1.5204998778130465, 0.004677734981047265, 1.999593047982555, 1.0, 1.6715105790914599e-07},
     {1.0, 1.0, 0.15729920566082, 1.8427008390426636, 0.0, 2.0, NAN, 0.4795001149177551, 1.5204999446868896, 0.004677735269069672, 1.9995930194854736, 1.0, 1.671510005962773e-07}},
    {"erfinv", erfinv, {0.0, -0.0, INFINITY, -INFINITY, NAN, NAN, NAN, 0.4769362762044699, -0.4769362762044699, NAN, NAN, 8.862269254527581e-31, NAN},
     {0.0, -0.0, INFINITY, -INFINITY, NAN, NAN, NAN, 0.4769362807273865, -0.4769362807273865, NAN, NAN, 8.862269142205257e-31, NAN}},
    {"floor", floor, {0.0, -0.0, 1.0, -1.0, INFINITY, -INFINITY, NAN, 0.0, -1.0, 2.0, -3.0, 0.0, 3.0},
     {0.0, -0.0, 1.0, -1.0, INFINITY, -INFINITY, NAN, 0.0, -1.0, 2.0, -3.0, 0.0, 3.0}},
    {"ceil", ceil, {0.0, -0.0, 1.0, -1.0, INFINITY, -INFINITY, NAN, 1.0, -0.0, 2.0, -2.0, 1.0, 4.0},
     {0.0, -0.0, 1.0, -1.0, INFINITY, -INFINITY, NAN, 1.0, -0.0, 2.0, -2.0, 1.0, 4.0}},
    {"round", round, {0.0, -0.0, 1.0, -1.0, INFINITY, -INFINITY, NAN, 0.0, -0.0, 2.0, -2.0, 0.0, 4.0},
     {0.0, -0.0, 1.0, -1.0, INFINITY, -INFINITY, NAN, 0.0, -0.0, 2.0, -2.0, 0.0, 4.0}},
    {"trunc", trunc, {0.0, -0.0, 1.0, -1.0, INFINITY, -INFINITY, NAN, 0.0, -0.0, 2.0, -2.0, 0.0, 3.0},
     {0.0, -0.0, 1.0, -1.0, INFINITY, -INFINITY, NAN, 0.0, -0.0, 2.0, -2.0, 0.0, 3.0}},
    {"frac", frac, {0.0, 0.0, 0.0, 0.0, NAN, NAN, NAN, 0.5, -0.5, 0.0, -0.5, 1e-30, 0.7000000000000002},
     {0.0, 0.0, 0.0, 0.0, NAN, NAN, NAN, 0.5, -0.5, 0.0, -0.5, 1.0000000031710769e-30, 0.7000000476837158}},
    {"sinc", sinc, {1.0, 1.0, 3.8981718325193755e-17, 3.8981718325193755e-17, NAN, NAN, NAN, 0.6366197723675814, 0.6366197723675814, -3.8981718325193755e-17, 0.12732395447351627, 1.0, -0.0695994884865519},
     {1.0, 1.0, -2.7827534054836178e-08, -2.7827534054836178e-08, NAN, NAN, NAN, 0.6366197466850281, 0.6366197466850281, 2.7827534054836178e-08, 0.1273239552974701, 1.0, -0.06959943473339081}},
};
const std::vector<double> kHalves = {0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.49999999999999994, 4503599627370497.0, -0.4, 1.0000000000000002e+16};
const std::vector<double> kA = {5.0, -5.0, 5.0, -5.0, 0.0, -0.0, 5.0, INFINITY, 5.0, -5.0, NAN, 5.0, 3.0, -0.0, 7.5, -7.5, 0.0, -0.0, 1.0, -1.0, INFINITY, -INFINITY, INFINITY, -INFINITY, -1.0};
const std::vector<double> kB = {3.0, 3.0, -3.0, -3.0, 2.0, 2.0, 0.0, 2.0, INFINITY, INFINITY, 1.0, NAN, -1.5, -2.0, 2.0, -2.0, 0.0, -0.0, 0.0, -0.0, INFINITY, INFINITY, -INFINITY, -INFINITY, -INFINITY};
struct BinaryEdgeRow { const char* name; Tensor (*fn)(const Tensor&, const Tensor&); std::vector<double> f64, f32; };
const std::vector<BinaryEdgeRow> kBinaryEdges = {
    {"fmod", fmod, {2.0, -2.0, 2.0, -2.0, 0.0, -0.0, NAN, NAN, 5.0, -5.0, NAN, NAN, 0.0, -0.0, 1.5, -1.5, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, -1.0},
     {2.0, -2.0, 2.0, -2.0, 0.0, -0.0, NAN, NAN, 5.0, -5.0, NAN, NAN, 0.0, -0.0, 1.5, -1.5, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, -1.0}},
    {"remainder", remainder, {2.0, 1.0, -1.0, -2.0, 0.0, -0.0, NAN, NAN, 5.0, INFINITY, NAN, NAN, 0.0, -0.0, 1.5, -1.5, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, -1.0},
     {2.0, 1.0, -1.0, -2.0, 0.0, -0.0, NAN, NAN, 5.0, INFINITY, NAN, NAN, 0.0, -0.0, 1.5, -1.5, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, -1.0}},
    {"atan2", atan2, {1.0303768265243125, -1.0303768265243125, 2.1112158270654806, -2.1112158270654806, 0.0, -0.0, 1.5707963267948966, 1.5707963267948966, 0.0, -0.0, NAN, NAN, 2.0344439357957027, -3.141592653589793, 1.3101939350475555, -1.8313987185422376, 0.0, -3.141592653589793, 1.5707963267948966, -1.5707963267948966, 0.7853981633974483, -0.7853981633974483, 2.356194490192345, -2.356194490192345, -3.141592653589793},
     {1.0303767919540405, -1.0303767919540405, 2.111215829849243, -2.111215829849243, 0.0, -0.0, 1.5707963705062866, 1.5707963705062866, 0.0, -0.0, NAN, NAN, 2.0344438552856445, -3.1415927410125732, 1.3101938962936401, -1.8313987255096436, 0.0, -3.1415927410125732, 1.5707963705062866, -1.5707963705062866, 0.7853981852531433, -0.7853981852531433, 2.356194496154785, -2.356194496154785, -3.1415927410125732}},
    {"hypot", hypot, {5.830951894845301, 5.830951894845301, 5.830951894845301, 5.830951894845301, 2.0, 2.0, 5.0, INFINITY, INFINITY, INFINITY, NAN, NAN, 3.3541019662496847, 2.0, 7.762087348130012, 7.762087348130012, 0.0, 0.0, 1.0, 1.0, INFINITY, INFINITY, INFINITY, INFINITY, INFINITY},
     {5.830951690673828, 5.830951690673828, 5.830951690673828, 5.830951690673828, 2.0, 2.0, 5.0, INFINITY, INFINITY, INFINITY, NAN, NAN, 3.3541018962860107, 2.0, 7.762087345123291, 7.762087345123291, 0.0, 0.0, 1.0, 1.0, INFINITY, INFINITY, INFINITY, INFINITY, INFINITY}},
    {"logaddexp", logaddexp, {5.126928011042972, 3.0003354063728955, 5.000335406372896, -2.8730719889570273, 2.1269280110429727, 2.1269280110429727, 5.006715348489118, INFINITY, INFINITY, INFINITY, NAN, NAN, 3.011047744848594, 0.1269280110429726, 7.50407844327057, -1.9959215567294293, 0.6931471805599453, 0.6931471805599453, 1.3132616875182228, 0.31326168751822286, INFINITY, INFINITY, INFINITY, -INFINITY, -1.0},
     {5.126927852630615, 3.000335454940796, 5.000335216522217, -2.8730719089508057, 2.1269280910491943, 2.1269280910491943, 5.006715297698975, INFINITY, INFINITY, INFINITY, NAN, NAN, 3.011047840118408, 0.12692804634571075, 7.504078388214111, -1.9959216117858887, 0.6931471824645996, 0.6931471824645996, 1.31326162815094, 0.31326165795326233, INFINITY, INFINITY, INFINITY, -INFINITY, -1.0}},
    {"xlogy", xlogy, {5.493061443340549, -5.493061443340549, NAN, NAN, 0.0, 0.0, -INFINITY, INFINITY, INFINITY, -INFINITY, NAN, NAN, NAN, 0.0, 5.19860385419959, NAN, 0.0, 0.0, -INFINITY, INFINITY, INFINITY, -INFINITY, NAN, NAN, NAN},
     {5.493061542510986, -5.493061542510986, NAN, NAN, 0.0, 0.0, -INFINITY, INFINITY, INFINITY, -INFINITY, NAN, NAN, NAN, 0.0, 5.198603630065918, NAN, 0.0, 0.0, -INFINITY, INFINITY, INFINITY, -INFINITY, NAN, NAN, NAN}},
};
// clang-format on

// got == want elementwise: NaN where NaN, the same infinities, the sign of a zero, finite values
// within `rel` (libm and PyTorch's vectorised Sleef differ by an ulp or so).
void expect_values(const Tensor& got, const std::vector<double>& want, double rel, const std::string& what) {
  const std::vector<double> g = got.to(kFloat64).cpu().to_vector<double>();
  ASSERT_EQ(g.size(), want.size()) << what;
  for (size_t i = 0; i < g.size(); ++i) {
    const double e = want[i], v = g[i];
    if (std::isnan(e)) {
      EXPECT_TRUE(std::isnan(v)) << what << " element " << i << ": " << v << " vs NaN";
    } else if (std::isinf(e) || e == 0.0) {
      EXPECT_TRUE(v == e && std::signbit(v) == std::signbit(e))
          << what << " element " << i << ": " << v << " vs " << e;
    } else {
      EXPECT_LE(std::abs(v - e), rel * std::abs(e)) << what << " element " << i << ": " << v << " vs " << e;
    }
  }
}

TEST(ElementwiseMath, UnaryEdgeValuesFollowPyTorch) {
  auto check = [](Device device) {
    for (const EdgeRow& r : kUnaryEdges) {
      expect_values(r.fn(tensor<double>(kEdge).to(device)), r.f64, 4e-15,
                    fmt::format("{} float64 {}", r.name, device.str()));
      const Tensor out32 = r.fn(tensor<double>(kEdge).to(kFloat32).to(device));
      EXPECT_EQ(out32.dtype(), kFloat32) << r.name;
      expect_values(out32, r.f32, 2e-6, fmt::format("{} float32 {}", r.name, device.str()));
    }
  };
  check(Device::cpu());
  if (cuda::is_available()) check(Device::cuda());
}

TEST(ElementwiseMath, BinaryEdgeValuesFollowPyTorch) {
  auto check = [](Device device) {
    for (const BinaryEdgeRow& r : kBinaryEdges)
      for (DType dt : {kFloat64, kFloat32}) {
        const Tensor out = r.fn(tensor<double>(kA).to(dt).to(device), tensor<double>(kB).to(dt).to(device));
        EXPECT_EQ(out.dtype(), dt) << r.name;
        expect_values(out, dt == kFloat64 ? r.f64 : r.f32, dt == kFloat64 ? 4e-15 : 2e-6,
                      fmt::format("{} {} {}", r.name, dt, device.str()));
      }
  };
  check(Device::cpu());
  if (cuda::is_available()) check(Device::cuda());
}

// torch.round is half to even (np.round's rule), not C's round half away from zero.
TEST(ElementwiseMath, RoundingAtHalvesFollowsPyTorch) {
  const Tensor x = tensor<double>(kHalves);
  // torch 1.13: torch.round/floor/ceil/trunc/frac(torch.tensor(kHalves, dtype=torch.float64))
  expect_values(round(x),
                {0.0, 2.0, 2.0, -0.0, -2.0, -2.0, 0.0, 4503599627370497.0, -0.0, 1.0000000000000002e+16}, 0,
                "round");
  expect_values(floor(x),
                {0.0, 1.0, 2.0, -1.0, -2.0, -3.0, 0.0, 4503599627370497.0, -1.0, 1.0000000000000002e+16}, 0,
                "floor");
  expect_values(ceil(x),
                {1.0, 2.0, 3.0, -0.0, -1.0, -2.0, 1.0, 4503599627370497.0, -0.0, 1.0000000000000002e+16}, 0,
                "ceil");
  expect_values(trunc(x),
                {0.0, 1.0, 2.0, -0.0, -1.0, -2.0, 0.0, 4503599627370497.0, -0.0, 1.0000000000000002e+16}, 0,
                "trunc");
  expect_values(frac(x), {0.5, 0.5, 0.5, -0.5, -0.5, -0.5, 0.49999999999999994, 0.0, -0.4, 0.0}, 0, "frac");
  // float32 and bfloat16 keep their dtype (torch.round(torch.tensor([0.5, 1.5, 2.5, -2.5])))
  EXPECT_EQ(round(tensor<float>({0.5f, 1.5f, 2.5f, -2.5f})).to_vector<float>(),
            (std::vector<float>{0, 2, 2, -2}));
  const Tensor bf = round(tensor<float>({0.5f, 1.5f, 2.5f}).to(kBFloat16));
  EXPECT_EQ(bf.dtype(), kBFloat16);
  EXPECT_EQ(bf.to(kFloat32).to_vector<float>(), (std::vector<float>{0, 2, 2}));
  // the Tensor methods are the same ops
  EXPECT_TRUE(equal(x.round(), round(x)));
  EXPECT_TRUE(equal(x.floor(), floor(x)));
  EXPECT_TRUE(equal(x.ceil(), ceil(x)));
  EXPECT_TRUE(equal(x.trunc(), trunc(x)));
  EXPECT_TRUE(equal(x.frac(), frac(x)));
  const Tensor p = tensor<double>({0.5, 2.0, 8.0});
  EXPECT_TRUE(equal(p.exp2(), exp2(p)));
  EXPECT_TRUE(equal(p.log2(), log2(p)));
  EXPECT_TRUE(equal(p.log10(), log10(p)));
  EXPECT_TRUE(equal(p.fmod(1.5), fmod(p, 1.5)));
  EXPECT_TRUE(equal(p.remainder(-1.5), remainder(p, -1.5)));
  EXPECT_TRUE(equal(p.fmod(x.slice(0, 0, 3)), fmod(p, x.slice(0, 0, 3))));
  EXPECT_TRUE(equal(p.remainder(x.slice(0, 0, 3)), remainder(p, x.slice(0, 0, 3))));
}

// torch 1.13 on integer tensors: the rounding ops are the identity (dtype kept), frac and bool are
// rejected, fmod / remainder stay integer with C's and Python's signs, a zero divisor raises.
TEST(ElementwiseMath, IntegerDtypesFollowPyTorch) {
  auto check = [](Device device) {
    SCOPED_TRACE(device.str());
    auto on = [&](const Tensor& t) { return t.to(device); };
    auto i64 = [](const Tensor& t) { return t.cpu().to_vector<int64_t>(); };
    for (DType dt : {kInt64, kInt32, kUInt8}) {
      const Tensor x = on(tensor<int64_t>({-3, 2, 5}).to(dt));
      for (Tensor (*f)(const Tensor&) : {floor, ceil, round, trunc}) {
        const Tensor y = f(x);
        EXPECT_EQ(y.dtype(), dt);
        EXPECT_TRUE(equal(y, x));  // (uint8: -3 is 253 in both)
      }
      EMBER_EXPECT_THROW_MSG(frac(x), "frac: input dtype");
    }
    EMBER_EXPECT_THROW_MSG(floor(on(tensor<bool>({true}))), "not defined for bool tensors");
    // torch.fmod / torch.remainder(torch.tensor([7, -7, 7, -7, 0, 6]), torch.tensor([3, 3, -3, -3, 5, 6]))
    for (DType dt : {kInt64, kInt32}) {
      const Tensor a = on(tensor<int64_t>({7, -7, 7, -7, 0, 6}).to(dt)),
                   b = on(tensor<int64_t>({3, 3, -3, -3, 5, 6}).to(dt));
      EXPECT_EQ(fmod(a, b).dtype(), dt);
      EXPECT_EQ(i64(fmod(a, b).to(kInt64)), (std::vector<int64_t>{1, -1, 1, -1, 0, 0}));
      EXPECT_EQ(i64(remainder(a, b).to(kInt64)), (std::vector<int64_t>{1, 2, -2, -1, 0, 0}));
      EXPECT_EQ(fmod(a, -4.0).dtype(), dt);  // a whole scalar keeps the dtype
      EXPECT_EQ(i64(fmod(a, -4.0).to(kInt64)), (std::vector<int64_t>{3, -3, 3, -3, 0, 2}));
      EXPECT_EQ(i64(remainder(a, -4.0).to(kInt64)), (std::vector<int64_t>{-1, -3, -1, -3, 0, -2}));
      // a fractional scalar makes float32: torch.remainder(torch.tensor([5, -5], dtype=torch.int32), 2.5)
      const Tensor f = remainder(on(tensor<int64_t>({5, -5}).to(dt)), 2.5);
      EXPECT_EQ(f.dtype(), kFloat32);
      expect_values(f, {0.0, -0.0}, 0, "remainder(int, 2.5)");
      expect_values(fmod(on(tensor<int64_t>({5, -5}).to(dt)), 2.5), {0.0, -0.0}, 0, "fmod(int, 2.5)");
    }
    // uint8: torch.fmod/remainder(torch.tensor([7, 250, 0, 9], dtype=torch.uint8), [3, 7, 5, 9])
    const Tensor ua = on(tensor<int64_t>({7, 250, 0, 9}).to(kUInt8)),
                 ub = on(tensor<int64_t>({3, 7, 5, 9}).to(kUInt8));
    EXPECT_EQ(fmod(ua, ub).dtype(), kUInt8);
    EXPECT_EQ(i64(fmod(ua, ub).to(kInt64)), (std::vector<int64_t>{1, 5, 0, 0}));
    EXPECT_EQ(i64(remainder(ua, ub).to(kInt64)), (std::vector<int64_t>{1, 5, 0, 0}));
    // bool with a whole scalar computes in int64; bool with bool is rejected
    const Tensor bools = on(tensor<bool>({true, false}));
    EXPECT_EQ(fmod(bools, 2.0).dtype(), kInt64);
    EXPECT_EQ(i64(fmod(bools, 2.0)), (std::vector<int64_t>{1, 0}));
    EMBER_EXPECT_THROW_MSG(fmod(bools, bools), "fmod: not defined for bool tensors");
    // mixed: an integer tensor and a float tensor promote; so does a float64 0-d tensor (not a scalar)
    EXPECT_EQ(fmod(on(tensor<int64_t>({5, -5})), on(tensor<float>({2, 2}))).dtype(), kFloat32);
    EXPECT_EQ(remainder(on(tensor<int64_t>({5, -5})), on(scalar_tensor(2.5, kFloat64))).dtype(), kFloat64);
    // a zero divisor: PyTorch's ZeroDivisionError, for tensors and scalars
    EMBER_EXPECT_THROW_MSG(fmod(on(tensor<int64_t>({5, 6})), on(tensor<int64_t>({0, 1}))),
                           "fmod: ZeroDivisionError");
    EMBER_EXPECT_THROW_MSG(remainder(on(tensor<int32_t>({5})), 0.0), "remainder: ZeroDivisionError");
    EMBER_EXPECT_THROW_MSG(fmod(ua, 0.0), "fmod: ZeroDivisionError");
    // a float zero divisor is NaN (torch.fmod(torch.tensor([5., -5.]), 0.))
    expect_values(fmod(on(tensor<float>({5, -5})), 0.0), {NAN, NAN}, 0, "fmod(x, 0.)");
    expect_values(remainder(on(tensor<float>({5, -5})), 0.0), {NAN, NAN}, 0, "remainder(x, 0.)");
    // INT64_MIN % -1: 0 (the x86 division would trap; PyTorch's CPU kernel dies of SIGFPE here)
    const Tensor big = on(tensor<int64_t>({std::numeric_limits<int64_t>::min(), 7}));
    EXPECT_EQ(i64(fmod(big, -1.0)), (std::vector<int64_t>{0, 0}));
    EXPECT_EQ(i64(remainder(big, -1.0)), (std::vector<int64_t>{0, 0}));
    // float-only ops promote integers to float32, as exp does (torch.tan(torch.tensor([-3, 2, 5])))
    for (Tensor (*f)(const Tensor&) : {tan, asin, atanh, exp2, log2, erfinv, sinc})
      EXPECT_EQ(f(on(tensor<int64_t>({1}))).dtype(), kFloat32);
    expect_values(tan(on(tensor<int64_t>({-3, 2, 5}))),
                  {0.14254654943943024, -2.185039758682251, -3.3805150985717773}, 2e-6, "tan(int)");
    expect_values(exp2(on(tensor<bool>({true, false}))), {2.0, 1.0}, 0, "exp2(bool)");
    expect_values(erfinv(on(tensor<bool>({true, false}))), {INFINITY, 0.0}, 0, "erfinv(bool)");
    const Tensor at = atan2(on(tensor<int64_t>({-3, 2, 5})), on(tensor<int64_t>({2, -2, 3})));
    EXPECT_EQ(at.dtype(), kFloat32);
    expect_values(at, {-0.9827937483787537, 2.356194496154785, 1.0303767919540405}, 2e-6, "atan2(int, int)");
    const Tensor xl = xlogy(on(tensor<int64_t>({-3, 2, 5})), on(tensor<int64_t>({2, -2, 3})));
    EXPECT_EQ(xl.dtype(), kFloat32);
    expect_values(xl, {-2.079441547393799, NAN, 5.493061542510986}, 2e-6, "xlogy(int, int)");
    // hypot and logaddexp have no integer kernels in PyTorch: rejected, not promoted
    EMBER_EXPECT_THROW_MSG(hypot(on(tensor<int64_t>({3})), on(tensor<int64_t>({4}))),
                           "hypot: not defined for int64 tensors");
    EMBER_EXPECT_THROW_MSG(logaddexp(on(tensor<int64_t>({3})), on(tensor<int64_t>({4}))),
                           "logaddexp: not defined for int64");
    EXPECT_EQ(hypot(on(tensor<float>({3})), on(tensor<int64_t>({4}))).dtype(),
              kFloat32);  // float beside int: fine
  };
  check(Device::cpu());
  if (cuda::is_available()) check(Device::cuda());
}

// Values PyTorch's own kernels give where a plain composite would not: hypot past float32's
// sqrt(FLT_MAX), logaddexp of huge equal arguments, the where() scalar that is not finite.
TEST(ElementwiseMath, NoOverflowInHypotAndLogaddexp) {
  // torch.hypot(torch.tensor([1e20]), torch.tensor([1e20])) = 1.414213581995256e+20
  expect_values(hypot(tensor<float>({1e20f, 3.0f}), tensor<float>({1e20f, 4.0f})),
                {1.414213581995256e+20, 5.0}, 1e-7, "hypot");
  expect_values(hypot(tensor<double>({1e200, -5.0}), tensor<double>({1e200, 12.0})),
                {1.414213562373095e+200, 13.0}, 4e-16, "hypot");
  // torch.logaddexp(torch.tensor([1000., -1000.], dtype=torch.float64), torch.tensor([1000., 5.]))
  expect_values(logaddexp(tensor<double>({1000.0, -1000.0}), tensor<double>({1000.0, 5.0})),
                {1000.6931471805599, 5.0}, 4e-16, "logaddexp");
  // torch.where(torch.tensor([True, False]), torch.tensor([1, 2]), math.inf) is float32 [1., inf]
  const Tensor w = where(tensor<bool>({true, false}), tensor<int64_t>({1, 2}), INFINITY);
  EXPECT_EQ(w.dtype(), kFloat32);
  expect_values(w, {1.0, INFINITY}, 0, "where(int, inf)");
}

// Gradients at the edges, as torch 1.13's autograd gives them (x.grad after y.sum().backward()).
TEST(ElementwiseMath, EdgeGradientsFollowPyTorch) {
  auto grad_of = [](Tensor (*f)(const Tensor&), std::vector<double> xs) {
    Tensor x = tensor<double>(xs).requires_grad_();
    f(x).sum().backward();
    return x.grad();
  };
  expect_values(grad_of(asin, {1.0, -1.0, 0.5}), {INFINITY, INFINITY, 1.1547005383792517}, 1e-15, "asin'");
  expect_values(grad_of(acos, {1.0, -1.0, 0.5}), {-INFINITY, -INFINITY, -1.1547005383792517}, 1e-15, "acos'");
  expect_values(grad_of(atanh, {1.0, -1.0, 0.5}), {INFINITY, INFINITY, 1.3333333333333333}, 1e-15, "atanh'");
  expect_values(grad_of(acosh, {1.0, 2.0}), {INFINITY, 0.5773502691896258}, 1e-15, "acosh'");
  expect_values(grad_of(log2, {0.0, -1.0, 1.0}), {INFINITY, -1.4426950408889634, 1.4426950408889634}, 1e-15,
                "log2'");
  expect_values(grad_of(erfinv, {1.0, -1.0, 0.0}), {INFINITY, INFINITY, 0.8862269254527579}, 1e-15,
                "erfinv'");
  for (Tensor (*f)(const Tensor&) : {floor, ceil, round, trunc})  // 0 also at the jumps
    expect_values(grad_of(f, {0.5, 1.0, -2.5}), {0.0, 0.0, 0.0}, 0, "rounding'");
  expect_values(grad_of(frac, {0.5, 1.0, -2.5}), {1.0, 1.0, 1.0}, 0, "frac'");
  expect_values(grad_of(sinc, {0.0, 0.5}), {0.0, -1.2732395447351625}, 1e-15, "sinc'");

  auto grads_of = [](Tensor (*f)(const Tensor&, const Tensor&), std::vector<double> xs,
                     std::vector<double> ys) {
    Tensor x = tensor<double>(xs).requires_grad_(), y = tensor<double>(ys).requires_grad_();
    f(x, y).sum().backward();
    return std::pair{x.grad(), y.grad()};
  };
  auto [xg, yg] = grads_of(xlogy, {0.0, 0.0, 2.0}, {0.0, 1.0, 0.0});
  expect_values(xg, {0.0, 0.0, -INFINITY}, 0, "xlogy' x");
  expect_values(yg, {NAN, 0.0, INFINITY}, 0, "xlogy' y");
  std::tie(xg, yg) = grads_of(logaddexp, {-INFINITY, 1.0, 2.0}, {-INFINITY, 1.0, 0.0});
  expect_values(xg, {NAN, 0.5, 0.8807970779778823}, 1e-15, "logaddexp' a");
  expect_values(yg, {NAN, 0.5, 0.11920292202211755}, 1e-15, "logaddexp' b");
  std::tie(xg, yg) = grads_of(hypot, {0.0, 3.0}, {0.0, 4.0});
  expect_values(xg, {NAN, 0.6}, 1e-15, "hypot' a");
  expect_values(yg, {NAN, 0.8}, 1e-15, "hypot' b");
  std::tie(xg, yg) = grads_of(atan2, {0.0, 3.0}, {0.0, 4.0});
  expect_values(xg, {NAN, 0.16}, 1e-15, "atan2' a");
  expect_values(yg, {NAN, -0.12}, 1e-15, "atan2' b");
  std::tie(xg, yg) = grads_of(fmod, {5.0, -5.0, 7.5}, {3.0, 3.0, -2.0});
  expect_values(xg, {1.0, 1.0, 1.0}, 0, "fmod' a");
  expect_values(yg, {-1.0, 1.0, 3.0}, 0, "fmod' b");
  std::tie(xg, yg) = grads_of(remainder, {5.0, -5.0, 7.5}, {3.0, 3.0, -2.0});
  expect_values(xg, {1.0, 1.0, 1.0}, 0, "remainder' a");
  expect_values(yg, {-1.0, 2.0, 4.0}, 0, "remainder' b");
}

TEST(ElementwiseMath, LerpDtypeRulesFollowPyTorch) {
  const Tensor f32 = tensor<float>({1.0f}), f64 = tensor<double>({2.0});
  // torch 1.13: "expected dtype float for `end` but got dtype double"
  EMBER_EXPECT_THROW_MSG(lerp(f32, f64, 0.5), "lerp: expected dtype float32 for `end` but got dtype float64");
  EMBER_EXPECT_THROW_MSG(lerp(f32, f32, f64),
                         "lerp: expected dtype float32 for `weight` but got dtype float64");
  EMBER_EXPECT_THROW_MSG(lerp(tensor<int64_t>({1}), tensor<int64_t>({2}), 0.5),
                         "lerp: expected a floating dtype");
  // torch.lerp(torch.tensor([1.]), torch.tensor([3.]), 2) is [5.]: weights outside [0, 1] extrapolate
  EXPECT_EQ(lerp(f32, tensor<float>({3.0f}), 2.0).to_vector<float>(), (std::vector<float>{5.0f}));
  EXPECT_EQ(lerp(f32, tensor<float>({3.0f}), 1.0).to_vector<float>(),
            (std::vector<float>{3.0f}));  // exact at 1
}

}  // namespace
}  // namespace ember::testing
