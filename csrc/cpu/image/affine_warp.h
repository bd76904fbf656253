// Affine resampling of channels-last images (N, H, W, C) with
// scipy.ndimage.affine_transform's semantics (order 0 or 1): output pixel
// (r, c) pulls the input at (m00*r + m01*c + m02, m10*r + m11*c + m12), the
// four fill modes extend the input as scipy's 'constant', 'nearest',
// 'reflect' and 'wrap' do, and the arithmetic (double coordinates, weights
// and accumulation order) is scipy's, so results agree to the last bit of
// the output type. Keras's ImageDataGenerator is built on exactly this call.
#pragma once
#include <cstdint>

namespace pyfastnn {
namespace cpu {

enum class FillMode : int { constant = 0, nearest = 1, reflect = 2, wrap = 3 };

struct WarpGeometry {
  std::int64_t n, h, w, c;  // input images
  std::int64_t oh, ow;      // output size
  int order;                // 0 (nearest sample) or 1 (bilinear)
  FillMode mode;
  double cval;
};

// Flags per image: bit 0 reverses the output columns, bit 1 the output rows
// (Keras's horizontal/vertical flips, applied after the warp).
constexpr std::uint8_t kWarpFlipCols = 1;
constexpr std::uint8_t kWarpFlipRows = 2;

// x: n*h*w*c contiguous; matrices: n row-major 2x3 (row, col) maps; flags: n
// bytes or null; y: n*oh*ow*c. Rows of all images are split over the pool.
template <class T>
void affine_warp(const WarpGeometry& g, const T* x, const double* matrices, const std::uint8_t* flags, T* y,
                 int nthreads);

}  // namespace cpu
}  // namespace pyfastnn
