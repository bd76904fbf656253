// Tensor-core building blocks for the fp16/bf16 attention kernels (sm_80+):
// cp.async tile copies into a swizzled shared-memory layout, ldmatrix
// fragment loads, and mma.sync m16n8k16 with fp32 accumulators.
//
// Fragment layouts (PTX ISA, "mma.m16n8k16"), g = lane / 4, t = lane % 4:
//   A (16x16, row):  a[0] = (g, 2t..2t+1)   a[1] = (g+8, 2t..)
//                    a[2] = (g, 2t+8..)     a[3] = (g+8, 2t+8..)
//   B (16x8, col):   b[0] = (k 2t..2t+1, n g)  b[1] = (k 2t+8.., n g)
//   C (16x8, f32):   c[0..1] = (g, 2t..2t+1)   c[2..3] = (g+8, 2t..2t+1)
// so the C fragments of two adjacent 8-column score tiles are, once packed to
// 16 bits, exactly the A fragment of the 16-deep P.V step: P never leaves
// registers.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

namespace pyfastnn {
namespace cuda {
namespace attn {

// Tiles of rows x kD 16-bit elements, rows of kD / 8 16-byte chunks; chunk c of
// row r is stored at chunk c ^ (r % 8). The 8 rows an ldmatrix reads at one
// logical chunk then land in 8 different bank groups (conflict-free), and so do
// the cp.async writes of 8 consecutive chunks of a row.
template <int kD>
__device__ __forceinline__ int swizzled(int row, int chunk) {
  static_assert(kD % 64 == 0, "rows of at least 8 chunks");
  return row * kD + ((chunk ^ (row & 7)) << 3);
}

__device__ __forceinline__ std::uint32_t smem_addr(const void* p) {
  return static_cast<std::uint32_t>(__cvta_generic_to_shared(p));
}

// 16-byte asynchronous copy; src_bytes = 0 writes zeros (rows past the end).
__device__ __forceinline__ void cp_async_16(void* dst, const void* src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src), "r"(src_bytes)
               : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int kPending>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending) : "memory");
}

// Rows [row0, row0 + kRows) of a row-major (N, kD) matrix into a swizzled tile,
// zero-filling rows >= N. Every thread of the block takes part.
template <int kD, int kRows, int kThreads, class T>
__device__ __forceinline__ void load_tile_async(T* tile, const T* __restrict__ src, std::int64_t row0,
                                                std::int64_t N) {
  constexpr int kChunks = kD / 8;
  static_assert((kRows * kChunks) % kThreads == 0, "whole chunks per thread");
#pragma unroll
  for (int e = threadIdx.x; e < kRows * kChunks; e += kThreads) {
    const int r = e / kChunks, c = e % kChunks;
    const bool valid = row0 + r < N;
    const T* from = src + (valid ? (row0 + r) * kD + c * 8 : 0);  // a valid address even when nothing is read
    cp_async_16(tile + swizzled<kD>(r, c), from, valid ? 16 : 0);
  }
}

__device__ __forceinline__ void ldmatrix_x4(std::uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p))
               : "memory");
}
__device__ __forceinline__ void ldmatrix_x4_trans(std::uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p))
               : "memory");
}

template <class T>
struct MmaOps;

template <>
struct MmaOps<__half> {
  __device__ static __forceinline__ void mma(float (&c)[4], const std::uint32_t (&a)[4], std::uint32_t b0,
                                             std::uint32_t b1) {
    asm(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
  // Two floats as one register of 16-bit values, `lo` in the low half.
  __device__ static __forceinline__ std::uint32_t pack(float lo, float hi) {
    const __half2 h = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<const std::uint32_t*>(&h);
  }
};

template <>
struct MmaOps<__nv_bfloat16> {
  __device__ static __forceinline__ void mma(float (&c)[4], const std::uint32_t (&a)[4], std::uint32_t b0,
                                             std::uint32_t b1) {
    asm(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
  __device__ static __forceinline__ std::uint32_t pack(float lo, float hi) {
    const __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<const std::uint32_t*>(&h);
  }
};

// 2^x in one instruction (ex2.approx, rel. error ~2^-22; 2^-inf = +0).
__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

}  // namespace attn
}  // namespace cuda
}  // namespace pyfastnn
