// Row-wise kernels on the GPU: softmax / log_softmax over the last axis of a
// contiguous (rows, n) array and their gradients; layer_norm forward and
// backward; column sums (the parameter gradients of layer_norm, the bias
// gradient of the LSTM). Plain C++ declarations for the bindings.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "cuda/elementwise/elementwise.h"  // StorageType

namespace pyfastnn {
namespace cuda {

// Which kernel a row-wise op runs: the automatic choice (one warp per row up
// to 1024 elements, else one block per row), one of the two forced (a forced
// warp path still takes the block path above 1024), or the one-thread-per-row
// reference. The tests compare them with each other.
enum class RowImpl : int { automatic = 0, warp = 1, block = 2, reference = 3 };

// y = softmax(x) (log_softmax with log) along each row; the CPU's rules for
// NaN and inf (a NaN or +inf anywhere makes the row NaN, -inf gives 0 / -inf).
cudaError_t softmax_forward(const void* x, void* y, std::int64_t rows, std::int64_t n, bool log, StorageType dtype,
                            RowImpl impl, cudaStream_t stream);

// gx = y * (g - sum(g*y))  (softmax),  g - exp(y) * sum(g)  (log_softmax).
cudaError_t softmax_backward(const void* grad_y, const void* y, void* gx, std::int64_t rows, std::int64_t n, bool log,
                             StorageType dtype, RowImpl impl, cudaStream_t stream);

// float32. y = (x - mean) * rstd * w + b per row, w/b may be null; mean and
// rstd (one per row) saved. Two passes over the row (the variance of x - mean),
// rstd = 1 / sqrt(var + eps) in double, as on the CPU.
cudaError_t layer_norm_forward(const float* x, const float* w, const float* b, float* y, float* mean, float* rstd,
                               std::int64_t rows, std::int64_t n, double eps, RowImpl impl, cudaStream_t stream);

// float32. gx = rstd * (w*g - mean(w*g) - xhat * mean(w*g*xhat)) per row.
cudaError_t layer_norm_backward_input(const float* grad_y, const float* x, const float* mean, const float* rstd,
                                      const float* w, float* gx, std::int64_t rows, std::int64_t n, RowImpl impl,
                                      cudaStream_t stream);

// Column sums over the rows of a (rows, n) float32 matrix, deterministic (row
// chunks summed in a fixed order, no atomics). The chunk count depends only on
// `rows`; the caller allocates column_sum_workspace(rows, n) floats.
std::int64_t column_sum_chunks(std::int64_t rows);
std::int64_t column_sum_workspace(std::int64_t rows, std::int64_t n);

// out[j] = sum_r a[r, j].
cudaError_t column_sums(const float* a, float* out, std::int64_t rows, std::int64_t n, float* workspace,
                        cudaStream_t stream);

// layer_norm's parameter gradients: gw[j] = sum_r g[r, j] * xhat[r, j],
// gb[j] = sum_r g[r, j], xhat recomputed from x, mean, rstd. Needs
// 2 * column_sum_workspace(rows, n) floats of workspace.
cudaError_t layer_norm_backward_params(const float* grad_y, const float* x, const float* mean, const float* rstd,
                                       float* gw, float* gb, std::int64_t rows, std::int64_t n, float* workspace,
                                       cudaStream_t stream);

}  // namespace cuda
}  // namespace pyfastnn
