// How a process's heap serves large requests. glibc by default gives each block over 128 KiB a
// mapping of its own, unmapped when freed, and hands a heap's free top back to the kernel: a
// request of a thousand events then faults in its megabytes page by page, and in a process that
// serves request after request (FastCGI, Lambda), again for every request.
#include "glibc_compat.h"
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

void compass_keep_heap(void) {
    // Blocks up to 32 MiB (glibc's largest threshold) from the heap; its free top trimmed only
    // beyond 256 MiB.
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
}

void compass_prepare_heap(size_t bytes) {
    compass_keep_heap();
    // The heap grown by `bytes` at once (a block of that size made and freed, kept as the free
    // top), and that range offered to transparent huge pages where the kernel has them
    // ("madvise" mode): the request's megabytes cost a handful of page faults.
    char *before = sbrk(0);
    void *volatile probe = malloc(bytes);  // volatile: the compiler may not drop the pair
    char *after = sbrk(0);
    free(probe);
    if (before == (char *)-1 || after == (char *)-1 || after <= before) return;
    const uintptr_t huge = 2 << 20;
    uintptr_t start = ((uintptr_t)before + huge - 1) & ~(huge - 1);
    if ((uintptr_t)after > start) madvise((void *)start, (uintptr_t)after - start, MADV_HUGEPAGE);
}
