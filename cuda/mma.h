#pragma once
// Warp-level bf16 tensor-core products written with the two PTX instructions underneath
// nvcuda::wmma: `ldmatrix` (a warp loads 8x8 tiles of 16-bit values from shared memory, each lane
// receiving two neighbouring values) and `mma.sync.m16n8k16` (a warp multiplies a 16 x 16 A
// fragment by a 16 x 8 B fragment into 16 x 8 fp32 accumulators). sm_80 and newer.
//
// Why not wmma: its fragment layout is opaque, so a kernel must store the accumulators to shared
// memory to find out which value is which, and nvcc lowers wmma::load_matrix_sync of bf16 to plain
// 32-bit shared loads (4 per fragment and lane) rather than one ldmatrix. Here the layouts are
// spelled out, once, as functions of the lane; the kernels compute their addresses with them and
// the CPU test `CudaMma.LdmatrixFeedsTheMmaFragments` (tests/test_cuda_losses.cpp) checks them
// against an emulation of the two instructions as the PTX ISA describes them.
//
// The layouts (PTX ISA, "Matrix fragments for mma.m16n8k16"), with lane = 4 g + t (g = lane / 4,
// the "group", t = lane % 4, the "thread in group"); each 32-bit register holds two bf16, the
// lower half first:
//   A (16 x 16, row major), registers a0..a3: a_r holds row g + 8 (r % 2), columns 2 t + 8 (r / 2)
//     and the next one.
//   B (16 x 8 as k x n), registers b0, b1: b_r holds column n = g, rows k = 2 t + 8 r and k + 1.
//   C and D (16 x 8, fp32), values c0..c3: c_e is row g + 8 (e / 2), column 2 t + e % 2.
//   ldmatrix .x4: lanes 8 q .. 8 q + 7 each give the address of one row (8 consecutive 16-bit
//     values, 16 bytes, 16-byte aligned) of matrix q; register q of lane l receives row l / 4,
//     columns 2 (l % 4) and 2 (l % 4) + 1, of matrix q. With .trans it receives those of the
//     transpose instead: column l / 4 of rows 2 (l % 4) and 2 (l % 4) + 1. That is how an operand
//     stored k-major (the other way round) reaches the same registers.
#include <cstdint>

#if defined(__CUDACC__)
#include <cuda_bf16.h>
#endif

#if defined(__CUDACC__)
#define EMBER_MMA_HD __host__ __device__
#else
#define EMBER_MMA_HD
#endif

