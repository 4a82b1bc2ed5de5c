/* selftest.c - a guest program with a known instruction stream, to check
 * the icount plugin (bench/icount/selftest.sh): run_one(n) executes
 * exactly 11 n + 1 instructions (the loop and ret; only
 * caller-saved registers, so no prologue): 2 FMLA, 2 SDOT/UDOT, 3 widening integer
 * MACs, 1 other SIMD, 1 load, 1 integer, 1 branch per iteration. */
#include <stdlib.h>
__attribute__((noinline)) void run_one(long n) {
    __asm__ volatile("1:\n"
                     "fmla v16.4s, v17.4s, v18.4s\n"
                     "fmla v19.4s, v17.4s, v18.s[1]\n"
                     "sdot v20.4s, v21.16b, v22.16b\n"
                     "udot v20.4s, v21.16b, v22.4b[1]\n"
                     "smull v23.8h, v21.8b, v22.8b\n"
                     "smlal2 v23.8h, v21.16b, v22.16b\n"
                     "sadalp v24.4s, v23.8h\n"
                     "fadd v25.4s, v25.4s, v17.4s\n"
                     "ldr q26, [sp]\n"
                     "subs %0, %0, #1\n"
                     "b.ne 1b\n"
                     : "+r"(n) : : "cc", "memory", "v16", "v19", "v20", "v23", "v24", "v25", "v26");
}
int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000;
    run_one(n);
    run_one(2 * n);
    return 0;
}
