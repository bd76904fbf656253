// Convolution drivers: split the batch over threads (each image's GEMMs then
// run single-threaded), or, for fewer images than threads, thread the GEMMs.
// The weight gradient sums over images in chunks fixed by the shape, so it
// has the same bits for any thread count.
#include "cpu/conv/conv.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "cpu/conv/conv_kernels.h"
#include "cpu/conv/im2col.h"
#include "cpu/elementwise/elementwise.h"
#include "cpu/gemm/gemm.h"
#include "runtime/dispatch.h"
#include "runtime/isa_table.h"
#include "runtime/parallel.h"

namespace pyfastnn {
namespace cpu {

namespace {

template <class T>
struct Im2colSource {
  const ConvGeometry* g;
  const T* x;  // channel 0 of this image's group
  static void pack(const void* ctx, int kc, std::int64_t nc, std::int64_t k0, std::int64_t n0, int nr, T* bp) {
    const auto* s = static_cast<const Im2colSource*>(ctx);
    pack_im2col_slivers(*s->g, s->x, kc, nc, k0, n0, nr, bp);
  }
};

template <class T>
const ConvKernels<T>& kernels_for(CpuIsa isa) {
  static const IsaTable<ConvKernels> table(&conv_kernels_scalar, &conv_kernels_avx2, &conv_kernels_avx512);
  return table.get<T>(isa);
}

// y_g (Og x cols, row-major) = w_g . B + bias, B packed by Source::pack.
template <class Source, class T>
void forward_group_gemm(const ConvGeometry& g, std::int64_t gi, const Source* src, const T* w, const T* bias,
                        std::int64_t cols, T* y, int gemm_threads) {
  const std::int64_t K = g.k_rows(), Og = g.o_per_group();
  GemmB<T> b;
  b.pack = &Source::pack;
  b.ctx = src;
  GemmEpilogue<T> ep;
  ep.bias = bias ? bias + gi * Og : nullptr;
  ep.bias_per_row = true;
  gemm_ex<T>(Og, cols, K, StridedMatrix{w + gi * Og * K, K, 1}, b, y, cols, ep, gemm_threads);
}

// Unfolded depth up to which a stride-1 forward pass runs the direct kernel.
constexpr std::int64_t kDirectMaxK = 32;

// Below this many flops per image, whole images go to threads.
constexpr double kThreadPerImageFlops = 4e6;

// Calls body(n_begin, n_end, gemm_threads) over the batch: either chunks of
// images claimed by the threads, each run with single-threaded GEMMs, or the
// whole batch in one call whose GEMMs use every thread. Nothing is summed
// across images here, so any split gives the same bits.
template <class Body>
void for_images(std::int64_t N, double flops_per_image, int nthreads, Body&& body) {
  const bool split_batch = nthreads > 1 && N > 1 && (N >= nthreads || flops_per_image < kThreadPerImageFlops);
  if (!split_batch) {
    body(std::int64_t{0}, N, nthreads);
    return;
  }
  const int nth = static_cast<int>(std::min<std::int64_t>(N, nthreads));
  const std::int64_t chunks = std::min<std::int64_t>(N, nth * kChunksPerThread);
  parallel_chunks(chunks, nth, [&](std::int64_t i) { body(N * i / chunks, N * (i + 1) / chunks, 1); });
}

// The weight gradient sums over images. They are cut into chunks fixed by the
// shape (never by the thread count); each chunk's gradient is a partial of
// its own (chunk 0 accumulates into grad_w itself), and the partials are
// added in chunk order, so grad_w has the same bits for any thread count.
// A partial must be worth its memory and its add: at least 64 flops of the
// chunk per weight, and all partials within kWeightPartialBytes.
constexpr std::int64_t kMaxWeightChunks = 64;
constexpr double kWeightPartialBytes = 64.0 * (1 << 20);

FixedChunks weight_grad_chunks(const ConvGeometry& g, std::size_t elem) {
  const double w_size = static_cast<double>(g.O) * static_cast<double>(g.k_rows());
  const double flops = 2.0 * w_size * static_cast<double>(g.out_pixels()) * static_cast<double>(g.N);
  const double by_work = flops / (64.0 * w_size), by_memory = kWeightPartialBytes / (w_size * elem);
  const double limit = std::min({by_work, by_memory, static_cast<double>(kMaxWeightChunks)});
  return fixed_chunks(g.N, 1, std::max<std::int64_t>(1, static_cast<std::int64_t>(limit)));
}

// Runs images(n0, n1, gemm_threads, gw_acc) over the batch, gw_acc receiving
// the weight gradient of those images (null when gw is). With gw, the batch
// goes by weight_grad_chunks: the chunks claimed by the threads (partials in
// memory, added at the end), or one after another with threaded GEMMs (one
// partial at a time) for few, large images. Both add the same partials in
// the same order.
template <class T, class Images>
void for_weight_grad_chunks(const ConvGeometry& g, T* gw, double flops_per_image, int nthreads, Images&& images) {
  if (!gw) {
    for_images(g.N, flops_per_image, nthreads,
               [&](std::int64_t n0, std::int64_t n1, int gemm_threads) { images(n0, n1, gemm_threads, nullptr); });
    return;
  }
  const std::int64_t w_size = g.O * g.k_rows();
  const FixedChunks chunks = weight_grad_chunks(g, sizeof(T));
  const bool split = nthreads > 1 && chunks.count > 1 &&
                     (chunks.count >= nthreads || flops_per_image < kThreadPerImageFlops);
  auto fold = [&](const T* partial, std::int64_t parts) {  // gw += partial 0, 1, ... in order
    parallel_for(w_size, 1 << 14, [&](std::int64_t a, std::int64_t b) {
      for (std::int64_t c = 0; c < parts; ++c)
        for (std::int64_t i = a; i < b; ++i) gw[i] += partial[c * w_size + i];
    }, nthreads);
  };
  if (split) {
    std::vector<T> partials(static_cast<std::size_t>((chunks.count - 1) * w_size), T(0));
    parallel_chunks(chunks.count, nthreads, [&](std::int64_t c) {
      images(chunks.begin(c), chunks.end(c), 1, c == 0 ? gw : partials.data() + (c - 1) * w_size);
    });
    fold(partials.data(), chunks.count - 1);
    return;
  }
  std::vector<T> partial(chunks.count > 1 ? static_cast<std::size_t>(w_size) : 0);
  for (std::int64_t c = 0; c < chunks.count; ++c) {
    if (c == 0) {
      images(chunks.begin(c), chunks.end(c), nthreads, gw);
      continue;
    }
    std::fill(partial.begin(), partial.end(), T(0));
    images(chunks.begin(c), chunks.end(c), nthreads, partial.data());
    fold(partial.data(), 1);
  }
}

// Output pixels per chunk in the backward pass: the unfolded chunk
// (k_rows x chunk) stays near 1 MB.
std::int64_t backward_chunk(const ConvGeometry& g, std::size_t elem) {
  const std::int64_t target = static_cast<std::int64_t>((1 << 20) / elem) / std::max<std::int64_t>(1, g.k_rows());
  return std::clamp<std::int64_t>(target, 16, std::max<std::int64_t>(16, g.out_pixels()));
}

// Stride-1 convolution over a padded copy of each image (rows Wp = W + 2PW
// wide): row k = (c, ky, kx) of the unfolded input, at output pixel
// (oy, ox), is xpad[row_offset[k] + oy*Wp + ox] — one contiguous run per
// output row, no bounds checks. The direct kernels read whole vectors and so
// also compute "junk" columns ox >= OW (discarded); they need junk_slack.
struct PaddedLayout {
  std::int64_t Hp, Wp, plane, size;     // size: Cg planes
  std::int64_t junk_slack;              // read past the last plane by code that also computes junk columns
  bool in_place;                        // x itself already has this layout
  std::vector<std::int64_t> row_offset;
};

PaddedLayout padded_layout(const ConvGeometry& g) {
  PaddedLayout L;
  L.Hp = g.H + 2 * g.PH;
  L.Wp = g.W + 2 * g.PW;
  L.plane = L.Hp * L.Wp;
  L.size = g.c_per_group() * L.plane;
  L.junk_slack = (g.KW - 1) * g.DW;
  L.in_place = g.PH == 0 && g.PW == 0;
  L.row_offset.resize(static_cast<std::size_t>(g.k_rows()));
  for (std::int64_t k = 0; k < g.k_rows(); ++k) {
    const std::int64_t kx = k % g.KW, ky = (k / g.KW) % g.KH, c = k / (g.KW * g.KH);
    L.row_offset[static_cast<std::size_t>(k)] = c * L.plane + ky * g.DH * L.Wp + kx * g.DW;
  }
  return L;
}

// The group's Cg channel planes of one image, zero-padded into L's layout.
// Copies the image into out (zeroed, L.size elements) at the padded layout.
template <class T>
void pad_into(const ConvGeometry& g, const PaddedLayout& L, const T* x, T* out) {
  for (std::int64_t c = 0; c < g.c_per_group(); ++c)
    for (std::int64_t y = 0; y < g.H; ++y)
      std::memcpy(out + c * L.plane + (y + g.PH) * L.Wp + g.PW, x + (c * g.H + y) * g.W, sizeof(T) * g.W);
}

template <class T>
const T* padded_image(const ConvGeometry& g, const PaddedLayout& L, const T* x, std::vector<T>* buf,
                      std::int64_t extra_slack = 0) {
  if (L.in_place && extra_slack == 0) return x;
  buf->assign(static_cast<std::size_t>(L.size + extra_slack), T(0));
  pad_into(g, L, x, buf->data());
  return buf->data();
}

// B = the unfolded padded images (image_stride apart), columns = (image,
// output pixel), no junk columns.
template <class T>
struct PaddedConvSource {
  const T* xpad;
  const std::int64_t* row_offset;
  std::int64_t wp, ow, P, image_stride;
  const GemmKernelSet<T>* ks;
  static void pack(const void* ctx, int kc, std::int64_t nc, std::int64_t k0, std::int64_t n0, int, T* bp) {
    const auto* s = static_cast<const PaddedConvSource*>(ctx);
    s->ks->pack_b_conv(kc, nc, s->xpad, s->row_offset + k0, s->wp, s->ow, s->P, s->image_stride, n0, bp);
  }
};

template <class T>
void forward_stride1(const ConvGeometry& g, const T* x, const T* w, const T* bias, T* y, int nthreads) {
  const std::int64_t P = g.out_pixels(), K = g.k_rows(), Og = g.o_per_group(), Cg = g.c_per_group();
  const PaddedLayout L = padded_layout(g);
  const GemmKernelSet<T>& ks = gemm_kernels<T>(active_isa());
  if (K <= kDirectMaxK) {
    const ConvKernels<T>& ck = kernels_for<T>(active_isa());
    const bool in_bounds = ck.flat_min_ow > 0 && g.OW >= ck.flat_min_ow;
    const std::int64_t slack = in_bounds ? 0 : L.junk_slack + ck.lanes_ahead;
    const std::int64_t x_stride = g.C * g.in_plane(), y_stride = g.O * P;
    for_images(g.N, 0.0, nthreads, [&](std::int64_t n0, std::int64_t n1, int) {
      if (L.in_place && slack == 0) {   // x read where it is: all the part's images in one call per group
        for (std::int64_t gi = 0; gi < g.groups; ++gi)
          ck.direct_small_k(g, L.Wp, x + n0 * x_stride + gi * Cg * g.in_plane(), x_stride, n1 - n0,
                            L.row_offset.data(), w + gi * Og * K, bias ? bias + gi * Og : nullptr,
                            y + n0 * y_stride + gi * Og * P, y_stride);
        return;
      }
      std::vector<T> xbuf;
      for (std::int64_t n = n0; n < n1; ++n)
        for (std::int64_t gi = 0; gi < g.groups; ++gi) {
          const T* xpad = padded_image(g, L, x + n * x_stride + gi * Cg * g.in_plane(), &xbuf, slack);
          ck.direct_small_k(g, L.Wp, xpad, 0, 1, L.row_offset.data(), w + gi * Og * K,
                            bias ? bias + gi * Og : nullptr, y + n * y_stride + gi * Og * P, 0);
        }
    });
    return;
  }
  // Small images go several to a GEMM (columns = image x pixel), so the
  // register tiles are full; their padded copies sit side by side.
  const std::int64_t per_batch = std::max<std::int64_t>(1, std::min<std::int64_t>(16, 1024 / std::max<std::int64_t>(1, P)));
  for_images(g.N, 2.0 * g.O * K * P, nthreads, [&](std::int64_t n0, std::int64_t n1, int gemm_threads) {
    std::vector<T> xbuf, ybuf(per_batch > 1 ? static_cast<std::size_t>(Og * per_batch * P) : 0);
    for (std::int64_t nb = n0; nb < n1; nb += per_batch) {
      const std::int64_t m = std::min(per_batch, n1 - nb);
      for (std::int64_t gi = 0; gi < g.groups; ++gi) {
        const T* xsrc;
        std::int64_t stride;
        if (L.in_place) {  // unpadded images already sit side by side in x
          xsrc = x + (nb * g.C + gi * Cg) * g.in_plane();
          stride = g.C * g.in_plane();
        } else if (m == 1) {
          xsrc = padded_image(g, L, x + (nb * g.C + gi * Cg) * g.in_plane(), &xbuf);
          stride = L.size;
        } else {
          xbuf.assign(static_cast<std::size_t>(L.size * m), T(0));
          for (std::int64_t j = 0; j < m; ++j)
            pad_into(g, L, x + ((nb + j) * g.C + gi * Cg) * g.in_plane(), xbuf.data() + j * L.size);
          xsrc = xbuf.data();
          stride = L.size;
        }
        PaddedConvSource<T> src{xsrc, L.row_offset.data(), L.Wp, g.OW, P, stride, &ks};
        if (m == 1) {
          forward_group_gemm(g, gi, &src, w, bias, m * P, y + (nb * g.O + gi * Og) * P, gemm_threads);
        } else {
          forward_group_gemm(g, gi, &src, w, bias, m * P, ybuf.data(), gemm_threads);
          for (std::int64_t j = 0; j < m; ++j)
            for (std::int64_t o = 0; o < Og; ++o)
              std::memcpy(y + ((nb + j) * g.O + gi * Og + o) * P, ybuf.data() + o * m * P + j * P, sizeof(T) * P);
        }
      }
    }
  });
}

}  // namespace

template <class T>
void conv2d_forward(const ConvGeometry& g, const T* x, const T* w, const T* bias, T* y, int nthreads) {
  const std::int64_t P = g.out_pixels(), K = g.k_rows(), Og = g.o_per_group(), Cg = g.c_per_group();
  if (g.N == 0 || g.O == 0 || P == 0) return;
  if (g.SH == 1 && g.SW == 1) {
    forward_stride1(g, x, w, bias, y, nthreads);
    return;
  }
  const double flops = 2.0 * g.O * K * P;
  for_images(g.N, flops, nthreads, [&](std::int64_t n0, std::int64_t n1, int gemm_threads) {
    for (std::int64_t n = n0; n < n1; ++n) {
      for (std::int64_t gi = 0; gi < g.groups; ++gi) {
        Im2colSource<T> src{&g, x + (n * g.C + gi * Cg) * g.in_plane()};
        forward_group_gemm(g, gi, &src, w, bias, P, y + (n * g.O + gi * Og) * P, gemm_threads);
      }
    }
  });
}

namespace {

// grad_x and grad_w for any stride: unfold chunks of output pixels into a
// bounded buffer; grad_x folds back with col2im.
template <class T>
void backward_generic(const ConvGeometry& g, const T* gy, const T* x, const T* w, T* gx, T* gw, int nthreads) {
  const std::int64_t P = g.out_pixels(), K = g.k_rows(), Og = g.o_per_group(), Cg = g.c_per_group();
  const std::int64_t chunk = backward_chunk(g, sizeof(T));
  const double flops = 2.0 * g.O * K * P * ((gx ? 1 : 0) + (gw ? 1 : 0));
  for_weight_grad_chunks(g, gw, flops, nthreads, [&](std::int64_t n0, std::int64_t n1, int gemm_threads, T* gw_acc) {
    std::vector<T> col(static_cast<std::size_t>(K * chunk));
    for (std::int64_t n = n0; n < n1; ++n) {
      for (std::int64_t gi = 0; gi < g.groups; ++gi) {
        const T* x_ng = x + (n * g.C + gi * Cg) * g.in_plane();
        T* gx_ng = gx ? gx + (n * g.C + gi * Cg) * g.in_plane() : nullptr;
        const T* gy_ng = gy + (n * g.O + gi * Og) * P;
        const T* w_g = w + gi * Og * K;
        for (std::int64_t p0 = 0; p0 < P; p0 += chunk) {
          const std::int64_t pc = std::min(chunk, P - p0);
          if (gw_acc) {
            // gw_g (Og x K) += gy_ng[:, chunk] (Og x pc) . col^T (pc x K)
            for (std::int64_t k = 0; k < K; ++k)
              im2col_segment(g, x_ng, im2col_row(g, k), p0, pc, col.data() + k * pc);
            GemmB<T> b;
            b.matrix = StridedMatrix{col.data(), 1, pc};
            GemmEpilogue<T> ep;
            ep.accumulate = true;
            gemm_ex<T>(Og, K, pc, StridedMatrix{gy_ng + p0, P, 1}, b, gw_acc + gi * Og * K, K, ep, gemm_threads);
          }
          if (gx_ng) {
            // col (K x pc) = w_g^T (K x Og) . gy_ng[:, chunk] (Og x pc), then fold back into gx.
            GemmB<T> b;
            b.matrix = StridedMatrix{gy_ng + p0, P, 1};
            gemm_ex<T>(K, pc, Og, StridedMatrix{w_g, 1, K}, b, col.data(), pc, GemmEpilogue<T>{}, gemm_threads);
            for (std::int64_t k = 0; k < K; ++k)
              col2im_segment_add(g, gx_ng, im2col_row(g, k), p0, pc, col.data() + k * pc);
          }
        }
      }
    }
  });
}

// grad_w and/or grad_x for stride 1, a batch of images at a time. Columns are
// (image, output pixel): several small images make one long GEMM (full
// register tiles, fewer C updates); a large image is cut into pixel chunks.
// The images' grad_y go side by side into gyc (Og x cols), which is A of
//   gw (Og x K)   += gyc . col^T,  col = unfold(x)        (col K x cols)
// and B of
//   col (K x cols) = w^T . gyc,     gx += fold(col)
// with unfold/fold run by run over the padded layout (unfold.h).
template <class T>
void backward_stride1(const ConvGeometry& g, const T* gy, const T* x, const T* w, T* gx, T* gw, int nthreads) {
  const std::int64_t P = g.out_pixels(), K = g.k_rows(), Og = g.o_per_group(), Cg = g.c_per_group();
  const PaddedLayout L = padded_layout(g);
  const ConvKernels<T>& ck = kernels_for<T>(active_isa());
  const bool small_k = K <= kDirectMaxK;  // grad_w by dot products (direct_small_k.h), no GEMM
  const std::int64_t target = std::max<std::int64_t>(64, backward_chunk(g, sizeof(T)));
  const std::int64_t per_batch = std::max<std::int64_t>(1, target / std::max<std::int64_t>(1, P));
  const std::int64_t pchunk = per_batch == 1 ? std::min(P, target) : P;
  const std::int64_t max_cols = per_batch * pchunk;
  // w^T per group (K x Og, row-major), read in place by the grad_x GEMM.
  std::vector<T> wt(gx ? static_cast<std::size_t>(g.O * K) : 0);
  if (gx)
    for (std::int64_t gi = 0; gi < g.groups; ++gi)
      for (std::int64_t o = 0; o < Og; ++o)
        for (std::int64_t k = 0; k < K; ++k)
          wt[static_cast<std::size_t>((gi * K + k) * Og + o)] = w[(gi * Og + o) * K + k];
  const double flops = 2.0 * g.O * K * P * ((gx ? 1 : 0) + (gw ? 1 : 0));
  for_weight_grad_chunks(g, gw, flops, nthreads, [&](std::int64_t n0, std::int64_t n1, int gemm_threads, T* acc) {
    // Scratch only for the GEMM paths, left uninitialised: zero-filling megabytes that a
    // small-K weight gradient never touches cost more than the gradient itself.
    const bool gemm_paths = gx || (acc && !small_k);
    std::unique_ptr<T[]> col_buf(gemm_paths ? new T[static_cast<std::size_t>(K * max_cols)] : nullptr);
    std::unique_ptr<T[]> gyc_buf(gemm_paths && per_batch > 1 ? new T[static_cast<std::size_t>(Og * max_cols)] : nullptr);
    T* const col = col_buf.get();
    T* const gyc = gyc_buf.get();
    std::vector<std::vector<T>> xbuf(static_cast<std::size_t>(per_batch));
    std::vector<T> gxpad(gx && !L.in_place ? static_cast<std::size_t>(L.size * per_batch) : 0);
    for (std::int64_t nb = n0; nb < n1; nb += per_batch) {
      const std::int64_t m = std::min(per_batch, n1 - nb);
      for (std::int64_t gi = 0; gi < g.groups; ++gi) {
        std::vector<const T*> xpad(static_cast<std::size_t>(m));
        for (std::int64_t j = 0; j < m; ++j)
          xpad[static_cast<std::size_t>(j)] =
              padded_image(g, L, x + ((nb + j) * g.C + gi * Cg) * g.in_plane(), &xbuf[static_cast<std::size_t>(j)],
                           small_k ? L.junk_slack + ck.lanes_ahead : 0);
        if (acc && small_k)
          for (std::int64_t j = 0; j < m; ++j)
            ck.direct_small_k_weight_grad(g, L.Wp, xpad[static_cast<std::size_t>(j)], L.row_offset.data(),
                                          gy + ((nb + j) * g.O + gi * Og) * P, acc + gi * Og * K);
        const bool gemm_gw = acc && !small_k;
        if (!gemm_gw && !gx) continue;
        T* gx_acc = gx && L.in_place ? nullptr : gxpad.data();
        if (gx && !L.in_place) std::fill(gxpad.begin(), gxpad.begin() + L.size * m, T(0));
        for (std::int64_t p0 = 0; p0 < P; p0 += pchunk) {
          const std::int64_t pc = std::min(pchunk, P - p0), cols = m * pc;
          // One image: its grad_y rows are read where they are (row stride P);
          // several go side by side into gyc first.
          const T* gy_cols = gy + (nb * g.O + gi * Og) * P + p0;
          std::int64_t ld_gy = P;
          if (m > 1) {
            for (std::int64_t o = 0; o < Og; ++o)
              for (std::int64_t j = 0; j < m; ++j)
                std::memcpy(gyc + o * cols + j * pc, gy + ((nb + j) * g.O + gi * Og + o) * P + p0,
                            sizeof(T) * pc);
            gy_cols = gyc;
            ld_gy = cols;
          }
          if (gemm_gw) {
            for (std::int64_t j = 0; j < m; ++j)
              ck.unfold_stride1(K, pc, xpad[static_cast<std::size_t>(j)], L.row_offset.data(), L.Wp, g.OW, p0,
                                col + j * pc, cols);
            GemmB<T> b;
            b.matrix = StridedMatrix{col, 1, cols};
            GemmEpilogue<T> ep;
            ep.accumulate = true;
            gemm_ex<T>(Og, K, cols, StridedMatrix{gy_cols, ld_gy, 1}, b, acc + gi * Og * K, K, ep, gemm_threads);
          }
          if (gx) {
            GemmB<T> b;
            b.matrix = StridedMatrix{gy_cols, ld_gy, 1};
            gemm_ex<T>(K, cols, Og, StridedMatrix{wt.data() + gi * K * Og, Og, 1}, b, col, cols,
                       GemmEpilogue<T>{}, gemm_threads);
            for (std::int64_t j = 0; j < m; ++j) {
              T* dst = gx_acc ? gx_acc + j * L.size : gx + ((nb + j) * g.C + gi * Cg) * g.in_plane();
              ck.fold_stride1_add(K, pc, col + j * pc, cols, dst, L.row_offset.data(), L.Wp, g.OW, p0);
            }
          }
        }
        if (gx && gx_acc)  // crop the padded gradients into gx
          for (std::int64_t j = 0; j < m; ++j) {
            T* gx_ng = gx + ((nb + j) * g.C + gi * Cg) * g.in_plane();
            const T* src = gx_acc + j * L.size;
            for (std::int64_t c = 0; c < Cg; ++c)
              for (std::int64_t yy = 0; yy < g.H; ++yy)
                std::memcpy(gx_ng + (c * g.H + yy) * g.W, src + c * L.plane + (yy + g.PH) * L.Wp + g.PW,
                            sizeof(T) * g.W);
          }
      }
    }
  });
}

}  // namespace

template <class T>
void conv2d_backward(const ConvGeometry& g, const T* gy, const T* x, const T* w, T* gx, T* gw, T* gb,
                     int nthreads) {
  const std::int64_t P = g.out_pixels(), K = g.k_rows(), Og = g.o_per_group(), Cg = g.c_per_group();
  const std::int64_t w_size = g.O * K;

  if (gb) {
    const auto sum = elementwise_kernels<T>(active_isa()).sum;
    for (std::int64_t o = 0; o < g.O; ++o) {
      double total = 0;
      for (std::int64_t n = 0; n < g.N; ++n) total += sum(gy + (n * g.O + o) * P, P);
      gb[o] = static_cast<T>(total);
    }
  }
  if (gx) std::fill(gx, gx + g.N * g.C * g.in_plane(), T(0));
  if (gw) std::fill(gw, gw + w_size, T(0));
  if ((!gx && !gw) || g.N == 0 || P == 0 || g.O == 0) return;

  const bool stride1 = g.SH == 1 && g.SW == 1;
  // grad_x of a stride-1 convolution is itself a stride-1 convolution of
  // grad_y with the flipped, transposed kernel and padding (k-1)*d - p.
  // That convolution has Cg output channels, i.e. each packed element of
  // grad_y feeds only Cg rows: with few input channels or small images the
  // col2im path, which packs grad_y once for all Cg*KH*KW rows, moves less
  // data (measured: 13x13x32 and C=1 faster by col2im, 28x28x128 and
  // 56x56x64 by the flipped convolution).
  const bool gx_as_conv = gx && stride1 && g.PH <= (g.KH - 1) * g.DH && g.PW <= (g.KW - 1) * g.DW && Cg >= 16 &&
                          Cg * P >= 65536;
  if (gx_as_conv) {
    std::vector<T> wt(static_cast<std::size_t>(w_size));
    for (std::int64_t gi = 0; gi < g.groups; ++gi)
      for (std::int64_t o = 0; o < Og; ++o)
        for (std::int64_t c = 0; c < Cg; ++c)
          for (std::int64_t ky = 0; ky < g.KH; ++ky)
            for (std::int64_t kx = 0; kx < g.KW; ++kx)
              wt[static_cast<std::size_t>((((gi * Cg + c) * Og + o) * g.KH + (g.KH - 1 - ky)) * g.KW + (g.KW - 1 - kx))] =
                  w[(((gi * Og + o) * Cg + c) * g.KH + ky) * g.KW + kx];
    ConvGeometry t = g;
    t.C = g.O;
    t.H = g.OH;
    t.W = g.OW;
    t.O = g.C;
    t.PH = (g.KH - 1) * g.DH - g.PH;
    t.PW = (g.KW - 1) * g.DW - g.PW;
    t.OH = g.H;
    t.OW = g.W;
    conv2d_forward<T>(t, gy, wt.data(), nullptr, gx, nthreads);
  }

  T* gx_stride1 = gx && !gx_as_conv && stride1 ? gx : nullptr;
  if ((gw && stride1) || gx_stride1) backward_stride1(g, gy, x, w, gx_stride1, stride1 ? gw : nullptr, nthreads);
  T* gx_generic = stride1 ? nullptr : gx;
  T* gw_generic = stride1 ? nullptr : gw;
  if (gx_generic || gw_generic) backward_generic(g, gy, x, w, gx_generic, gw_generic, nthreads);
}

template void conv2d_forward<float>(const ConvGeometry&, const float*, const float*, const float*, float*, int);
template void conv2d_forward<double>(const ConvGeometry&, const double*, const double*, const double*, double*, int);
template void conv2d_backward<float>(const ConvGeometry&, const float*, const float*, const float*, float*, float*,
                                     float*, int);
template void conv2d_backward<double>(const ConvGeometry&, const double*, const double*, const double*, double*,
                                      double*, double*, int);

}  // namespace cpu
}  // namespace pyfastnn
