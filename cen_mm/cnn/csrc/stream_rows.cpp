// Copyright (c) cen_mm contributors. All rights reserved.
//
// The row kernels of stream_rows.c as torch operators with a C++ autograd
// node (see cen_mm/cnn/row_kernel.py, which builds and loads this file with
// torch.utils.cpp_extension, and ExchangeNorm.reference_forward, which
// defines what they compute). The layer's whole per-call path (checks,
// statistics, sources, kernel, autograd) runs here, because on small maps
// the same steps in Python cost more than the kernels.
#include <torch/extension.h>

#include <cmath>
#include <string>
#include <vector>

extern "C" {
#include "stream_rows.c"
}

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

constexpr int64_t kMaxStreams = 64;

// The C kernels by floating type.
template <typename T> struct Kernels;
template <> struct Kernels<float> {
  static constexpr auto forward = cen_rows_forward_f32;
  static constexpr auto batch_forward = cen_rows_batch_forward_f32;
  static constexpr auto backward = cen_rows_backward_f32;
  static constexpr auto affine = cen_rows_affine_f32;
  static constexpr auto sources = cen_threshold_sources_f32;
};
template <> struct Kernels<double> {
  static constexpr auto forward = cen_rows_forward_f64;
  static constexpr auto batch_forward = cen_rows_batch_forward_f64;
  static constexpr auto backward = cen_rows_backward_f64;
  static constexpr auto affine = cen_rows_affine_f64;
  static constexpr auto sources = cen_threshold_sources_f64;
};

std::string describe(const at::Tensor &t) {
  std::string shape = "(";
  for (int64_t i = 0; i < t.dim(); ++i)
    shape += (i ? ", " : "") + std::to_string(t.size(i));
  return shape + (t.dim() == 1 ? ",) " : ") ") +
         std::string(c10::toString(t.scalar_type())) + " on " +
         t.device().str();
}

// M per-stream (C,) tensors of the input's dtype on the CPU.
void check_streams(const std::vector<at::Tensor> &ts, const at::Tensor &x,
                   int64_t M, int64_t C, const char *what) {
  TORCH_CHECK_VALUE(static_cast<int64_t>(ts.size()) == M,
                    "cen_mm row kernels: expected ", M, " ", what,
                    " (one per stream), got ", ts.size());
  for (const auto &t : ts)
    TORCH_CHECK_VALUE(
        t.device().is_cpu() && t.scalar_type() == x.scalar_type() &&
            t.dim() == 1 && t.size(0) == C,
        "cen_mm row kernels: expected every ", what, " to be (", C, ",) ",
        c10::toString(x.scalar_type()), " on cpu like the input, got ",
        describe(t));
}

// The input (M * N, C, ...) and the sources (M, C).
void check_input(const at::Tensor &x, const at::Tensor &src) {
  bool ok = x.device().is_cpu() &&
            (x.scalar_type() == at::kFloat ||
             x.scalar_type() == at::kDouble) &&
            x.dim() >= 2 && src.dim() == 2 && src.device().is_cpu() &&
            src.scalar_type() == at::kLong && src.size(0) >= 1 &&
            src.size(0) <= kMaxStreams && x.size(1) == src.size(1) &&
            x.size(0) % src.size(0) == 0;
  TORCH_CHECK_VALUE(ok,
                    "cen_mm row kernels: expected a CPU float32/float64 "
                    "input (M * N, C, ...) and int64 sources (M, C) with "
                    "M <= 64; got input ",
                    describe(x), ", sources ", describe(src));
}

