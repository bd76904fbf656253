// Group-norm drivers and the kernel table. Every reduction is cut into chunks
// of kNormChunk elements at fixed offsets and the chunk sums are added in
// double in chunk order: the forward pass runs a whole group per task when
// there are enough groups (its data stays in cache across the three passes),
// or chunks of a few large groups per task otherwise, and both orders of work
// give the same bits.
#include "cpu/norm/norm.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "runtime/dispatch.h"
#include "runtime/isa_table.h"
#include "runtime/parallel.h"

namespace pyfastnn {
namespace cpu {

namespace {

const IsaTable<NormKernels>& table() {
  static const IsaTable<NormKernels> t(&norm_kernels_scalar, &norm_kernels_avx2, &norm_kernels_avx512);
  return t;
}

constexpr std::int64_t kGrainElems = 1 << 15;

std::int64_t chunks_of(std::int64_t n) { return (n + kNormChunk - 1) / kNormChunk; }

}  // namespace

template <>
const NormKernels<float>& norm_kernels<float>(CpuIsa isa) { return table().get<float>(isa); }
template <>
const NormKernels<double>& norm_kernels<double>(CpuIsa isa) { return table().get<double>(isa); }

template <class T>
void group_norm_forward(const T* x, const T* w, const T* b, T* y, T* mean, T* rstd, std::int64_t N, std::int64_t C,
                        std::int64_t HW, std::int64_t G, double eps) {
  const NormKernels<T>& k = norm_kernels<T>(active_isa());
  const std::int64_t Cg = C / G, M = Cg * HW, NG = N * G, chunks = chunks_of(M);
  if (NG == 0) return;
  auto len = [&](std::int64_t c) { return std::min(kNormChunk, M - c * kNormChunk); };
  auto set_mean = [&](std::int64_t gi, double s1) { mean[gi] = static_cast<T>(M ? s1 / static_cast<double>(M) : 0.0); };
  auto set_rstd = [&](std::int64_t gi, double s2) {
    const double var = M ? s2 / static_cast<double>(M) : 0.0;
    rstd[gi] = static_cast<T>(1.0 / std::sqrt(var + eps));
  };
  // y over [s, e) of group gi: channel by channel, scale = rstd * w, shift = b - mean * scale.
  auto apply = [&](std::int64_t gi, std::int64_t s, std::int64_t e) {
    const std::int64_t c0 = (gi % G) * Cg;
    const std::int64_t base = gi * M;
    while (s < e) {
      const std::int64_t c = c0 + s / HW, stop = std::min(e, (s / HW + 1) * HW);
      const T scale = w ? rstd[gi] * w[c] : rstd[gi];
      const T shift = (b ? b[c] : T(0)) - mean[gi] * scale;
      k.scale_shift(x + base + s, y + base + s, stop - s, scale, shift);
      s = stop;
    }
  };
  const int threads = get_num_threads();
  if (NG >= 2 * threads || chunks < 2) {
    parallel_for(NG, std::max<std::int64_t>(1, kGrainElems / std::max<std::int64_t>(1, M)),
                 [&](std::int64_t g0, std::int64_t g1) {
                   for (std::int64_t gi = g0; gi < g1; ++gi) {
                     const T* xg = x + gi * M;
                     double s1 = 0;
                     for (std::int64_t c = 0; c < chunks; ++c) s1 += k.sum(xg + c * kNormChunk, len(c));
                     set_mean(gi, s1);
                     double s2 = 0;
                     for (std::int64_t c = 0; c < chunks; ++c) s2 += k.sum_sq_dev(xg + c * kNormChunk, len(c), mean[gi]);
                     set_rstd(gi, s2);
                     apply(gi, 0, M);
                   }
                 });
    return;
  }
  // A few large groups: every pass over (group, chunk) items.
  const std::int64_t items = NG * chunks;
  std::vector<double> part(static_cast<std::size_t>(items));
  auto pass = [&](auto&& f) {
    parallel_for(items, std::max<std::int64_t>(1, kGrainElems / kNormChunk), [&](std::int64_t a, std::int64_t e) {
      for (std::int64_t it = a; it < e; ++it) f(it / chunks, it % chunks);
    });
  };
  auto combine = [&](auto&& set) {
    for (std::int64_t gi = 0; gi < NG; ++gi) {
      double s = 0;
      for (std::int64_t c = 0; c < chunks; ++c) s += part[gi * chunks + c];
      set(gi, s);
    }
  };
  pass([&](std::int64_t gi, std::int64_t c) { part[gi * chunks + c] = k.sum(x + gi * M + c * kNormChunk, len(c)); });
  combine(set_mean);
  pass([&](std::int64_t gi, std::int64_t c) {
    part[gi * chunks + c] = k.sum_sq_dev(x + gi * M + c * kNormChunk, len(c), mean[gi]);
  });
  combine(set_rstd);
  pass([&](std::int64_t gi, std::int64_t c) { apply(gi, c * kNormChunk, c * kNormChunk + len(c)); });
}

template <class T>
void group_norm_backward(const T* g, const T* x, const T* mean, const T* rstd, const T* w, T* gx, T* gw, T* gb,
                         std::int64_t N, std::int64_t C, std::int64_t HW, std::int64_t G) {
  const NormKernels<T>& k = norm_kernels<T>(active_isa());
  const std::int64_t Cg = C / G, M = Cg * HW, R = N * C, chunks = chunks_of(HW), items = R * chunks;
  auto len = [&](std::int64_t c) { return std::min(kNormChunk, HW - c * kNormChunk); };
  auto group_of = [&](std::int64_t r) { return (r / C) * G + (r % C) / Cg; };
  // Per row (n, c): db = sum(g), ds = sum(g * (x - mean)), from chunk sums in order.
  std::vector<double> pg(static_cast<std::size_t>(items)), pd(static_cast<std::size_t>(items));
  const std::int64_t grain = std::max<std::int64_t>(1, kGrainElems / std::max<std::int64_t>(1, std::min(HW, kNormChunk)));
  parallel_for(items, grain, [&](std::int64_t a, std::int64_t e) {
    for (std::int64_t it = a; it < e; ++it) {
      const std::int64_t r = it / chunks, c = it % chunks, off = r * HW + c * kNormChunk;
      k.grad_sums(g + off, x + off, len(c), mean[group_of(r)], &pg[it], &pd[it]);
    }
  });
  std::vector<double> db(static_cast<std::size_t>(R), 0.0), ds(static_cast<std::size_t>(R), 0.0);
  for (std::int64_t r = 0; r < R; ++r)
    for (std::int64_t c = 0; c < chunks; ++c) {
      db[r] += pg[r * chunks + c];
      ds[r] += pd[r * chunks + c];
    }
  // gx = rstd w g - rstd A / M - (x - mean) rstd^3 B / M, A = sum_c w db, B = sum_c w ds over the group.
  std::vector<T> ca(static_cast<std::size_t>(R)), cb(static_cast<std::size_t>(R)), cc(static_cast<std::size_t>(R));
  for (std::int64_t gi = 0; gi < N * G; ++gi) {
    const std::int64_t r0 = (gi / G) * C + (gi % G) * Cg;
    double A = 0, B = 0;
    for (std::int64_t j = 0; j < Cg; ++j) {
      const double wc = w ? static_cast<double>(w[(gi % G) * Cg + j]) : 1.0;
      A += wc * db[r0 + j];
      B += wc * ds[r0 + j];
    }
    const double rs = static_cast<double>(rstd[gi]);
    const double mb = M ? -rs * rs * rs * B / static_cast<double>(M) : 0.0;
    const double mc = M ? -rs * A / static_cast<double>(M) : 0.0;
    for (std::int64_t j = 0; j < Cg; ++j) {
      ca[r0 + j] = static_cast<T>(rs * (w ? static_cast<double>(w[(gi % G) * Cg + j]) : 1.0));
      cb[r0 + j] = static_cast<T>(mb);
      cc[r0 + j] = static_cast<T>(mc);
    }
  }
  for (std::int64_t c = 0; c < C; ++c) {
    double sw = 0, sb = 0;
    for (std::int64_t n = 0; n < N; ++n) {
      sw += ds[n * C + c] * static_cast<double>(rstd[n * G + c / Cg]);
      sb += db[n * C + c];
    }
    gw[c] = static_cast<T>(sw);
    gb[c] = static_cast<T>(sb);
  }
  parallel_for(items, grain, [&](std::int64_t a, std::int64_t e) {
    for (std::int64_t it = a; it < e; ++it) {
      const std::int64_t r = it / chunks, c = it % chunks, off = r * HW + c * kNormChunk;
      k.grad_apply(g + off, x + off, gx + off, len(c), ca[r], cb[r], mean[group_of(r)], cc[r]);
    }
  });
}

template void group_norm_forward<float>(const float*, const float*, const float*, float*, float*, float*,
                                        std::int64_t, std::int64_t, std::int64_t, std::int64_t, double);
template void group_norm_forward<double>(const double*, const double*, const double*, double*, double*, double*,
                                         std::int64_t, std::int64_t, std::int64_t, std::int64_t, double);
template void group_norm_backward<float>(const float*, const float*, const float*, const float*, const float*, float*,
                                         float*, float*, std::int64_t, std::int64_t, std::int64_t, std::int64_t);
template void group_norm_backward<double>(const double*, const double*, const double*, const double*, const double*,
                                          double*, double*, double*, std::int64_t, std::int64_t, std::int64_t,
                                          std::int64_t);

}  // namespace cpu
}  // namespace pyfastnn
