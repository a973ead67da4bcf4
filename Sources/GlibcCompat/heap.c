// A process about to handle a large request (a CGI process reading a body of hundreds of
// kilobytes): its heap is grown once, by enough for the request, and the kernel is asked to back
// it with transparent huge pages where it offers them ("madvise" mode). The few megabytes the
// request touches then cost a handful of page faults instead of one per 4 KiB page.
#include "glibc_compat.h"
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

void compass_prepare_heap(size_t bytes) {
    // Blocks up to 32 MiB from the heap (not each its own mapping); the heap grown by `bytes`
    // (a block of that size made and freed) and not trimmed.
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, (int)bytes * 4);
    char *before = sbrk(0);
    void *volatile probe = malloc(bytes);  // volatile: the compiler may not drop the pair
    char *after = sbrk(0);
    free(probe);
    if (before == (char *)-1 || after == (char *)-1 || after <= before) return;
    const uintptr_t huge = 2 << 20;
    uintptr_t start = ((uintptr_t)before + huge - 1) & ~(huge - 1);
    if ((uintptr_t)after > start) madvise((void *)start, (uintptr_t)after - start, MADV_HUGEPAGE);
}
