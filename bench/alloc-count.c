/* Counts a process's heap allocations (malloc, calloc, realloc, posix_memalign, aligned_alloc)
   and prints the count to standard error at exit: LD_PRELOAD=alloc-count.so COMMAND.
   Built by scripts/bench; the allocations per event are the difference between two runs. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
static unsigned long count;

void *malloc(size_t size) { count++; return __libc_malloc(size); }
void *calloc(size_t n, size_t size) { count++; return __libc_calloc(n, size); }
void *realloc(void *p, size_t size) { count++; return __libc_realloc(p, size); }
int posix_memalign(void **out, size_t alignment, size_t size) {
    count++;
    *out = __libc_memalign(alignment, size);
    return *out ? 0 : 12;
}
void *aligned_alloc(size_t alignment, size_t size) { count++; return __libc_memalign(alignment, size); }

__attribute__((destructor)) static void report(void) {
    char line[64];
    int length = snprintf(line, sizeof line, "allocations %lu\n", count);
    if (write(2, line, length) < 0) {}
}
