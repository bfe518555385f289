// Winograd F(2x2, 3x3) convolution: the transforms, the 16 products, and how images are batched
// (the math is in conv_winograd.h).
//
// Layout. Images are processed in blocks of a few, so that each of the 16 products covers a few
// hundred tiles (one image's tiles alone make products too thin for BLAS to run at speed). Within a
// block the transformed patches are V[e][c][t] and the products M[e][k][t] (the gradients: Z[e][k][t]
// and dV[e][c][t]): for each position e a row-major matrix with the tiles t along its rows, which is
// what the GEMMs read. Every plane is first copied into a scratch plane padded to whole tiles (zeros
// around the image), and outputs are written to one, so the transform loops have no bounds checks
// and the compiler vectorises them across the tiles of the plane.
#include "ops/cpu/conv_winograd.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <vector>

#include "core/parallel.h"
#include "ops/cpu/blas.h"

// The tile loops write 16 (or 4) outputs per tile through pointers a run-time stride apart, which
// the compiler cannot prove disjoint; it would need over a hundred overlap checks to vectorise, so
// it gives up. They never overlap (each output has its own matrix or row), which this tells it.
#define EMBER_NO_ALIASING _Pragma("GCC ivdep")

namespace ember::cpu {
namespace {

constexpr int kPositions = 16;        // the 4x4 transformed grid
constexpr int64_t kBlockTiles = 256;  // tiles per GEMM column block (at least)

// The distance between the 16 position matrices [rows x cols] of a block (or of the filters), in
// elements. The transforms write all 16 for each tile; were that distance a multiple of 4 KiB (it
// often is: 32 channels x 288 tiles x 4 bytes is 9 x 4 KiB) the 16 streams would all map to the
// same L1 set and evict one another, which made the input transform 5x slower. One cache line of
// skew per matrix avoids it.
int64_t position_stride(int64_t rows, int64_t cols) { return rows * cols + 16; }

// The tiling of one image's output and the blocks of images that share one set of products.
struct Tiling {
  int64_t rows, cols;  // tiles down and across
  int64_t images;      // images per block
  int64_t per_image() const { return rows * cols; }
  int64_t tiles(int64_t block_images) const { return block_images * per_image(); }
};

Tiling tiling(const WinogradShape& s) {
  Tiling t{(s.oh() + 1) / 2, (s.ow() + 1) / 2, 1};
  const int64_t per_image = std::max<int64_t>(1, t.per_image());  // (0 only for an empty output)
  t.images = std::clamp<int64_t>((kBlockTiles + per_image - 1) / per_image, 1, std::max<int64_t>(1, s.n));
  return t;
}

// ---- the fixed transforms, each as its 1-D step applied down the columns, then along the rows ----

// B^T applied to 4 values (a column or a row of a 4x4 patch).
template <class T>
inline void bt4(T d0, T d1, T d2, T d3, T (&r)[4]) {
  r[0] = d0 - d2;
  r[1] = d1 + d2;
  r[2] = d2 - d1;
  r[3] = d1 - d3;
}
// A^T applied to 4 values: the 2 outputs they make.
template <class T>
inline void at4(T m0, T m1, T m2, T m3, T (&r)[2]) {
  r[0] = m0 + m1 + m2;
  r[1] = m1 - m2 - m3;
}
// A applied to 2 values (the adjoint of at4).
template <class T>
inline void a2(T y0, T y1, T (&r)[4]) {
  r[0] = y0;
  r[1] = y0 + y1;
  r[2] = y0 - y1;
  r[3] = -y1;
}
// G applied to 3 values.
template <class T>
inline void g3(T g0, T g1, T g2, T (&r)[4]) {
  r[0] = g0;
  r[1] = T(0.5) * (g0 + g1 + g2);
  r[2] = T(0.5) * (g0 - g1 + g2);
  r[3] = g2;
}
// G^T applied to 4 values (the adjoint of g3).
template <class T>
inline void gt4(T u0, T u1, T u2, T u3, T (&r)[3]) {
  r[0] = u0 + T(0.5) * (u1 + u2);
  r[1] = T(0.5) * (u1 - u2);
  r[2] = T(0.5) * (u1 + u2) + u3;
}

// U[e][k][c] = G w[k][c] G^T for filters w [k][c][3][3]; matrix e at e * position_stride(k, c).
template <class T>
std::vector<T> transform_filters(const T* w, int64_t k, int64_t c) {
  const int64_t stride = position_stride(k, c);
  std::vector<T> u(kPositions * stride);
  EMBER_NO_ALIASING
  for (int64_t i = 0; i < k * c; ++i) {
    const T* g = w + 9 * i;
    T cols[3][4];  // G applied down each column of g
    for (int j = 0; j < 3; ++j) g3(g[j], g[3 + j], g[6 + j], cols[j]);
    for (int r = 0; r < 4; ++r) {
      T row[4];
      g3(cols[0][r], cols[1][r], cols[2][r], row);
      for (int q = 0; q < 4; ++q) u[(4 * r + q) * stride + i] = row[q];
    }
  }
  return u;
}

// dw[k][c] = G^T dU[k][c] G, from dU[e][k][c] (matrix e at e * position_stride(k, c)).
template <class T>
void filter_gradients(const T* du, int64_t k, int64_t c, T* dw) {
  const int64_t stride = position_stride(k, c);
  EMBER_NO_ALIASING
  for (int64_t i = 0; i < k * c; ++i) {
    T cols[4][3];  // G^T applied down each column of dU
    for (int q = 0; q < 4; ++q)
      gt4(du[q * stride + i], du[(4 + q) * stride + i], du[(8 + q) * stride + i], du[(12 + q) * stride + i],
          cols[q]);
    for (int r = 0; r < 3; ++r) {
      T row[3];
      gt4(cols[0][r], cols[1][r], cols[2][r], cols[3][r], row);
      for (int q = 0; q < 3; ++q) dw[9 * i + 3 * r + q] = row[q];
    }
  }
}

// A plane whose even and odd rows are stored apart, each half [rows x cols]. The transforms read a
// tile's rows 2 ty + i; split this way those are row ty (+ 1) of one half, so one loop runs over
// all tiles of the plane at unit stride rather than one short loop per tile row.
// Every plane of one call has the same geometry, so the zeros around the image are written once
// (by resize) and each fill only copies the image's rows over the previous one's.
template <class T>
struct SplitPlane {
  std::vector<T> data;
  int64_t rows = 0, cols = 0;
  void resize(int64_t half_rows, int64_t row_length) {
    if (half_rows == rows && row_length == cols) return;
    rows = half_rows, cols = row_length;
    data.assign(2 * rows * cols, T(0));
  }
  T* even() { return data.data(); }
  T* odd() { return data.data() + rows * cols; }
  T* row(int64_t r) { return (r % 2 ? odd() : even()) + r / 2 * cols; }  // row r of the whole plane
  // The image [h x w], moved down by `top` and right by `left`, zeros around it (the same h, w,
  // top and left on every call since resize).
  void fill(const T* image, int64_t h, int64_t w, int64_t top, int64_t left) {
    const int64_t copy_rows = std::min(h, 2 * rows - top), copy_cols = std::min(w, cols - left);
    for (int64_t i = 0; i < copy_rows; ++i)
      std::memcpy(row(i + top) + left, image + i * w, sizeof(T) * copy_cols);
  }
  // The reverse: image [h x w] = the plane's rows top .. top + h - 1, columns left .. left + w - 1.
  void crop(T* image, int64_t h, int64_t w, int64_t top, int64_t left) {
    for (int64_t i = 0; i < h; ++i) std::memcpy(image + i * w, row(i + top) + left, sizeof(T) * w);
  }
};

// The 4 rows of a half-transformed tile row, even and odd columns apart: eight arrays of n values
// in `scratch` (shared by transform_patches and its adjoint).
template <class T>
struct ColumnHalves {
  T* even[4];
  T* odd[4];
  ColumnHalves(std::vector<T>& scratch, int64_t n) {
    scratch.resize(8 * n);
    for (int i = 0; i < 4; ++i) even[i] = scratch.data() + i * n, odd[i] = scratch.data() + (4 + i) * n;
  }
};

// v[e * stride + t] = (B^T d B)[e] for every tile t of a padded split plane (rows of 2 tl.cols + 2).
// First B^T down the columns, for all tile rows at once; its 4 result rows are kept with their even
// and odd columns apart (even[i] holds columns 0, 2, 4, ... of row i of B^T d, each tile row
// tl.cols + 1 wide), so that B^T along the rows then reads columns 2 tx .. 2 tx + 3 of a tile as
// even[tx], odd[tx], even[tx + 1], odd[tx + 1]: unit strides only.
template <class T>
void transform_patches(SplitPlane<T>& plane, const Tiling& tl, std::vector<T>& scratch, T* v,
                       int64_t stride) {
  const int64_t half = tl.cols + 1, n = tl.rows * half;  // n: column pairs of the tile rows
  const ColumnHalves<T> halves(scratch, n);
  T* const* even = halves.even;
  T* const* odd = halves.odd;
  {
    const T *p0 = plane.even(), *p1 = plane.odd(), *p2 = p0 + plane.cols, *p3 = p1 + plane.cols;
    T *e0 = even[0], *e1 = even[1], *e2 = even[2], *e3 = even[3];
    T *o0 = odd[0], *o1 = odd[1], *o2 = odd[2], *o3 = odd[3];
    EMBER_NO_ALIASING
    for (int64_t u = 0; u < n; ++u) {  // patch rows 0..3 of tile row u / half: even, odd, next even, next odd
      T col[4];
      bt4(p0[2 * u], p1[2 * u], p2[2 * u], p3[2 * u], col);
      e0[u] = col[0], e1[u] = col[1], e2[u] = col[2], e3[u] = col[3];
      bt4(p0[2 * u + 1], p1[2 * u + 1], p2[2 * u + 1], p3[2 * u + 1], col);
      o0[u] = col[0], o1[u] = col[1], o2[u] = col[2], o3[u] = col[3];
    }
  }
  for (int i = 0; i < 4; ++i) {
    T *o0 = v + 4 * i * stride, *o1 = o0 + stride, *o2 = o1 + stride, *o3 = o2 + stride;
    for (int64_t ty = 0; ty < tl.rows; ++ty) {
      const T *e = even[i] + ty * half, *o = odd[i] + ty * half;
      const int64_t t0 = ty * tl.cols;
      EMBER_NO_ALIASING
      for (int64_t tx = 0; tx < tl.cols; ++tx) {
        T row[4];
        bt4(e[tx], o[tx], e[tx + 1], o[tx + 1], row);
        o0[t0 + tx] = row[0], o1[t0 + tx] = row[1], o2[t0 + tx] = row[2], o3[t0 + tx] = row[3];
      }
    }
  }
}

// B applied to 4 values (the adjoint of bt4).
template <class T>
inline void b4(T r0, T r1, T r2, T r3, T (&d)[4]) {
  d[0] = r0;
  d[1] = r1 - r2 + r3;
  d[2] = r1 + r2 - r0;
  d[3] = -r3;
}

// The adjoint of transform_patches: the split plane (same geometry) = the sum over tiles t of
// B dv_t B^T placed at the tile's patch, from dv[e * stride + t]. It undoes the two passes in
// reverse order. Neighbouring patches overlap by two rows and two columns, so each pass first
// writes what a tile gives its own first two rows (columns), then adds what it gives the next
// tile's: two loops with no dependence between iterations instead of one with.
template <class T>
void untransform_patches(const T* dv, int64_t stride, const Tiling& tl, std::vector<T>& scratch,
                         SplitPlane<T>& plane) {
  const int64_t half = tl.cols + 1, n = tl.rows * half;
  const ColumnHalves<T> halves(scratch, n);
  T* const* even = halves.even;
  T* const* odd = halves.odd;
  for (int i = 0; i < 4; ++i) {  // B along each tile row: rows i of B dv, even and odd columns apart
    const T *r0 = dv + 4 * i * stride, *r1 = r0 + stride, *r2 = r1 + stride, *r3 = r2 + stride;
    for (int64_t ty = 0; ty < tl.rows; ++ty) {
      T *e = even[i] + ty * half, *o = odd[i] + ty * half;
      const int64_t t0 = ty * tl.cols;
      EMBER_NO_ALIASING
      for (int64_t tx = 0; tx < tl.cols; ++tx) {
        T d[4];
        b4(r0[t0 + tx], r1[t0 + tx], r2[t0 + tx], r3[t0 + tx], d);
        e[tx] = d[0], o[tx] = d[1];
      }
      e[tl.cols] = o[tl.cols] = T(0);
      EMBER_NO_ALIASING
      for (int64_t tx = 0; tx < tl.cols; ++tx) {
        T d[4];
        b4(r0[t0 + tx], r1[t0 + tx], r2[t0 + tx], r3[t0 + tx], d);
        e[tx + 1] += d[2], o[tx + 1] += d[3];
      }
    }
  }
  // B down the columns, for all tile rows at once, into the plane's even and odd rows.
  const int64_t ld = plane.cols;
  T *p0 = plane.even(), *p1 = plane.odd(), *p2 = p0 + ld, *p3 = p1 + ld;
  const T *e0 = even[0], *e1 = even[1], *e2 = even[2], *e3 = even[3];
  const T *o0 = odd[0], *o1 = odd[1], *o2 = odd[2], *o3 = odd[3];
  EMBER_NO_ALIASING
  for (int64_t u = 0; u < n; ++u) {
    T d[4], f[4];
    b4(e0[u], e1[u], e2[u], e3[u], d);
    b4(o0[u], o1[u], o2[u], o3[u], f);
    p0[2 * u] = d[0], p0[2 * u + 1] = f[0];
    p1[2 * u] = d[1], p1[2 * u + 1] = f[1];
  }
  std::fill(p0 + 2 * n, p0 + 2 * n + ld, T(0));
  std::fill(p1 + 2 * n, p1 + 2 * n + ld, T(0));
  EMBER_NO_ALIASING
  for (int64_t u = 0; u < n; ++u) {
    T d[4], f[4];
    b4(e0[u], e1[u], e2[u], e3[u], d);
    b4(o0[u], o1[u], o2[u], o3[u], f);
    p2[2 * u] += d[2], p2[2 * u + 1] += f[2];
    p3[2 * u] += d[3], p3[2 * u + 1] += f[3];
  }
}

// The 2x2 output tiles A^T M A of all tiles of a plane, from m[e * stride + t], into a split plane
// [tl.rows x 2 tl.cols] per half: tile t's top row lands at even[2 t], its bottom row at odd[2 t].
template <class T>
void transform_products(const T* m, int64_t stride, const Tiling& tl, SplitPlane<T>& plane) {
  T *top = plane.even(), *bottom = plane.odd();
  const int64_t n = tl.per_image();
  EMBER_NO_ALIASING
  for (int64_t t = 0; t < n; ++t) {
    T col[4][2];  // A^T applied down each of the 4 columns
    for (int j = 0; j < 4; ++j)
      at4(m[j * stride + t], m[(4 + j) * stride + t], m[(8 + j) * stride + t], m[(12 + j) * stride + t],
          col[j]);
    T y0[2], y1[2];
    at4(col[0][0], col[1][0], col[2][0], col[3][0], y0);
    at4(col[0][1], col[1][1], col[2][1], col[3][1], y1);
    top[2 * t] = y0[0], top[2 * t + 1] = y0[1];
    bottom[2 * t] = y1[0], bottom[2 * t + 1] = y1[1];
  }
}

// z[e * stride + t] = (A dy A^T)[e] for every 2x2 tile of a split plane laid out as above.
template <class T>
void transform_output_gradients(SplitPlane<T>& plane, const Tiling& tl, T* z, int64_t stride) {
  const T *top = plane.even(), *bottom = plane.odd();
  const int64_t n = tl.per_image();
  EMBER_NO_ALIASING
  for (int64_t t = 0; t < n; ++t) {
    T left[4], right[4];  // A applied down the tile's 2 columns
    a2(top[2 * t], bottom[2 * t], left);
    a2(top[2 * t + 1], bottom[2 * t + 1], right);
    for (int r = 0; r < 4; ++r) {
      T row[4];
      a2(left[r], right[r], row);
      for (int j = 0; j < 4; ++j) z[(4 * r + j) * stride + t] = row[j];
    }
  }
}

// A block's 16 position matrices: matrix e at data + e * stride, row-major with `ld` columns.
template <class T>
struct Positions {
  T* data;
  int64_t stride, ld;
  T* operator[](int e) const { return data + e * stride; }
};

// The 16 products of one block: out[e] [m x n] (+)= op(a[e]) [m x k] @ op(b[e]), op(x) = x or x^T.
template <class T>
void position_products(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, Positions<const T> a,
                       Positions<const T> b, T beta, Positions<T> out) {
  const int mi = blas_int(m, "conv2d", "winograd rows"), ni = blas_int(n, "conv2d", "winograd columns"),
            ki = blas_int(k, "conv2d", "winograd depth");
  for (int e = 0; e < kPositions; ++e)
    blas_gemm<T>(trans_a, trans_b, mi, ni, ki, T(1), a[e], blas_int(a.ld, "conv2d", "ld"), b[e],
                 blas_int(b.ld, "conv2d", "ld"), beta, out[e], blas_int(out.ld, "conv2d", "ld"));
}

int64_t blocks(const WinogradShape& s, const Tiling& tl) { return (s.n + tl.images - 1) / tl.images; }

// Block b: images [first, first + count), tiles of them all.
struct Block {
  int64_t first, count, tiles;
};
Block block(const WinogradShape& s, const Tiling& tl, int64_t b) {
  const int64_t first = b * tl.images, count = std::min(tl.images, s.n - first);
  return {first, count, tl.tiles(count)};
}

// A worker's buffers: one block's matrices of the 16 positions (two sets), the transforms' scratch,
// an input plane padded to whole patches and an output plane in whole tiles (their geometry is
// fixed for the call, so the zeros around the image are written here, once).
template <class T>
struct Workspace {
  std::vector<T> first, second, scratch;
  SplitPlane<T> plane, grad_plane;
  Workspace(const Tiling& tl, int64_t first_rows, int64_t second_rows)
      : first(kPositions * position_stride(first_rows, tl.tiles(tl.images))),
        second(kPositions * position_stride(second_rows, tl.tiles(tl.images))) {
    plane.resize(tl.rows + 1, 2 * tl.cols + 2);
    grad_plane.resize(tl.rows, 2 * tl.cols);
  }
};

// Runs body(block, workspace) for every block, in parallel. Blocks go to whichever worker is free
// (a shared counter): each block writes the outputs of its own images only, so the result does not
// depend on the schedule. The workspaces' position matrices have first_rows and second_rows rows.
template <class T, class Body>
void for_each_block(const WinogradShape& s, const Tiling& tl, int64_t first_rows, int64_t second_rows,
                    const Body& body) {
  const int64_t nblocks = blocks(s, tl);
  std::atomic<int64_t> next{0};
  parallel_for(0, std::min<int64_t>(get_num_threads(), nblocks), 1, [&](int64_t, int64_t) {
    Workspace<T> ws(tl, first_rows, second_rows);
    for (int64_t b = next++; b < nblocks; b = next++) body(block(s, tl, b), ws);
  });
}

// The transformed patches of a block: v[e][c][t], t = image * per_image + tile (position matrices
// `stride` apart).
template <class T>
void transform_block_inputs(const WinogradShape& s, const Tiling& tl, const T* x, const Block& b,
                            SplitPlane<T>& plane, std::vector<T>& scratch, T* v, int64_t stride) {
  for (int64_t i = 0; i < b.count; ++i)
    for (int64_t c = 0; c < s.c; ++c) {
      plane.fill(x + ((b.first + i) * s.c + c) * s.h * s.w, s.h, s.w, s.ph, s.pw);
      transform_patches(plane, tl, scratch, v + c * b.tiles + i * tl.per_image(), stride);
    }
}

// The transformed output gradients of a block: z[e][k][t] (position matrices `stride` apart).
template <class T>
void transform_block_output_gradients(const WinogradShape& s, const Tiling& tl, const T* dy, const Block& b,
                                      SplitPlane<T>& grad_plane, T* z, int64_t stride) {
  for (int64_t i = 0; i < b.count; ++i)
    for (int64_t k = 0; k < s.k; ++k) {
      grad_plane.fill(dy + ((b.first + i) * s.k + k) * s.oh() * s.ow(), s.oh(), s.ow(), 0, 0);
      transform_output_gradients(grad_plane, tl, z + k * b.tiles + i * tl.per_image(), stride);
    }
}

}  // namespace

template <class T>
void winograd_forward(const WinogradShape& s, const T* x, const T* w, const T* bias, T* out) {
  const Tiling tl = tiling(s);
  const std::vector<T> u = transform_filters(w, s.k, s.c);
  const int64_t oh = s.oh(), ow = s.ow();
  for_each_block<T>(s, tl, s.c, s.k, [&](const Block& b, Workspace<T>& ws) {  // V, then M
    const int64_t v_stride = position_stride(s.c, b.tiles), m_stride = position_stride(s.k, b.tiles);
    transform_block_inputs(s, tl, x, b, ws.plane, ws.scratch, ws.first.data(), v_stride);
    position_products<T>(false, false, s.k, b.tiles, s.c, {u.data(), position_stride(s.k, s.c), s.c},
                         {ws.first.data(), v_stride, b.tiles}, T(0), {ws.second.data(), m_stride, b.tiles});
    SplitPlane<T>& result = ws.grad_plane;  // an output plane in whole tiles
    for (int64_t i = 0; i < b.count; ++i)
      for (int64_t k = 0; k < s.k; ++k) {
        transform_products(ws.second.data() + k * b.tiles + i * tl.per_image(), m_stride, tl, result);
        T* dst = out + ((b.first + i) * s.k + k) * oh * ow;
        const T shift = bias ? bias[k] : T(0);
        for (int64_t r = 0; r < oh; ++r) {
          const T* src = result.row(r);
          for (int64_t q = 0; q < ow; ++q) dst[r * ow + q] = src[q] + shift;
        }
      }
  });
}

template <class T>
void winograd_backward_input(const WinogradShape& s, const T* dy, const T* w, T* dx) {
  // The forward's adjoint, step by step in reverse: Z = A dy A^T per output tile, dV[e] = U[e]^T Z[e],
  // then B dV B^T per tile added onto the patches it came from (untransform_patches).
  const Tiling tl = tiling(s);
  const std::vector<T> u = transform_filters(w, s.k, s.c);
  for_each_block<T>(s, tl, s.k, s.c, [&](const Block& b, Workspace<T>& ws) {  // Z, then dV
    const int64_t z_stride = position_stride(s.k, b.tiles), dv_stride = position_stride(s.c, b.tiles);
    transform_block_output_gradients(s, tl, dy, b, ws.grad_plane, ws.first.data(), z_stride);
    position_products<T>(true, false, s.c, b.tiles, s.k, {u.data(), position_stride(s.k, s.c), s.c},
                         {ws.first.data(), z_stride, b.tiles}, T(0), {ws.second.data(), dv_stride, b.tiles});
    for (int64_t i = 0; i < b.count; ++i)
      for (int64_t c = 0; c < s.c; ++c) {
        untransform_patches(ws.second.data() + c * b.tiles + i * tl.per_image(), dv_stride, tl, ws.scratch,
                            ws.plane);
        ws.plane.crop(dx + ((b.first + i) * s.c + c) * s.h * s.w, s.h, s.w, s.ph, s.pw);
      }
  });
}

template <class T>
void winograd_backward_weight(const WinogradShape& s, const T* dy, const T* x, T* dw) {
  const Tiling tl = tiling(s);
  std::vector<T> du(kPositions * position_stride(s.k, s.c), T(0));
  // Each worker sums its blocks' products into a private dU; parallel_for_sum adds those in a fixed
  // order, so the result is reproducible.
  auto sum_blocks = [&](int64_t begin, int64_t end, T* partial) {
    Workspace<T> ws(tl, s.c, s.k);  // V, Z
    for (int64_t index = begin; index < end; ++index) {
      const Block b = block(s, tl, index);
      const int64_t v_stride = position_stride(s.c, b.tiles), z_stride = position_stride(s.k, b.tiles);
      transform_block_inputs(s, tl, x, b, ws.plane, ws.scratch, ws.first.data(), v_stride);
      transform_block_output_gradients(s, tl, dy, b, ws.grad_plane, ws.second.data(), z_stride);
      position_products<T>(false, true, s.k, s.c, b.tiles, {ws.second.data(), z_stride, b.tiles},
                           {ws.first.data(), v_stride, b.tiles}, T(1),
                           {partial, position_stride(s.k, s.c), s.c});
    }
  };
  parallel_for_sum(int64_t{0}, blocks(s, tl), 1, du.data(), du.size(), sum_blocks);
  filter_gradients(du.data(), s.k, s.c, dw);
}

#define EMBER_WINOGRAD_INSTANTIATE(T)                                                        \
  template void winograd_forward<T>(const WinogradShape&, const T*, const T*, const T*, T*); \
  template void winograd_backward_input<T>(const WinogradShape&, const T*, const T*, T*);    \
  template void winograd_backward_weight<T>(const WinogradShape&, const T*, const T*, T*);
EMBER_WINOGRAD_INSTANTIATE(float)
EMBER_WINOGRAD_INSTANTIATE(double)
#undef EMBER_WINOGRAD_INSTANTIATE

}  // namespace ember::cpu
