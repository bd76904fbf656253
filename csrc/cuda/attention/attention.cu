// Attention entry points: pick the implementation for the head size and dtype
// and launch it. The argument checks are the Python layer's
// (pyfastnn/cuda_ops/attention.py).
#include "cuda/attention/attention.h"

#include "cuda/attention/attention_common.cuh"

namespace pyfastnn {
namespace cuda {

namespace {

// Whether the current device lets one block have `bytes` of dynamic shared
// memory. If the query itself fails the launch will report the real error.
bool smem_fits(std::size_t bytes) {
  int device = 0, optin = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device) != cudaSuccess)
    return true;
  return bytes <= static_cast<std::size_t>(optin);
}

AttentionImpl resolve(AttentionImpl impl, AttentionDType dtype, std::int64_t D, bool backward) {
  if (impl != AttentionImpl::automatic) return impl;
  if (attention_impl_supports(AttentionImpl::mma, dtype, D, backward)) return AttentionImpl::mma;
  // The simt D = 128 tiles exceed the shared memory of sm_86/sm_89 parts;
  // 'automatic' must still work there (an explicit 'simt' reports the error).
  if (attention_impl_supports(AttentionImpl::simt, dtype, D, backward) &&
      smem_fits(attn::simt_smem_bytes(D, backward)))
    return AttentionImpl::simt;
  return AttentionImpl::reference;
}

}  // namespace

bool attention_impl_supports(AttentionImpl impl, AttentionDType dtype, std::int64_t D, bool backward) {
  switch (impl) {
    case AttentionImpl::automatic:
    case AttentionImpl::reference: return D >= 0;
    case AttentionImpl::simt: return D >= 1 && D <= attn::kSimtMaxD;
    case AttentionImpl::mma: return dtype != AttentionDType::f32 && (D == 64 || D == 128);
  }
  (void)backward;
  return false;
}

cudaError_t attention_forward(const AttentionForwardArgs& args, AttentionDType dtype, AttentionImpl impl,
                              cudaStream_t stream) {
  impl = resolve(impl, dtype, args.D, false);
  if (!attention_impl_supports(impl, dtype, args.D, false)) return cudaErrorNotSupported;
  switch (impl) {
    case AttentionImpl::mma: return attn::forward_mma(args, dtype, stream);
    case AttentionImpl::simt: return attn::forward_simt(args, dtype, stream);
    default: return attn::forward_reference(args, dtype, stream);
  }
}

cudaError_t attention_backward(const AttentionBackwardArgs& args, AttentionDType dtype, AttentionImpl impl,
                               cudaStream_t stream) {
  impl = resolve(impl, dtype, args.D, true);
  if (!attention_impl_supports(impl, dtype, args.D, true)) return cudaErrorNotSupported;
  if (cudaError_t e = attn::backward_delta(args, dtype, stream)) return e;
  switch (impl) {
    case AttentionImpl::mma: return attn::backward_mma(args, dtype, stream);
    case AttentionImpl::simt: return attn::backward_simt(args, dtype, stream);
    default: return attn::backward_reference(args, dtype, stream);
  }
}

}  // namespace cuda
}  // namespace pyfastnn
