// cross_entropy (log-softmax + NLL fused, PyTorch's CrossEntropyLoss with
// class indices, ignore_index and label smoothing) on the GPU, float32
// logits (rows, n) and int64 targets. Plain C++ declarations for the bindings.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "cuda/norm/norm.h"  // RowImpl

namespace pyfastnn {
namespace cuda {

// Per row: row_loss[r] = (1-s) * (lse - x[t]) + s * (lse - mean(x)) in double,
// 0 for rows whose target is ignore_index or outside [0, n).
cudaError_t cross_entropy_rows(const float* logits, const std::int64_t* target, std::int64_t rows, std::int64_t n,
                               std::int64_t ignore_index, double smoothing, double* row_loss, RowImpl impl,
                               cudaStream_t stream);

// One block, a fixed summation order: out[0] = sum of row_loss (0 when
// row_loss is null), out[1] = rows whose target is counted (not ignore_index,
// inside [0, n)), out[2] = rows whose target is neither ignore_index nor a
// class (the caller raises on those).
cudaError_t cross_entropy_totals(const double* row_loss, const std::int64_t* target, std::int64_t rows,
                                 std::int64_t n, std::int64_t ignore_index, double* out, cudaStream_t stream);

// grad = scale * (softmax(x) - (1-s) * onehot(t) - s/n) per row, 0 for ignored
// rows (and, defensively, for targets outside [0, n)).
cudaError_t cross_entropy_backward(const float* logits, const std::int64_t* target, std::int64_t rows,
                                   std::int64_t n, std::int64_t ignore_index, double smoothing, double scale,
                                   float* grad, RowImpl impl, cudaStream_t stream);

}  // namespace cuda
}  // namespace pyfastnn
