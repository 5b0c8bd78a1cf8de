/* Copyright (c) cen_mm contributors. All rights reserved.
 *
 * CPU kernels of the exchanging norms (see cen_mm/cnn/row_kernel.py,
 * which builds and calls them, and ExchangeNorm.reference_forward, which
 * defines what they compute).
 *
 * A stream-folded batch (M, N, C, L) is a set of rows (m, n, c) of L values.
 * Output row (m, n, c) reads input row (s, n, c) of ONE source stream
 * s = src[m * C + c] (s = m: kept; s != m: exchanged; s < 0: zeroed) and
 * applies that stream's norm:
 *     out = (x - mean) * invstd * gamma[s][c] + beta[s][c],
 * with frozen (running) statistics of (s, c), the batch statistics of (s, c)
 * or the instance statistics of (s, n, c).
 * Plain C + OpenMP (torch's own runtime is the one loaded at run time);
 * this file includes itself once per floating type.
 */
#ifndef T
#include <math.h>
#include <stdint.h>
#include <string.h>

#define T float
#define NAME(name) name##_f32
#include "stream_rows.c"
#undef T
#undef NAME

#define T double
#define NAME(name) name##_f64
#include "stream_rows.c"
#undef T
#undef NAME

#else

/* out rows from their source rows (see the top of the file); statistics per
 * (stream, channel), or per (stream, sample, channel) with per_sample. */
static void NAME(affine_rows)(const T *x, T *out, const T *const *params,
                              const T *mean, const T *invstd,
                              const int64_t *src, int64_t M, int64_t N,
                              int64_t C, int64_t L, int per_sample,
                              int nthreads) {
  const T *const *gamma = params, *const *beta = params + M;
#pragma omp parallel for num_threads(nthreads) schedule(static)
  for (int64_t mn = 0; mn < M * N; ++mn) {
    int64_t m = mn / N, n = mn % N;
    T *o = out + mn * C * L;
    for (int64_t c = 0; c < C; ++c, o += L) {
      int64_t s = src[m * C + c];
      if (s < 0) {
        memset(o, 0, L * sizeof(T));
        continue;
      }
      const T *in = x + ((s * N + n) * C + c) * L;
      int64_t stat = per_sample ? (s * N + n) * C + c : s * C + c;
      T a = gamma[s][c] * invstd[stat];
      T b = beta[s][c] - mean[stat] * a;
#pragma omp simd
      for (int64_t l = 0; l < L; ++l) o[l] = in[l] * a + b;
    }
  }
}

/* Frozen statistics: params = M gammas then M betas, each (C,). */
void NAME(cen_rows_forward)(const T *x, T *out, const T *const *params,
                            const T *mean, const T *invstd,
                            const int64_t *src, int64_t M, int64_t N,
                            int64_t C, int64_t L, int nthreads) {
  NAME(affine_rows)(x, out, params, mean, invstd, src, M, N, C, L, 0,
                    nthreads);
}

/* Mean, biased variance and 1 / sqrt(var + eps) of the rows (s, n, c) for
 * n in [n0, n1) of one stream's channel (two passes), stored at `stat`. */
static void NAME(moments)(const T *x, int64_t s, int64_t n0, int64_t n1,
                          int64_t c, int64_t N, int64_t C, int64_t L,
                          double eps, T *mean, T *var, T *invstd,
                          int64_t stat) {
  double count = (double)((n1 - n0) * L), sum = 0, squares = 0;
  for (int64_t n = n0; n < n1; ++n) {
    const T *in = x + ((s * N + n) * C + c) * L;
    T part = 0;
#pragma omp simd reduction(+ : part)
    for (int64_t l = 0; l < L; ++l) part += in[l];
    sum += part;
  }
  T mu = (T)(sum / count);
  for (int64_t n = n0; n < n1; ++n) {
    const T *in = x + ((s * N + n) * C + c) * L;
    T part = 0;
#pragma omp simd reduction(+ : part)
    for (int64_t l = 0; l < L; ++l) part += (in[l] - mu) * (in[l] - mu);
    squares += part;
  }
  mean[stat] = mu;
  var[stat] = (T)(squares / count);
  invstd[stat] = (T)(1.0 / sqrt(squares / count + eps));
}

/* Input statistics, then the rows: per (stream, channel) over the stream's
 * N x L values (batch norm), or with per_sample per (stream, sample,
 * channel) over L values (instance norm). */
void NAME(cen_rows_batch_forward)(const T *x, T *out, const T *const *params,
                                  T *mean, T *var, T *invstd,
                                  const int64_t *src, int64_t M, int64_t N,
                                  int64_t C, int64_t L, double eps,
                                  int per_sample, int nthreads) {
#pragma omp parallel for num_threads(nthreads) schedule(static)
  for (int64_t c = 0; c < C; ++c)
    for (int64_t s = 0; s < M; ++s) {
      if (!per_sample) {
        NAME(moments)(x, s, 0, N, c, N, C, L, eps, mean, var, invstd,
                      s * C + c);
        continue;
      }
      for (int64_t n = 0; n < N; ++n)
        NAME(moments)(x, s, n, n + 1, c, N, C, L, eps, mean, var, invstd,
                      (s * N + n) * C + c);
    }
  NAME(affine_rows)(x, out, params, mean, invstd, src, M, N, C, L,
                    per_sample, nthreads);
}

