/* The ABX kernels in C: a second implementation of speechunits/eval/abx/kernels.py.
 *
 * Same algorithm, same loops, same order of every sum (see kernels.py for the DTW
 * definition, the tie priority and the frame-distance layout); compiled on first use
 * by speechunits/eval/abx/native/__init__.py with the system C compiler and OpenMP,
 * and loaded through ctypes, so that `speechunits abx` starts without numba.
 *
 * Arrays are C-contiguous numpy arrays: float64 as double, int64 as int64_t, bool as
 * uint8_t. FT is (D, F): feature d of frame f at FT[d * F + f].
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

enum { ANGULAR = 0, EUCLIDEAN = 1, KL_SYMMETRIC = 2, DISCRETE = 3 };

/* rational approximation of asin(s) = s + s * z * P(z) / Q(z), z = s^2, on [0, 1/2] (fdlibm) */
static const double P0 = 1.66666666666666657415e-01, P1 = -3.25565818622400915405e-01,
                    P2 = 2.01212532134862925881e-01, P3 = -4.00555345006794114027e-02,
                    P4 = 7.91534994289814532176e-04, P5 = 3.47933107596021167570e-05;
static const double Q1 = -2.40339491173441421878e00, Q2 = 2.02094576023350569471e00,
                    Q3 = -6.88283971605453293030e-01, Q4 = 7.70381505559019352791e-02;
static const double PI_ = 3.14159265358979311600e+00, HALF_PI = 1.57079632679489655800e+00;
static const double INV_PI = 0.31830988618379069122;

static inline double acos_over_pi(double x) {
    double t = fabs(x);
    int small = t <= 0.5;
    double z_large = (1.0 - t) * 0.5;
    double z = small ? x * x : z_large;
    double s = small ? t : sqrt(z_large);
    double p = z * (P0 + z * (P1 + z * (P2 + z * (P3 + z * (P4 + z * P5)))));
    double q = 1.0 + z * (Q1 + z * (Q2 + z * (Q3 + z * Q4)));
    double r = s + s * (p / q);
    double a = HALF_PI - (x >= 0 ? r : -r);
    double b = x > 0 ? 2.0 * r : PI_ - 2.0 * r;
    return (small ? a : b) * INV_PI;
}

void su_acos_over_pi_array(const double *x, double *out, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = acos_over_pi(x[i]);
}

/* ra[:C] (and rb[:C] when two, for row i + 1) += sum_d x_d * f_d, or (x_d - f_d)^2 */
static void dot_rows(const double *X, int64_t D, int64_t i, const double *FT, int64_t F, int64_t c0, int64_t C,
                     double *restrict ra, double *restrict rb, int two, int squared) {
    int64_t D4 = D - D % 4;
    const double *xa = X + i * D, *xb = X + (i + 1) * D;
    for (int64_t d = 0; d < D4; d += 4) {
        const double *f0 = FT + d * F + c0, *f1 = f0 + F, *f2 = f1 + F, *f3 = f2 + F;
        double x0 = xa[d], x1 = xa[d + 1], x2 = xa[d + 2], x3 = xa[d + 3];
        if (two) {
            double y0 = xb[d], y1 = xb[d + 1], y2 = xb[d + 2], y3 = xb[d + 3];
            if (squared) {
                for (int64_t j = 0; j < C; j++) {
                    double a0 = f0[j], a1 = f1[j], a2 = f2[j], a3 = f3[j];
                    double e0 = x0 - a0, e1 = x1 - a1, e2 = x2 - a2, e3 = x3 - a3;
                    ra[j] += (e0 * e0 + e1 * e1) + (e2 * e2 + e3 * e3);
                    e0 = y0 - a0; e1 = y1 - a1; e2 = y2 - a2; e3 = y3 - a3;
                    rb[j] += (e0 * e0 + e1 * e1) + (e2 * e2 + e3 * e3);
                }
            } else {
                for (int64_t j = 0; j < C; j++) {
                    double a0 = f0[j], a1 = f1[j], a2 = f2[j], a3 = f3[j];
                    ra[j] += (x0 * a0 + x1 * a1) + (x2 * a2 + x3 * a3);
                    rb[j] += (y0 * a0 + y1 * a1) + (y2 * a2 + y3 * a3);
                }
            }
        } else if (squared) {
            for (int64_t j = 0; j < C; j++) {
                double e0 = x0 - f0[j], e1 = x1 - f1[j], e2 = x2 - f2[j], e3 = x3 - f3[j];
                ra[j] += (e0 * e0 + e1 * e1) + (e2 * e2 + e3 * e3);
            }
        } else {
            for (int64_t j = 0; j < C; j++) ra[j] += (x0 * f0[j] + x1 * f1[j]) + (x2 * f2[j] + x3 * f3[j]);
        }
    }
    for (int64_t d = D4; d < D; d++) {
        const double *f0 = FT + d * F + c0;
        double x0 = xa[d], y0 = two ? xb[d] : 0.0;
        for (int64_t j = 0; j < C; j++) {
            if (squared) {
                double e0 = x0 - f0[j];
                ra[j] += e0 * e0;
                if (two) { e0 = y0 - f0[j]; rb[j] += e0 * e0; }
            } else {
                ra[j] += x0 * f0[j];
                if (two) rb[j] += y0 * f0[j];
            }
        }
    }
}