// Norm + one-source exchange (see stream_rows.c). Inputs: x, the sources,
// frozen statistics (mean, 1 / sqrt(var + eps), (M, C)) or undefined
// tensors for input statistics per (stream, channel) or, with per_sample,
// per (stream, sample, channel), and the M weights then M biases. Outputs:
// out, and for input statistics the mean and the biased variance (not
// differentiable).
struct StreamRows : public torch::autograd::Function<StreamRows> {
  static variable_list forward(AutogradContext *ctx, const at::Tensor &input,
                               const at::Tensor &src_in,
                               const std::optional<at::Tensor> &frozen_mean,
                               const std::optional<at::Tensor> &frozen_invstd,
                               double eps,
                               bool per_sample, at::TensorList params_in) {
    at::Tensor x = input.contiguous(), src = src_in.contiguous();
    int64_t M = src.size(0), C = src.size(1), N = x.size(0) / M;
    int64_t L = C && x.size(0) ? x.numel() / (x.size(0) * C) : 0;
    at::Tensor out = at::empty_like(x, at::MemoryFormat::Contiguous);
    variable_list params(params_in.size());
    for (size_t i = 0; i < params.size(); ++i)
      params[i] = params_in[i].contiguous();
    int threads = at::get_num_threads();
    int mode = frozen_mean.has_value() ? 0 : per_sample ? 2 : 1;
    at::Tensor mean, invstd, var;
    if (mode == 0) mean = *frozen_mean, invstd = *frozen_invstd;
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "cen_mm_stream_rows", [&] {
      std::vector<const scalar_t *> p(params.size());
      for (size_t i = 0; i < params.size(); ++i)
        p[i] = params[i].data_ptr<scalar_t>();
      if (mode == 0) {
        Kernels<scalar_t>::forward(
            x.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), p.data(),
            mean.data_ptr<scalar_t>(), invstd.data_ptr<scalar_t>(),
            src.data_ptr<int64_t>(), M, N, C, L, threads);
        return;
      }
      std::vector<int64_t> stats = per_sample
                                       ? std::vector<int64_t>{3, M, N, C}
                                       : std::vector<int64_t>{3, M, C};
      auto moments = at::empty(stats, x.options()).unbind(0);
      mean = moments[0], var = moments[1], invstd = moments[2];
      Kernels<scalar_t>::batch_forward(
          x.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), p.data(),
          mean.data_ptr<scalar_t>(), var.data_ptr<scalar_t>(),
          invstd.data_ptr<scalar_t>(), src.data_ptr<int64_t>(), M, N, C, L,
          eps, per_sample, threads);
    });
    ctx->saved_data["mode"] = static_cast<int64_t>(mode);
    variable_list saved{x, src, mean, invstd};
    saved.insert(saved.end(), params.begin(), params.begin() + M);
    ctx->save_for_backward(saved);
    if (mode == 0) return {out};
    ctx->mark_non_differentiable({mean, var});
    return {out, mean, var};
  }

  static variable_list backward(AutogradContext *ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &src = saved[1], &mean = saved[2],
                     &invstd = saved[3];
    at::Tensor g = grads[0].defined() ? grads[0].contiguous()
                                      : at::zeros_like(x);
    int64_t M = src.size(0), C = src.size(1), N = x.size(0) / M;
    int64_t L = C && x.size(0) ? x.numel() / (x.size(0) * C) : 0;
    int mode = static_cast<int>(ctx->saved_data["mode"].toInt());
    // edges: x, src, (frozen: mean, invstd), the M weights, the M biases
    int64_t first = mode == 0 ? 4 : 2;
    bool need_x = ctx->needs_input_grad(0), need_w = false, need_b = false;
    for (int64_t m = 0; m < M; ++m) {
      need_w = need_w || ctx->needs_input_grad(first + m);
      need_b = need_b || ctx->needs_input_grad(first + M + m);
    }
    at::Tensor gx = need_x ? at::empty_like(x) : at::Tensor();
    at::Tensor gw = need_w ? at::empty({M, C}, x.options()) : at::Tensor();
    at::Tensor gb = need_b ? at::empty({M, C}, x.options()) : at::Tensor();
    int failed = 0;
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "cen_mm_stream_rows", [&] {
      std::vector<const scalar_t *> gamma(M);
      for (int64_t m = 0; m < M; ++m)
        gamma[m] = saved[4 + m].data_ptr<scalar_t>();
      failed = Kernels<scalar_t>::backward(
          g.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(), gamma.data(),
          mean.data_ptr<scalar_t>(), invstd.data_ptr<scalar_t>(),
          src.data_ptr<int64_t>(),
          need_x ? gx.data_ptr<scalar_t>() : nullptr,
          need_w ? gw.data_ptr<scalar_t>() : nullptr,
          need_b ? gb.data_ptr<scalar_t>() : nullptr, M, N, C, L, mode,
          at::get_num_threads());
    });
    TORCH_CHECK(!failed, "cen_mm row kernels: cannot allocate the "
                "backward's scratch sums (", 2 * M * C, " doubles)");
    // x, src, mean, invstd, eps, per_sample, then one per parameter
    variable_list out{gx, at::Tensor(), at::Tensor(), at::Tensor(),
                      at::Tensor(), at::Tensor()};
    for (int64_t m = 0; m < M; ++m)
      out.push_back(need_w ? gw[m] : at::Tensor());
    for (int64_t m = 0; m < M; ++m)
      out.push_back(need_b ? gb[m] : at::Tensor());
    return out;
  }
};

