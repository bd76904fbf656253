// CUDA attention bindings: raw device pointers + the caller's stream; checks live in
// pyfastnn/cuda_ops/attention.py.
#include <cstdint>
#include <stdexcept>
#include <string>

#include "bindings/cuda_common.h"
#include "cuda/attention/attention.h"

namespace pyfastnn {
namespace cuda_bindings {

namespace {

namespace py = pybind11;
using cuda::AttentionDType;
using cuda::AttentionImpl;
using cuda::AttentionMask;
using cuda::AttentionMaskKind;

AttentionDType dtype_of(int code, const char* op) {
  if (code < 0 || code > 2) throw py::value_error(std::string(op) + ": dtype code must be 0 (f32), 1 (f16) or 2 (bf16)");
  return static_cast<AttentionDType>(code);
}

AttentionImpl impl_of(int code, const char* op) {
  if (code < 0 || code > 3)
    throw py::value_error(std::string(op) + ": impl code must be 0 (auto), 1 (reference), 2 (simt) or 3 (mma)");
  return static_cast<AttentionImpl>(code);
}

AttentionMask mask_of(std::uintptr_t data, int kind, std::int64_t s0, std::int64_t s1, std::int64_t s2,
                      std::int64_t s3, const char* op) {
  if (kind < 0 || kind > 2) throw py::value_error(std::string(op) + ": mask kind must be 0 (none), 1 (bool) or 2 (additive)");
  AttentionMask m;
  m.kind = data ? static_cast<AttentionMaskKind>(kind) : AttentionMaskKind::none;
  m.data = reinterpret_cast<const void*>(data);
  m.s0 = s0;
  m.s1 = s1;
  m.s2 = s2;
  m.s3 = s3;
  return m;
}

// The fields forward and backward share: q, k, v, the sizes, scale, causal, mask.
template <class Args>
void set_common(Args* a, std::uintptr_t q, std::uintptr_t k, std::uintptr_t v, std::int64_t B, std::int64_t H,
                std::int64_t Nq, std::int64_t Nk, std::int64_t D, double scale, bool causal, std::uintptr_t mask,
                int mask_kind, std::int64_t ms0, std::int64_t ms1, std::int64_t ms2, std::int64_t ms3,
                const char* op) {
  a->q = dev_ptr<const void>(q);
  a->k = dev_ptr<const void>(k);
  a->v = dev_ptr<const void>(v);
  a->B = B;
  a->H = H;
  a->Nq = Nq;
  a->Nk = Nk;
  a->D = D;
  a->scale = static_cast<float>(scale);
  a->causal = causal;
  a->mask = mask_of(mask, mask_kind, ms0, ms1, ms2, ms3, op);
}

}  // namespace

void bind_attention(pybind11::module_& m) {
  m.def(
      "attention_forward",
      [](std::uintptr_t q, std::uintptr_t k, std::uintptr_t v, std::uintptr_t out, std::uintptr_t lse, std::int64_t B,
         std::int64_t H, std::int64_t Nq, std::int64_t Nk, std::int64_t D, double scale, bool causal,
         std::uintptr_t mask, int mask_kind, std::int64_t ms0, std::int64_t ms1, std::int64_t ms2, std::int64_t ms3,
         int dtype, int impl, std::uintptr_t stream) {
        cuda::AttentionForwardArgs a;
        set_common(&a, q, k, v, B, H, Nq, Nk, D, scale, causal, mask, mask_kind, ms0, ms1, ms2, ms3, "attention");
        a.out = dev_ptr<void>(out);
        a.lse = dev_ptr<float>(lse);
        const AttentionDType dt = dtype_of(dtype, "attention");
        const AttentionImpl im = impl_of(impl, "attention");
        py::gil_scoped_release release;
        check(cuda::attention_forward(a, dt, im, stream_of(stream)), "attention");
      },
      py::arg("q"), py::arg("k"), py::arg("v"), py::arg("out"), py::arg("lse"), py::arg("B"), py::arg("H"),
      py::arg("Nq"), py::arg("Nk"), py::arg("D"), py::arg("scale"), py::arg("causal"), py::arg("mask"),
      py::arg("mask_kind"), py::arg("ms0"), py::arg("ms1"), py::arg("ms2"), py::arg("ms3"), py::arg("dtype"),
      py::arg("impl"), py::arg("stream"),
      "Attention forward on the stream: out (B,H,Nq,D) and lse (B,H,Nq, float32). Requires B*H*Nq > 0, Nk > 0.");
  m.def(
      "attention_backward",
      [](std::uintptr_t grad_out, std::uintptr_t q, std::uintptr_t k, std::uintptr_t v, std::uintptr_t out,
         std::uintptr_t lse, std::uintptr_t delta, std::uintptr_t grad_q, std::uintptr_t grad_k, std::uintptr_t grad_v,
         std::int64_t B, std::int64_t H, std::int64_t Nq, std::int64_t Nk, std::int64_t D, double scale, bool causal,
         std::uintptr_t mask, int mask_kind, std::int64_t ms0, std::int64_t ms1, std::int64_t ms2, std::int64_t ms3,
         int dtype, int impl, std::uintptr_t stream) {
        cuda::AttentionBackwardArgs a;
        set_common(&a, q, k, v, B, H, Nq, Nk, D, scale, causal, mask, mask_kind, ms0, ms1, ms2, ms3,
                   "attention_backward");
        a.grad_out = dev_ptr<const void>(grad_out);
        a.out = dev_ptr<const void>(out);
        a.lse = dev_ptr<const float>(lse);
        a.delta = dev_ptr<float>(delta);
        a.grad_q = dev_ptr<void>(grad_q);
        a.grad_k = dev_ptr<void>(grad_k);
        a.grad_v = dev_ptr<void>(grad_v);
        const AttentionDType dt = dtype_of(dtype, "attention_backward");
        const AttentionImpl im = impl_of(impl, "attention_backward");
        py::gil_scoped_release release;
        check(cuda::attention_backward(a, dt, im, stream_of(stream)), "attention_backward");
      },
      py::arg("grad_out"), py::arg("q"), py::arg("k"), py::arg("v"), py::arg("out"), py::arg("lse"), py::arg("delta"),
      py::arg("grad_q"), py::arg("grad_k"), py::arg("grad_v"), py::arg("B"), py::arg("H"), py::arg("Nq"),
      py::arg("Nk"), py::arg("D"), py::arg("scale"), py::arg("causal"), py::arg("mask"), py::arg("mask_kind"),
      py::arg("ms0"), py::arg("ms1"), py::arg("ms2"), py::arg("ms3"), py::arg("dtype"), py::arg("impl"),
      py::arg("stream"),
      "Attention backward on the stream; delta is a float32 (B,H,Nq) workspace. Requires B*H*Nq > 0, Nk > 0, D > 0.");
  m.def(
      "attention_impl_supports",
      [](int impl, int dtype, std::int64_t D, bool backward) {
        return cuda::attention_impl_supports(impl_of(impl, "attention"), dtype_of(dtype, "attention"), D, backward);
      },
      py::arg("impl"), py::arg("dtype"), py::arg("D"), py::arg("backward"),
      "Whether the implementation (0 auto, 1 reference, 2 simt, 3 mma) takes this dtype code and head size.");
}

}  // namespace cuda_bindings
}  // namespace pyfastnn