namespace ember::cuda_mma {

struct Coord {
  int row, col;
};

// Element (within the 16 x 16 A fragment) of the `half`-th value of register `reg` of `lane`.
EMBER_MMA_HD constexpr Coord a_element(int lane, int reg, int half) {
  return {lane / 4 + 8 * (reg % 2), 2 * (lane % 4) + 8 * (reg / 2) + half};
}
// Element (k, n) of the 16 x 8 B fragment held by the `half`-th value of register `reg` of `lane`.
EMBER_MMA_HD constexpr Coord b_element(int lane, int reg, int half) {
  return {2 * (lane % 4) + 8 * reg + half, lane / 4};
}
// Element of the 16 x 8 accumulator tile held by value `e` of `lane`.
EMBER_MMA_HD constexpr Coord acc_element(int lane, int e) {
  return {lane / 4 + 8 * (e / 2), 2 * (lane % 4) + e % 2};
}

// The row address each lane gives to ldmatrix .x4, as an offset (row, column) into a 16 x 16
// block of a row-major shared-memory tile:
//  * A operand (rows = M, columns = K): registers 0..3 become a0..a3 of one A fragment.
EMBER_MMA_HD constexpr Coord ldsm_a_offset(int lane) { return {lane % 16, 8 * (lane / 16)}; }
//  * B operand stored as [n][k] (rows = N, columns = K; e.g. the rows of the classifier, whose
//    transpose is B): registers 0, 1 become b0, b1 of the fragment of columns n .. n + 7, and
//    registers 2, 3 those of columns n + 8 .. n + 15.
EMBER_MMA_HD constexpr Coord ldsm_b_offset(int lane) {
  return {lane % 8 + 8 * (lane / 16), 8 * ((lane / 8) % 2)};
}
// The same for ldmatrix .x4.trans, from a 16 x 16 block of a tile stored k-major:
//  * A operand stored as [k][m] (rows = K, columns = M; e.g. dz read as dz^T): registers 0..3
//    become a0..a3 of one A fragment.
EMBER_MMA_HD constexpr Coord ldsm_a_trans_offset(int lane) {
  return {lane % 8 + 8 * (lane / 16), 8 * ((lane / 8) % 2)};
}
//  * B operand stored as [k][n] (rows = K, columns = N; e.g. a chunk of C rows when the product
//    sums over the vocabulary): registers 0, 1 become b0, b1 of the fragment of columns n .. n + 7,
//    registers 2, 3 those of columns n + 8 .. n + 15.
EMBER_MMA_HD constexpr Coord ldsm_b_trans_offset(int lane) {
  return {lane % 8 + 8 * ((lane / 8) % 2), 8 * (lane / 16)};
}

// ---- a block-level product, the part shared with the CPU emulation test ------------------------
// A thread block computes C[M x N] += A[M x K] B[K x N] from shared memory, 16 values of K at a
// time, its warps in a kWarpsM x kWarpsN grid: warp w owns the (M / kWarpsM) x (N / kWarpsN) block
// at (m0(w), n0(w)), MI x NI fragments of 16 x 8. An operand is stored either with K contiguous
// (A as [m][k], B as [n][k]: read by ldmatrix) or K-major (A as [k][m], B as [k][n]: read by
// ldmatrix .trans); `ld` is its row stride in elements.
template <int M, int N, int kWarpsM, int kWarpsN>
struct WarpGrid {
  static constexpr int kWarps = kWarpsM * kWarpsN;
  static constexpr int WM = M / kWarpsM, WN = N / kWarpsN;  // a warp's block
  static constexpr int MI = WM / 16, NI = WN / 8;           // its fragments
  static_assert(WM % 16 == 0 && WN % 16 == 0, "whole fragments, B in pairs");
  EMBER_MMA_HD static constexpr int m0(int warp) { return warp / kWarpsN * WM; }
  EMBER_MMA_HD static constexpr int n0(int warp) { return warp % kWarpsN * WN; }
};

// The element offset `lane` gives ldmatrix for the A fragment at rows m .. m + 15, k .. k + 15.
EMBER_MMA_HD constexpr int a_address(bool k_major, int m, int k, int lane, int ld) {
  const Coord o = k_major ? ldsm_a_trans_offset(lane) : ldsm_a_offset(lane);
  return k_major ? (k + o.row) * ld + m + o.col : (m + o.row) * ld + k + o.col;
}
// The same for the two B fragments of columns n .. n + 15 (registers 0, 1: n .. n + 7; 2, 3: the rest).
EMBER_MMA_HD constexpr int b_address(bool k_major, int n, int k, int lane, int ld) {
  const Coord o = k_major ? ldsm_b_trans_offset(lane) : ldsm_b_offset(lane);
  return k_major ? (k + o.row) * ld + n + o.col : (n + o.row) * ld + k + o.col;
}
// Where value e of `lane`'s accumulators for the fragment at (m, n) belongs in C.
EMBER_MMA_HD constexpr Coord acc_position(int m, int n, int e, int lane) {
  const Coord q = acc_element(lane, e);
  return {m + q.row, n + q.col};
}

#if defined(__CUDACC__)
// r[0..3] = the four 8x8 matrices whose rows this warp's lanes point at (see above). `row` is a
// shared-memory address, 16-byte aligned.
__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], const void* row) {
  const auto address = static_cast<unsigned>(__cvta_generic_to_shared(row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(address)
               : "memory");
}

// The same with .trans (see above).
__device__ __forceinline__ void ldsm_x4_trans(uint32_t (&r)[4], const void* row) {
  const auto address = static_cast<unsigned>(__cvta_generic_to_shared(row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(address)
               : "memory");
}

// d += a b for one 16 x 16 (bf16) by 16 x 8 (bf16) product, fp32 accumulators.
__device__ __forceinline__ void mma_bf16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

template <bool kTrans>
__device__ __forceinline__ void ldsm(uint32_t (&r)[4], const void* row) {
  if constexpr (kTrans)
    ldsm_x4_trans(r, row);
  else
    ldsm_x4(r, row);
}

// One 16-wide step of K for this warp of grid G: acc[i][j] += A-fragment i x B-fragment j, the
// fragments of the warp's block read from A and B (shared memory; layouts and strides as above).
template <class G, bool kAKMajor, bool kBKMajor>
__device__ __forceinline__ void mma_step(float (&acc)[G::MI][G::NI][4], const __nv_bfloat16* A, int lda,
                                         const __nv_bfloat16* B, int ldb, int k, int warp, int lane) {
  uint32_t a[G::MI][4], b[G::NI][2];
#pragma unroll
  for (int i = 0; i < G::MI; ++i)
    ldsm<kAKMajor>(a[i], A + a_address(kAKMajor, G::m0(warp) + 16 * i, k, lane, lda));
#pragma unroll
  for (int j = 0; j < G::NI; j += 2) {
    uint32_t r[4];
    ldsm<kBKMajor>(r, B + b_address(kBKMajor, G::n0(warp) + 8 * j, k, lane, ldb));
    b[j][0] = r[0];
    b[j][1] = r[1];
    b[j + 1][0] = r[2];
    b[j + 1][1] = r[3];
  }
#pragma unroll
  for (int i = 0; i < G::MI; ++i)
#pragma unroll
    for (int j = 0; j < G::NI; ++j) mma_bf16(acc[i][j], a[i], b[j]);
}

// Stores this warp's accumulators into the row-major fp32 C (leading dimension ldc, even): values
// 0, 1 of a lane are neighbours in a row (one 8-byte store), 2, 3 the same eight rows below.
template <class G>
__device__ __forceinline__ void store_block(float* C, int ldc, const float (&acc)[G::MI][G::NI][4], int warp,
                                            int lane) {
#pragma unroll
  for (int i = 0; i < G::MI; ++i)
#pragma unroll
    for (int j = 0; j < G::NI; ++j)
#pragma unroll
      for (int e = 0; e < 4; e += 2) {
        const Coord at = acc_position(G::m0(warp) + 16 * i, G::n0(warp) + 8 * j, e, lane);
        *reinterpret_cast<float2*>(C + at.row * ldc + at.col) = make_float2(acc[i][j][e], acc[i][j][e + 1]);
      }
}
#endif

}  // namespace ember::cuda_mma
