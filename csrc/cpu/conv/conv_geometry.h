// The shape of one 2-D convolution (NCHW input, OIHW weights), with the
// derived sizes the kernels use.
#pragma once
#include <cstdint>

namespace pyfastnn {
namespace cpu {

struct ConvGeometry {
  std::int64_t N, C, H, W;      // input
  std::int64_t O, KH, KW;       // weights (O, C/groups, KH, KW)
  std::int64_t SH, SW, PH, PW, DH, DW, groups;
  std::int64_t OH, OW;          // output spatial size

  std::int64_t c_per_group() const { return C / groups; }
  std::int64_t o_per_group() const { return O / groups; }
  // Rows of the unfolded input for one group: (c, ky, kx).
  std::int64_t k_rows() const { return c_per_group() * KH * KW; }
  std::int64_t out_pixels() const { return OH * OW; }
  std::int64_t in_plane() const { return H * W; }
};

}  // namespace cpu
}  // namespace pyfastnn