/* dot products -> arccos(cos) / pi */
static void finish_angular(double *row, int64_t C, double ia, const double *inv_b, uint8_t za, const uint8_t *zb,
                           int has_zero) {
    for (int64_t j = 0; j < C; j++) {
        double v = row[j] * ia * inv_b[j];
        v = fmin(1.0, fmax(-1.0, v));
        row[j] = acos_over_pi(v);
    }
    if (has_zero)
        for (int64_t j = 0; j < C; j++)
            if (za || zb[j]) row[j] = (za && zb[j]) ? 0.0 : 1.0;
}

/* dist[i * cmax + j] = d(frame i of X, frame c0 + j of FT) for i < na, j < C */
static void chunk_distances(int kind, const double *X, const double *LX, int64_t na, int64_t D, const double *FT,
                            const double *LT, int64_t F, int64_t c0, int64_t C, double *dist, int64_t cmax,
                            const double *inv_a, const double *inv, const uint8_t *zero_a, const uint8_t *zero,
                            int has_zero, double konst) {
    for (int64_t i = 0; i < na; i++)
        for (int64_t j = 0; j < C; j++) dist[i * cmax + j] = 0.0;
    if (kind == ANGULAR || kind == EUCLIDEAN) {
        int squared = kind == EUCLIDEAN;
        for (int64_t i = 0; i + 1 < na; i += 2)
            dot_rows(X, D, i, FT, F, c0, C, dist + i * cmax, dist + (i + 1) * cmax, 1, squared);
        if (na % 2)
            dot_rows(X, D, na - 1, FT, F, c0, C, dist + (na - 1) * cmax, dist + (na - 1) * cmax, 0, squared);
        if (kind == ANGULAR) {
            for (int64_t i = 0; i < na; i++)
                finish_angular(dist + i * cmax, C, inv_a[i], inv + c0, zero_a[i], zero + c0, has_zero);
        } else {
            for (int64_t i = 0; i < na; i++)
                for (int64_t j = 0; j < C; j++) dist[i * cmax + j] = sqrt(dist[i * cmax + j]);
        }
    } else if (kind == DISCRETE) {
        const double *f0 = FT + c0;
        for (int64_t i = 0; i < na; i++) {
            double u = X[i * D];
            for (int64_t j = 0; j < C; j++) dist[i * cmax + j] = f0[j] != u ? konst : 0.0;
        }
    } else { /* KL_SYMMETRIC: 1/2 sum_d (p_d - q_d) (log(p_d + eps) - log(q_d + eps)) */
        for (int64_t i = 0; i < na; i++) {
            double *row = dist + i * cmax;
            for (int64_t d = 0; d < D; d++) {
                double x0 = X[i * D + d], l0 = LX[i * D + d];
                const double *f0 = FT + d * F + c0, *g0 = LT + d * F + c0;
                for (int64_t j = 0; j < C; j++) row[j] += (x0 - f0[j]) * (l0 - g0[j]);
            }
            for (int64_t j = 0; j < C; j++) row[j] = 0.5 * row[j];
        }
    }
}

