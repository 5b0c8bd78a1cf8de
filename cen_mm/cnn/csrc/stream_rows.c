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
#include <stdlib.h>
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

/* o = in * a + b over a row of L values; b alone where in is NULL. */
static void NAME(scale_row)(const T *in, T *o, T a, T b, int64_t L) {
  if (!in) {
    for (int64_t l = 0; l < L; ++l) o[l] = b;
    return;
  }
#pragma omp simd
  for (int64_t l = 0; l < L; ++l) o[l] = in[l] * a + b;
}

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
      if (s < 0) { /* zeroed */
        NAME(scale_row)(0, o, 0, 0, L);
        continue;
      }
      int64_t stat = per_sample ? (s * N + n) * C + c : s * C + c;
      T a = gamma[s][c] * invstd[stat];
      NAME(scale_row)(x + ((s * N + n) * C + c) * L, o, a,
                      beta[s][c] - mean[stat] * a, L);
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

/* A per-output affine map of one source row (a deployed exchanging norm):
 * out row (o, n, c) = x row (s, n, c) * a[o, c] + b[o, c] with
 * s = src[o * C + c]; b alone where s < 0. */
void NAME(cen_rows_affine)(const T *x, T *out, const T *a, const T *b,
                           const int64_t *src, int64_t M, int64_t N,
                           int64_t C, int64_t L, int nthreads) {
#pragma omp parallel for num_threads(nthreads) schedule(static)
  for (int64_t mn = 0; mn < M * N; ++mn) {
    int64_t o = mn / N, n = mn % N;
    T *row = out + mn * C * L;
    for (int64_t c = 0; c < C; ++c, row += L) {
      int64_t s = src[o * C + c];
      NAME(scale_row)(s < 0 ? 0 : x + ((s * N + n) * C + c) * L, row,
                      a[o * C + c], b[o * C + c], L);
    }
  }
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

/* The k rows (m, n, c) that read source row (s, n, c), into rows. */
static int NAME(readers)(const T *g, const int64_t *src, int64_t s,
                         int64_t n, int64_t c, int64_t M, int64_t N,
                         int64_t C, int64_t L, const T **rows) {
  int k = 0;
  for (int64_t m = 0; m < M; ++m)
    if (src[m * C + c] == s) rows[k++] = g + ((m * N + n) * C + c) * L;
  return k;
}

/* Backward. For each source row group (s, c) (frozen or batch statistics)
 * or row (s, n, c) (instance statistics), with g_s the summed gradient of
 * the rows that read it and xh = (x - mean) * invstd:
 *   grad_gamma = sum g_s * xh,  grad_beta = sum g_s,
 *   grad_x = gamma * invstd * g_s                     (frozen statistics),
 *   grad_x = gamma * invstd * (g_s - mean(g_s) - xh * mean(g_s * xh))
 *                                                     (input statistics),
 * and zero where no row reads it. gx, gw, gb may be NULL (not needed).
 * mode: 0 frozen, 1 batch, 2 instance statistics. Returns 1 (nothing
 * written) where the scratch sums cannot be allocated, else 0.
 * Thread t owns channels [C t / nthreads, C (t + 1) / nthreads) (race-free
 * sums) and sweeps them in memory order, (s, n) block by block: one pass
 * (two for batch statistics), each streaming, as torch's batch norm does;
 * a channel-major order jumps C * L values between rows and is several
 * times slower on maps that are not in cache. */
int NAME(cen_rows_backward)(const T *g, const T *x, const T *const *gamma,
                             const T *mean, const T *invstd,
                             const int64_t *src, T *gx, T *gw, T *gb,
                             int64_t M, int64_t N, int64_t C, int64_t L,
                             int mode, int nthreads) {
  /* sum g_s and sum g_s * (x - mu) per (s, c); per (s, n, c) for instance
   * statistics, whose grad_x needs each row's own sums */
  double *sums = (double *)calloc((size_t)(2 * M * C), sizeof(double));
  if (!sums) return 1;
  double *sum_b = sums, *sum_w = sums + M * C;
  if (nthreads < 1) nthreads = 1;
#pragma omp parallel for num_threads(nthreads) schedule(static)
  for (int t = 0; t < nthreads; ++t) {
    int64_t c0 = C * t / nthreads, c1 = C * (t + 1) / nthreads;
    const T *rows[64];
    for (int64_t s = 0; s < M; ++s)
      for (int64_t n = 0; n < N; ++n)
        for (int64_t c = c0; c < c1; ++c) {
          int64_t off = ((s * N + n) * C + c) * L;
          int64_t stat = mode == 2 ? (s * N + n) * C + c : s * C + c;
          T *o = gx ? gx + off : 0;
          int k = NAME(readers)(g, src, s, n, c, M, N, C, L, rows);
          if (k == 0) {
            if (o) memset(o, 0, L * sizeof(T));
            continue;
          }
          T is = invstd[stat], mu = mean[stat], a = gamma[s][c] * is;
          double b = 0, w = 0;
          NAME(reduce_row)(rows, k, x + off, mu, mode ? 0 : o, a, L, &b, &w);
          sum_b[s * C + c] += b;
          sum_w[s * C + c] += w * is;
          if (mode == 2 && o) /* the row's own statistics: finish it now */
            NAME(batch_row)(rows, k, x + off, mu, o, a, (T)(b / L),
                            (T)(w / L * is * is), L);
        }
    if (mode == 1 && gx) {
      double count = (double)(N * L);
      for (int64_t s = 0; s < M; ++s)
        for (int64_t n = 0; n < N; ++n)
          for (int64_t c = c0; c < c1; ++c) {
            int k = NAME(readers)(g, src, s, n, c, M, N, C, L, rows);
            if (k == 0) continue; /* zeroed in the first sweep */
            int64_t off = ((s * N + n) * C + c) * L;
            T is = invstd[s * C + c], mu = mean[s * C + c];
            NAME(batch_row)(rows, k, x + off, mu, gx + off,
                            gamma[s][c] * is, (T)(sum_b[s * C + c] / count),
                            (T)(sum_w[s * C + c] / count * is), L);
          }
    }
  }
  for (int64_t i = 0; i < M * C; ++i) {
    if (gw) gw[i] = (T)sum_w[i];
    if (gb) gb[i] = (T)sum_b[i];
  }
  free(sums);
  return 0;
}

/* The one source stream of every output (stream, channel) of the threshold
 * rule (Eq. 4) into src (M, C): m itself where |gamma[m][c]| >= threshold
 * or, with `parts` (M, C), outside stream m's own part; else the other
 * stream (M = 2) or -1 (discard). The comparison is in T, as torch compares
 * a T tensor with a Python float. Returns 1 where a replaced output would
 * mix several streams (M > 2, not discard): src is then incomplete. */
int NAME(cen_threshold_sources)(const T *const *gamma, const uint8_t *parts,
                                int64_t M, int64_t C, double threshold,
                                int discard, int64_t *src) {
  const T theta = (T)threshold;
  for (int64_t m = 0; m < M; ++m)
    for (int64_t c = 0; c < C; ++c) {
      T g = gamma[m][c];
      int replaced = (g < 0 ? -g : g) < theta && (!parts || parts[m * C + c]);
      if (!replaced) {
        src[m * C + c] = m;
      } else if (discard) {
        src[m * C + c] = -1;
      } else if (M == 2) {
        src[m * C + c] = 1 - m;
      } else {
        return 1;
      }
    }
  return 0;
}

#endif