variable_list apply_rows(const at::Tensor &x, const at::Tensor &src,
                         const std::vector<at::Tensor> &weight,
                         const std::vector<at::Tensor> &bias,
                         const std::optional<at::Tensor> &mean,
                         const std::optional<at::Tensor> &invstd,
                         double eps, bool per_sample) {
  check_input(x, src);
  int64_t M = src.size(0), C = src.size(1);
  check_streams(weight, x, M, C, "weight");
  check_streams(bias, x, M, C, "bias");
  variable_list params(weight);
  params.insert(params.end(), bias.begin(), bias.end());
  return StreamRows::apply(x, src, mean, invstd, eps, per_sample,
                           at::TensorList(params));
}

// Frozen statistics: out = (x[s] - mean[s]) / sqrt(var[s] + eps) * w[s] +
// b[s] with s = src[m, c] (zero where s < 0), from the streams' running
// statistics.
at::Tensor frozen_rows(const at::Tensor &x, const at::Tensor &src,
                       const std::vector<at::Tensor> &weight,
                       const std::vector<at::Tensor> &bias,
                       const std::vector<at::Tensor> &running_mean,
                       const std::vector<at::Tensor> &running_var,
                       double eps) {
  check_input(x, src);
  int64_t M = src.size(0), C = src.size(1);
  check_streams(running_mean, x, M, C, "running mean");
  check_streams(running_var, x, M, C, "running variance");
  // (mean, 1 / sqrt(var + eps)) per (stream, channel), computed as torch's
  // frozen batch norm does (in the statistics' type)
  at::Tensor moments = at::empty({2, M, C}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "cen_mm_frozen_moments", [&] {
    scalar_t *mean = moments.data_ptr<scalar_t>(), *invstd = mean + M * C;
    for (int64_t m = 0; m < M; ++m) {
      at::Tensor mu = running_mean[m].contiguous();
      at::Tensor var = running_var[m].contiguous();
      const scalar_t *mp = mu.data_ptr<scalar_t>(),
                     *vp = var.data_ptr<scalar_t>();
      for (int64_t c = 0; c < C; ++c) {
        mean[m * C + c] = mp[c];
        invstd[m * C + c] = static_cast<scalar_t>(1) /
                            std::sqrt(vp[c] + static_cast<scalar_t>(eps));
      }
    }
  });
  return apply_rows(x, src, weight, bias, moments[0], moments[1], eps,
                    false)[0];
}

// Input statistics (batch or, with per_sample, instance): returns out, the
// mean and the biased variance, (M, C) or (M, N, C).
std::vector<at::Tensor> input_rows(const at::Tensor &x, const at::Tensor &src,
                                   const std::vector<at::Tensor> &weight,
                                   const std::vector<at::Tensor> &bias,
                                   double eps, bool per_sample) {
  return apply_rows(x, src, weight, bias, std::nullopt, std::nullopt, eps,
                    per_sample);
}

