// C = act(A·B + bias) for row-major C, A and B given by pointer and element
// strides (any layout, transposed views included). The ISA-independent side
// of the GEMM: kernel-set tables, blocking, and the threaded loop nest.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/activation.h"
#include "runtime/cpu_info.h"

namespace pyfastnn {
namespace cpu {

// Largest k block any kernel set is given (bounds the macro-kernel's stack
// buffer for a partial A sliver).
constexpr int kMaxKc = 512;

// One ISA level's packing routines and macro-kernel for element type T.
template <class T>
struct GemmKernelSet {
  int mr;  // rows of the register tile (broadcast from packed A)
  int nr;  // columns of the register tile (vector loads from packed B)
  // Packs mc rows x kc columns of A into slivers of mr rows (k-major inside
  // a sliver), zero-padding the last sliver.
  void (*pack_a)(std::int64_t mc, int kc, const T* a, std::ptrdiff_t rs, std::ptrdiff_t cs, T* ap);
  // Packs kc rows x nc columns of B into slivers of nr columns, zero-padded.
  void (*pack_b)(int kc, std::int64_t nc, const T* b, std::ptrdiff_t rs, std::ptrdiff_t cs, T* bp);
  // The same for the unfolded input of stride-1 convolutions of several
  // images side by side, without junk columns: column c is output pixel
  // p = c % P of image j = c / P (P = oh * ow), and
  //   B[k][c] = base[j * image_stride + row_offset[k] + (p / ow) * wp + p % ow]
  // (an ow-wide output over wp-wide padded images), for c in c0 .. c0 + nc.
  void (*pack_b_conv)(int kc, std::int64_t nc, const T* base, const std::int64_t* row_offset, std::int64_t wp,
                      std::int64_t ow, std::int64_t P, std::int64_t image_stride, std::int64_t c0, T* bp);
  // Loops 2 and 1: the slivers of an A block against those of a packed B
  // block. A is packed (lda == 0) or row-major in place (row stride lda).
  // accumulate: add to C (later k blocks); last: the k block that finishes
  // C, so bias and activation are applied to each tile while hot.
  // bias is per column (bias[j]) or, with bias_per_row, per row (bias[i]).
  void (*macro_kernel)(std::int64_t mc, std::int64_t nc, int kc, const T* a, std::ptrdiff_t lda, const T* bp,
                       T* c, std::ptrdiff_t ldc, bool accumulate, bool last, const T* bias, bool bias_per_row,
                       Activation act);
  // Elements per vector register: a partial last B sliver costs its width
  // rounded up to this, since the macro kernel narrows the tile for it.
  int lanes = 1;
};

template <class T>
const GemmKernelSet<T>& gemm_kernels(CpuIsa isa);

// Cache blocking for one kernel set: kc (depth of a k block; a packed A sliver
// mr x kc stays in L1), nb (columns of a packed B block, kc x nb in L2), mb
// (rows of the shared packed A block, mb x kc in a slice of L3).
struct GemmBlocking {
  int kc;
  std::int64_t nb;
  std::int64_t mb;
};
GemmBlocking gemm_blocking(int mr, int nr, std::size_t elem_size);

struct StridedMatrix {
  const void* data;
  std::ptrdiff_t rs;  // element stride between rows
  std::ptrdiff_t cs;  // element stride between columns
};

// Where B comes from: a strided matrix, or a custom packer that writes
// B[k0:k0+kc, n0:n0+nc] straight into sliver order (zero-padded to nr
// columns) — e.g. im2col gathered on the fly, so convolution never
// materialises the unfolded input.
// B packed once for many products (e.g. a recurrent weight used at every
// time step): k blocks of the current blocking, each holding every nr-wide
// sliver (kc x nr, zero-padded); see gemm_prepack_b.
template <class T>
struct PrepackedB {
  std::vector<T> data;
  std::int64_t K = 0, N = 0, n_padded = 0;
  int kc = 0, nr = 0;
};

template <class T>
struct GemmB {
  StridedMatrix matrix{nullptr, 0, 0};
  void (*pack)(const void* ctx, int kc, std::int64_t nc, std::int64_t k0, std::int64_t n0, int nr, T* bp) = nullptr;
  const void* ctx = nullptr;
  const PrepackedB<T>* prepacked = nullptr;  // used as is when set (no packing per product)
  std::int64_t prepacked_col0 = 0;           // first column of `prepacked` used (a multiple of its nr)
};

// Packs B (K x N, any strides) for the active ISA level and blocking.
template <class T>
PrepackedB<T> gemm_prepack_b(std::int64_t K, std::int64_t N, StridedMatrix b);

template <class T>
struct GemmEpilogue {
  const T* bias = nullptr;     // length N (per column) or M (per row)
  bool bias_per_row = false;
  Activation act = Activation::none;
  bool accumulate = false;     // C += A·B instead of C = A·B (bias/act then not allowed)
};

// One product C (M x N, row stride ldc) = epilogue(A · B). nthreads == 1 runs
// on the calling thread without the pool, so it is safe inside a parallel
// region; nthreads <= 0 means get_num_threads().
template <class T>
void gemm_ex(std::int64_t M, std::int64_t N, std::int64_t K, StridedMatrix a, const GemmB<T>& b, T* c,
             std::ptrdiff_t ldc, const GemmEpilogue<T>& ep, int nthreads);

// Batched GEMM: for each b < batch, C_b (M x N, row-major, ldc = N, batch
// stride M*N) = act(A_b · B_b + bias). Batch strides may be 0 (broadcast).
// Runs on the library's thread pool; nthreads <= 0 means get_num_threads().
template <class T>
void gemm(std::int64_t batch, std::int64_t M, std::int64_t N, std::int64_t K, StridedMatrix a,
          std::ptrdiff_t a_batch_stride, StridedMatrix b, std::ptrdiff_t b_batch_stride, T* c,
          const T* bias, Activation act, int nthreads = 0);

}  // namespace cpu
}  // namespace pyfastnn
