/* topk.c - classification postprocessing: softmax and top-k, shared by
 * classify, eval and run (and any user of the library). */
#include <math.h>

#include "vmamba.h"

void vm_softmax(const float *logits, int n, double *probs) {
    if (n <= 0) return;
    /* max-subtracted and in double: exp never overflows */
    float mx = logits[0];
    for (int k = 1; k < n; k++) mx = logits[k] > mx ? logits[k] : mx;
    double sum = 0;
    for (int k = 0; k < n; k++) sum += exp((double)logits[k] - mx);
    for (int k = 0; k < n; k++) probs[k] = exp((double)logits[k] - mx) / sum;
}

/* Selection by repeated scans (k is small, <= 64 in the CLI): O(n k),
 * with no allocation. "a before b" = larger, or equal with a lower index. */
int vm_topk(const float *v, int n, int k, int *idx) {
    if (n <= 0 || k <= 0) return 0;
    if (k > n) k = n;
    for (int j = 0; j < k; j++) {
        int b = -1;
        for (int i = 0; i < n; i++) {
            /* i must come after idx[j-1] in the order, and before b */
            if (j > 0) {
                int p = idx[j - 1];
                if (!(v[i] < v[p] || (v[i] == v[p] && i > p))) continue;
            }
            if (b < 0 || v[i] > v[b]) b = i;
        }
        if (b < 0) return j; /* only NaNs left */
        idx[j] = b;
    }
    return k;
}
