/* median.h - the median the bench programs report (sorts v in place). */
#ifndef VM_BENCH_MEDIAN_H
#define VM_BENCH_MEDIAN_H

#include <stdlib.h>

static int bench_cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static inline double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, bench_cmpd);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

#endif