/* normalised DTW of the R x S matrix flat[base + i * si + j * sj] (kernels.py: _dtw) */
static double dtw(const double *flat, int64_t base, int64_t si, int64_t sj, int64_t R, int64_t S, double *cost,
                  int64_t *length) {
    double acc = 0.0;
    for (int64_t j = 0; j < S; j++) {
        acc += flat[base + j * sj];
        cost[j] = acc;
        length[j] = j + 1;
    }
    for (int64_t i = 1; i < R; i++) {
        int64_t b = base + i * si;
        double diag = cost[0];
        int64_t diag_len = length[0];
        double left = diag + flat[b];
        int64_t left_len = i + 1;
        cost[0] = left;
        length[0] = left_len;
        for (int64_t j = 1; j < S; j++) {
            double up = cost[j];
            int64_t up_len = length[j];
            int use_left = left <= up;
            double side = use_left ? left : up;
            int64_t side_len = use_left ? left_len : up_len;
            int use_diag = diag <= side;
            double best = use_diag ? diag : side;
            int64_t best_len = use_diag ? diag_len : side_len;
            left = best + flat[b + j * sj];
            left_len = best_len + 1;
            cost[j] = left;
            length[j] = left_len;
            diag = up;
            diag_len = up_len;
        }
    }
    return cost[S - 1] / (double)length[S - 1];
}

/* DTW distances for blocks of token pairs (kernels.py: block_dtw). Returns 0, or -1
 * when a thread could not allocate its buffers. */
int su_block_dtw(int kind, const double *FT, const double *LT, int64_t D, int64_t F, const double *inv,
                 const uint8_t *zero, int has_zero, double konst, const int64_t *tok_start, const int64_t *tok_len,
                 const int64_t *tok_rank, int64_t n_tok, const int64_t *grp_lo, const int64_t *blk_g1,
                 const int64_t *blk_g2, const int64_t *blk_off, const int64_t *order, int64_t n_order, int64_t cmax,
                 double *out, int threads) {
    int64_t maxlen = 0;
    for (int64_t t = 0; t < n_tok; t++) maxlen = tok_len[t] > maxlen ? tok_len[t] : maxlen;
    if (maxlen < 1) maxlen = 1;
    int failed = 0;
#pragma omp parallel num_threads(threads > 0 ? threads : 1) reduction(| : failed)
    {
        int64_t kl_dim = kind == KL_SYMMETRIC ? D : 0;
        double *X = malloc(sizeof(double) * maxlen * (D > 0 ? D : 1));
        double *LX = malloc(sizeof(double) * maxlen * (kl_dim > 0 ? kl_dim : 1));
        double *inv_a = malloc(sizeof(double) * maxlen);
        uint8_t *zero_a = malloc(maxlen);
        double *dist = malloc(sizeof(double) * maxlen * cmax);
        double *cost = malloc(sizeof(double) * maxlen);
        int64_t *length = malloc(sizeof(int64_t) * maxlen);
        int ok = X && LX && inv_a && zero_a && dist && cost && length;
        if (!ok) failed = 1;
#pragma omp for schedule(dynamic, 1)
        for (int64_t n = 0; n < n_order; n++) {
            if (!ok) continue;
            int64_t k = order[n];
            int64_t g1 = blk_g1[k], g2 = blk_g2[k];
            int64_t lo1 = grp_lo[g1], hi1 = grp_lo[g1 + 1], lo2 = grp_lo[g2], hi2 = grp_lo[g2 + 1];
            int64_t n2 = hi2 - lo2;
            int same = g1 == g2;
            if (same)
                for (int64_t a = lo1; a < hi1; a++) out[blk_off[k] + (a - lo1) * (n2 + 1)] = INFINITY;
            int64_t b = lo2;
            while (b < hi2) {
                int64_t stop = b + 1;
                while (stop < hi2 && tok_start[stop] + tok_len[stop] - tok_start[b] <= cmax) stop++;
                for (int64_t a = lo1; a < hi1; a++) {
                    int64_t first = same ? (b > a + 1 ? b : a + 1) : b;
                    if (first >= stop) continue;
                    int64_t sa = tok_start[a], na = tok_len[a];
                    for (int64_t i = 0; i < na; i++) {
                        for (int64_t d = 0; d < D; d++) {
                            X[i * D + d] = FT[d * F + sa + i];
                            if (kind == KL_SYMMETRIC) LX[i * D + d] = LT[d * F + sa + i];
                        }
                        if (kind == ANGULAR) {
                            inv_a[i] = inv[sa + i];
                            zero_a[i] = zero[sa + i];
                        }
                    }
                    int64_t c0 = tok_start[first];
                    int64_t C = tok_start[stop - 1] + tok_len[stop - 1] - c0;
                    chunk_distances(kind, X, LX, na, D, FT, LT, F, c0, C, dist, cmax, inv_a, inv, zero_a, zero,
                                    has_zero, konst);
                    int64_t row_base = blk_off[k] + (a - lo1) * n2;
                    for (int64_t q = first; q < stop; q++) {
                        int64_t off = tok_start[q] - c0, nb = tok_len[q];
                        double value = tok_rank[a] < tok_rank[q] ? dtw(dist, off, cmax, 1, na, nb, cost, length)
                                                                 : dtw(dist, off, 1, cmax, nb, na, cost, length);
                        out[row_base + q - lo2] = value;
                        if (same) out[blk_off[k] + (q - lo2) * n2 + a - lo1] = value;
                    }
                }
                b = stop;
            }
        }
        free(X); free(LX); free(inv_a); free(zero_a); free(dist); free(cost); free(length);
    }
    return failed ? -1 : 0;
}