// Inference only: out[o, :, c] = x[src[o, c], :, c] * a[o, c] + b[o, c]
// (b where src < 0) on the (M, N, C, L) view; a and b are (M, C).
at::Tensor affine_rows(const at::Tensor &input, const at::Tensor &src_in,
                       const at::Tensor &a_in, const at::Tensor &b_in) {
  check_input(input, src_in);
  int64_t M = src_in.size(0), C = src_in.size(1);
  for (const at::Tensor *t : {&a_in, &b_in})
    TORCH_CHECK_VALUE(t->device().is_cpu() &&
                          t->scalar_type() == input.scalar_type() &&
                          t->dim() == 2 && t->size(0) == M && t->size(1) == C,
                      "cen_mm row kernels: expected coefficients (", M, ", ",
                      C, ") of the input's dtype on cpu, got ",
                      describe(*t));
  TORCH_CHECK_VALUE(!at::GradMode::is_enabled() ||
                        !(input.requires_grad() || a_in.requires_grad() ||
                          b_in.requires_grad()),
                    "cen_mm row kernels: affine_rows is inference only "
                    "(no gradient); call it under torch.no_grad()");
  at::Tensor x = input.contiguous(), src = src_in.contiguous();
  at::Tensor a = a_in.contiguous(), b = b_in.contiguous();
  int64_t N = x.size(0) / M;
  int64_t L = C && x.size(0) ? x.numel() / (x.size(0) * C) : 0;
  at::Tensor out = at::empty_like(x, at::MemoryFormat::Contiguous);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "cen_mm_affine_rows", [&] {
    Kernels<scalar_t>::affine(
        x.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(),
        a.data_ptr<scalar_t>(), b.data_ptr<scalar_t>(),
        src.data_ptr<int64_t>(), M, N, C, L, at::get_num_threads());
  });
  return out;
}

// The threshold rule's source streams (M, C), or None where a replaced
// output would take the mean of several streams (M > 2).
c10::optional<at::Tensor> threshold_sources(
    const std::vector<at::Tensor> &weight, double threshold, bool discard,
    const c10::optional<at::Tensor> &parts) {
  TORCH_CHECK_VALUE(!weight.empty() &&
                        static_cast<int64_t>(weight.size()) <= kMaxStreams,
                    "cen_mm row kernels: expected 1 to 64 weights, got ",
                    weight.size());
  const at::Tensor &first = weight[0];
  TORCH_CHECK_VALUE(first.scalar_type() == at::kFloat ||
                        first.scalar_type() == at::kDouble,
                    "cen_mm row kernels: expected float32/float64 weights, "
                    "got ", describe(first));
  int64_t M = weight.size(), C = first.numel();
  check_streams(weight, first, M, C, "weight");
  at::Tensor mask;
  if (parts.has_value()) {
    mask = parts->contiguous();
    TORCH_CHECK_VALUE(mask.device().is_cpu() &&
                          mask.scalar_type() == at::kBool &&
                          mask.dim() == 2 && mask.size(0) == M &&
                          mask.size(1) == C,
                      "cen_mm row kernels: expected bool parts (", M, ", ",
                      C, ") on cpu, got ", describe(mask));
  }
  at::Tensor src = at::empty({M, C}, at::TensorOptions().dtype(at::kLong));
  int mixed = 0;
  AT_DISPATCH_FLOATING_TYPES(first.scalar_type(), "cen_mm_sources", [&] {
    std::vector<const scalar_t *> gamma(M);
    std::vector<at::Tensor> kept(M);
    for (int64_t m = 0; m < M; ++m) {
      kept[m] = weight[m].contiguous();
      gamma[m] = kept[m].data_ptr<scalar_t>();
    }
    mixed = Kernels<scalar_t>::sources(
        gamma.data(),
        mask.defined() ? reinterpret_cast<const uint8_t *>(
                             mask.data_ptr<bool>())
                       : nullptr,
        M, C, threshold, discard, src.data_ptr<int64_t>());
  });
  if (mixed) return c10::nullopt;
  return src;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("frozen_rows", &frozen_rows);
  m.def("input_rows", &input_rows);
  m.def("threshold_sources", &threshold_sources);
  m.def("affine_rows", &affine_rows);
}
