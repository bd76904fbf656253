// 2-D convolution on the GPU, float32, PyTorch's semantics (NCHW input,
// OIHW weights, stride, padding, dilation, groups), the same results as the
// CPU kernels in cpu/conv/ up to rounding. Plain C++ declarations; the
// kernels live in conv_*.cu.
//
//   y[n,k,p,q] = bias[k] + sum_{c,r,s} x[n, g*Cg+c, p*sh-ph+r*dh, q*sw-pw+s*dw] * w[k,c,r,s]
//
// with g = k / Kg, Cg = C / groups, Kg = K / groups.
//
// Every launcher returns the launch status (cudaErrorInvalidValue for a
// geometry no kernel may see: the Python layer checks everything first, this
// only keeps a direct caller of the binding from reading out of bounds).
// Workspaces are scratch device memory the caller allocates from the size the
// matching *_workspace_bytes function gives for the same arguments; they only
// need to live until the launched work has run on the stream.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace pyfastnn {
namespace cuda {

struct ConvShape {
  std::int64_t N, C, H, W;  // input
  std::int64_t K, R, S;     // weights (K, C/groups, R, S)
  std::int64_t SH, SW, PH, PW, DH, DW, groups;
  std::int64_t P, Q;        // output (N, K, P, Q)
};

// How a convolution runs. kAuto picks; the others exist so tests can run every
// path on the same problem and benchmarks can time them.
enum ConvAlgo : int {
  kConvAuto = 0,
  kConvGemmTapMajor = 1,  // implicit GEMM, k tiles of one filter tap x 8 channels
  kConvGemmGeneric = 2,   // implicit GEMM, k tiles over the flat (tap, channel) index
  kConvDirect = 3,        // one thread per output (only for C/groups == 1: depthwise)
};

// Tile shapes of the implicit GEMM kernels (pixels x channels); 0 picks one
// from the problem size and the number of SMs.
enum ConvTile : int {
  kTileAuto = 0,
  kTile128x128 = 1,
  kTile128x64 = 2,
  kTile128x32 = 3,
  kTile64x128 = 4,
  kTile64x64 = 5,
  kTile64x32 = 6,
};
constexpr int kConvTileCount = 6;

// Largest element count any one tensor (or any GEMM dimension) may have: the
// kernels index within an image, a weight tensor and along M with 32-bit ints
// (the margin keeps a tile's last index, past the end, from overflowing too).
constexpr std::int64_t kConvMaxElems = (std::int64_t{1} << 31) - 1024;

// cudaSuccess when the geometry is consistent and within the kernels' limits.
cudaError_t conv2d_validate(const ConvShape& s);

// ---------------------------------------------------------------- forward
// x (N,C,H,W), w (K,C/g,R,S), bias (K) or null, y (N,K,P,Q) overwritten.
std::size_t conv2d_forward_workspace_bytes(const ConvShape& s, int algo);
cudaError_t conv2d_forward_f32(const ConvShape& s, const float* x, const float* w, const float* bias, float* y,
                               void* workspace, std::size_t workspace_bytes, int algo, int tile,
                               cudaStream_t stream);

// ------------------------------------------------------- gradient of x
// grad_x (N,C,H,W) overwritten from grad_y (N,K,P,Q) and w.
std::size_t conv2d_backward_data_workspace_bytes(const ConvShape& s, int algo);
cudaError_t conv2d_backward_data_f32(const ConvShape& s, const float* grad_y, const float* w, float* grad_x,
                                     void* workspace, std::size_t workspace_bytes, int algo, int tile,
                                     cudaStream_t stream);

// ------------------------------------------------------- gradient of w
// grad_w (K,C/g,R,S) overwritten from grad_y and x: a reduction over N*P*Q
// pixels, split over `splits` slices of pixels (0: chosen from the problem
// and the SM count of the current device) whose partial sums land in the
// workspace and are added in slice order by a second kernel — no atomics, so
// the result depends only on the inputs, the split count and the tile.
std::size_t conv2d_backward_filter_workspace_bytes(const ConvShape& s, int algo, int tile, int splits);
cudaError_t conv2d_backward_filter_f32(const ConvShape& s, const float* grad_y, const float* x, float* grad_w,
                                       void* workspace, std::size_t workspace_bytes, int algo, int tile,
                                       int splits, cudaStream_t stream);

// grad_b[k] = sum over n, p, q of grad_y[n,k,p,q]; one block per channel, a
// fixed-order tree sum (deterministic).
cudaError_t conv2d_backward_bias_f32(const ConvShape& s, const float* grad_y, float* grad_b, cudaStream_t stream);

// -------------------------------------------------------- references
// One thread per output element, a float32 sum in (c, r, s) / (k, r, s) /
// (n, p, q) order: the definition the fast kernels must agree with.
cudaError_t conv2d_forward_reference_f32(const ConvShape& s, const float* x, const float* w, const float* bias,
                                         float* y, cudaStream_t stream);
cudaError_t conv2d_backward_data_reference_f32(const ConvShape& s, const float* grad_y, const float* w,
                                               float* grad_x, cudaStream_t stream);
cudaError_t conv2d_backward_filter_reference_f32(const ConvShape& s, const float* grad_y, const float* x,
                                                 float* grad_w, cudaStream_t stream);

}  // namespace cuda
}  // namespace pyfastnn