/* per cell: correct[c] = #(d(A, X) < d(B, X)) + #ties / 2, total[c] = #triplets (kernels.py: score_cells) */
int su_score_cells(const double *dist, const int64_t *grp_size, const int64_t *ga, const int64_t *gb,
                   const int64_t *gx, const int64_t *xa_off, const int64_t *xa_rs, const int64_t *xa_cs,
                   const int64_t *xb_off, const int64_t *xb_rs, const int64_t *xb_cs, int within,
                   const int64_t *order, int64_t n_order, int64_t max_group, double *correct, int64_t *total,
                   int threads) {
    int failed = 0;
#pragma omp parallel num_threads(threads > 0 ? threads : 1) reduction(| : failed)
    {
        double *db = malloc(sizeof(double) * (max_group > 0 ? max_group : 1));
        if (!db) failed = 1;
#pragma omp for schedule(dynamic, 16)
        for (int64_t n = 0; n < n_order; n++) {
            if (!db) continue;
            int64_t c = order[n];
            int64_t na = grp_size[ga[c]], nb = grp_size[gb[c]], nx = grp_size[gx[c]];
            double good = 0.0;
            for (int64_t x = 0; x < nx; x++) {
                int64_t base = xb_off[c] + x * xb_rs[c];
                for (int64_t b = 0; b < nb; b++) db[b] = dist[base + b * xb_cs[c]];
                base = xa_off[c] + x * xa_rs[c];
                for (int64_t a = 0; a < na; a++) {
                    if (within && a == x) continue;
                    double da = dist[base + a * xa_cs[c]];
                    int64_t right = 0, tie = 0;
                    for (int64_t b = 0; b < nb; b++) {
                        right += db[b] > da;
                        tie += db[b] == da;
                    }
                    good += (double)right + 0.5 * (double)tie;
                }
            }
            correct[c] = good;
            total[c] = (within ? na * (na - 1) : na * nx) * nb;
        }
        free(db);
    }
    return failed ? -1 : 0;
}

int su_max_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}