/* The gradient of source row (s, n, c): the sum of its k readers' output
 * gradients g[j][l]. Pass 1 reduces sum(g) and sum(g * (x - mu)) and, when
 * `o` is given (frozen statistics), writes o = g * a on the way. */
static void NAME(reduce_row)(const T *const *g, int k, const T *in, T mu,
                             T *o, T a, int64_t L, double *sum_b,
                             double *sum_w) {
  T pb = 0, pw = 0;
  if (k == 1) {
#pragma omp simd reduction(+ : pb, pw)
    for (int64_t l = 0; l < L; ++l) {
      T v = g[0][l];
      if (o) o[l] = v * a;
      pb += v;
      pw += v * (in[l] - mu);
    }
  } else if (k == 2) {
#pragma omp simd reduction(+ : pb, pw)
    for (int64_t l = 0; l < L; ++l) {
      T v = g[0][l] + g[1][l];
      if (o) o[l] = v * a;
      pb += v;
      pw += v * (in[l] - mu);
    }
  } else {
    for (int64_t l = 0; l < L; ++l) {
      T v = 0;
      for (int j = 0; j < k; ++j) v += g[j][l];
      if (o) o[l] = v * a;
      pb += v;
      pw += v * (in[l] - mu);
    }
  }
  *sum_b += pb;
  *sum_w += pw;
}

/* Pass 2 of batch statistics: o = a * (g - k1 - (x - mu) * k2). */
static void NAME(batch_row)(const T *const *g, int k, const T *in, T mu,
                            T *o, T a, T k1, T k2, int64_t L) {
  if (k == 1) {
#pragma omp simd
    for (int64_t l = 0; l < L; ++l)
      o[l] = a * (g[0][l] - k1 - (in[l] - mu) * k2);
  } else if (k == 2) {
#pragma omp simd
    for (int64_t l = 0; l < L; ++l)
      o[l] = a * (g[0][l] + g[1][l] - k1 - (in[l] - mu) * k2);
  } else {
    for (int64_t l = 0; l < L; ++l) {
      T v = 0;
      for (int j = 0; j < k; ++j) v += g[j][l];
      o[l] = a * (v - k1 - (in[l] - mu) * k2);
    }
  }
}

/* Backward, one thread per channel (race-free). For each source row group
 * (s, c) (frozen or batch statistics) or row (s, n, c) (instance
 * statistics), with g_s the summed gradient of the rows that read it and
 * xh = (x - mean) * invstd:
 *   grad_gamma = sum g_s * xh,  grad_beta = sum g_s,
 *   grad_x = gamma * invstd * g_s                     (frozen statistics),
 *   grad_x = gamma * invstd * (g_s - mean(g_s) - xh * mean(g_s * xh))
 *                                                     (input statistics),
 * and zero where no row reads it. gx, gw, gb may be NULL (not needed).
 * mode: 0 frozen, 1 batch, 2 instance statistics. */
void NAME(cen_rows_backward)(const T *g, const T *x, const T *const *gamma,
                             const T *mean, const T *invstd,
                             const int64_t *src, T *gx, T *gw, T *gb,
                             int64_t M, int64_t N, int64_t C, int64_t L,
                             int mode, int nthreads) {
#pragma omp parallel for num_threads(nthreads) schedule(static)
  for (int64_t c = 0; c < C; ++c) {
    for (int64_t s = 0; s < M; ++s) {
      int64_t readers[64];
      const T *rows[64];
      int k = 0;
      for (int64_t m = 0; m < M; ++m)
        if (src[m * C + c] == s) readers[k++] = m;
      double grad_w = 0, grad_b = 0;
      /* groups of rows sharing statistics: all N (frozen, batch) or one */
      int64_t group = mode == 2 ? 1 : N;
      for (int64_t n0 = 0; n0 < N; n0 += group) {
        int64_t stat = mode == 2 ? (s * N + n0) * C + c : s * C + c;
        T is = invstd[stat], mu = mean[stat], a = gamma[s][c] * is;
        double sum_b = 0, sum_w = 0;
        for (int64_t n = n0; n < n0 + group; ++n) {
          int64_t off = ((s * N + n) * C + c) * L;
          T *o = gx ? gx + off : 0;
          if (k == 0) {
            if (o) memset(o, 0, L * sizeof(T));
            continue;
          }
          for (int j = 0; j < k; ++j)
            rows[j] = g + ((readers[j] * N + n) * C + c) * L;
          NAME(reduce_row)(rows, k, x + off, mu, mode ? 0 : o, a, L, &sum_b,
                           &sum_w);
        }
        grad_w += sum_w * is;
        grad_b += sum_b;
        if (!mode || !gx || k == 0) continue;
        double count = (double)(group * L);
        T k1 = (T)(sum_b / count), k2 = (T)(sum_w / count * is * is);
        for (int64_t n = n0; n < n0 + group; ++n) {
          int64_t off = ((s * N + n) * C + c) * L;
          for (int j = 0; j < k; ++j)
            rows[j] = g + ((readers[j] * N + n) * C + c) * L;
          NAME(batch_row)(rows, k, x + off, mu, gx + off, a, k1, k2, L);
        }
      }
      if (gw) gw[s * C + c] = (T)grad_w;
      if (gb) gb[s * C + c] = (T)grad_b;
    }
  }
}

#endif
