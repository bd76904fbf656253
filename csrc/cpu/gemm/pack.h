// Packing: copies a block of A (or B) from any strided layout into the
// contiguous sliver order the microkernel reads, zero-padding partial slivers
// so the microkernel never needs an edge case in k.
#pragma once
#include <cstddef>
#include <cstdint>

namespace pyfastnn {
namespace cpu {
namespace PFN_ISA_NS {

// ap[s][k][i] = A[s*MR + i][k]; rows past mc are zero.
template <class T, int MR>
void pack_a(std::int64_t mc, int kc, const T* a, std::ptrdiff_t rs, std::ptrdiff_t cs, T* ap) {
  for (std::int64_t s = 0; s < mc; s += MR, ap += static_cast<std::ptrdiff_t>(MR) * kc) {
    const int rows = mc - s < MR ? static_cast<int>(mc - s) : MR;
    const T* src = a + s * rs;
    if (rows == MR && cs == 1) {
      // Row-major A: MR sequential streams, one element from each per k.
      const T* r[MR];
      for (int i = 0; i < MR; ++i) r[i] = src + i * rs;
      for (int k = 0; k < kc; ++k)
#pragma GCC unroll 32
        for (int i = 0; i < MR; ++i) ap[k * MR + i] = r[i][k];
    } else if (rows == MR && rs == 1) {
      // Column-major A (a transposed view): each k is MR contiguous values.
      for (int k = 0; k < kc; ++k)
#pragma GCC unroll 32
        for (int i = 0; i < MR; ++i) ap[k * MR + i] = src[k * cs + i];
    } else {
      for (int k = 0; k < kc; ++k) {
        for (int i = 0; i < rows; ++i) ap[k * MR + i] = src[i * rs + k * cs];
        for (int i = rows; i < MR; ++i) ap[k * MR + i] = T(0);
      }
    }
  }
}

// bp[t][k][j] = B[k][t*NR + j]; columns past nc are zero.
template <class T, int NR>
void pack_b(int kc, std::int64_t nc, const T* b, std::ptrdiff_t rs, std::ptrdiff_t cs, T* bp) {
  for (std::int64_t t = 0; t < nc; t += NR, bp += static_cast<std::ptrdiff_t>(NR) * kc) {
    const int cols = nc - t < NR ? static_cast<int>(nc - t) : NR;
    const T* src = b + t * cs;
    if (cols == NR && cs == 1) {
      for (int k = 0; k < kc; ++k)
#pragma GCC unroll 64
        for (int j = 0; j < NR; ++j) bp[k * NR + j] = src[k * rs + j];
    } else if (cols == NR && rs == 1) {
      // B transposed: NR sequential streams along k.
      for (int k = 0; k < kc; ++k)
#pragma GCC unroll 64
        for (int j = 0; j < NR; ++j) bp[k * NR + j] = src[j * cs + k];
    } else {
      for (int k = 0; k < kc; ++k) {
        for (int j = 0; j < cols; ++j) bp[k * NR + j] = src[k * rs + j * cs];
        for (int j = cols; j < NR; ++j) bp[k * NR + j] = T(0);
      }
    }
  }
}

// bp[t][k][j] = base[row_offset[k] + t*NR + j]; columns past nc are zero.
template <class T, int NR>
void pack_b_rows(int kc, std::int64_t nc, const T* base, const std::int64_t* row_offset, T* bp) {
  for (std::int64_t t = 0; t < nc; t += NR, bp += static_cast<std::ptrdiff_t>(NR) * kc) {
    const int cols = nc - t < NR ? static_cast<int>(nc - t) : NR;
    if (cols == NR) {
      for (int k = 0; k < kc; ++k) {
        const T* src = base + row_offset[k] + t;
#pragma GCC unroll 64
        for (int j = 0; j < NR; ++j) bp[k * NR + j] = src[j];
      }
    } else {
      for (int k = 0; k < kc; ++k) {
        const T* src = base + row_offset[k] + t;
        for (int j = 0; j < cols; ++j) bp[k * NR + j] = src[j];
        for (int j = cols; j < NR; ++j) bp[k * NR + j] = T(0);
      }
    }
  }
}

}  // namespace PFN_ISA_NS
}  // namespace cpu
}  // namespace pyfastnn
