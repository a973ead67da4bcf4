#ifndef COMPASS_GLIBC_COMPAT_H
#define COMPASS_GLIBC_COMPAT_H

// What the Swift Glibc module does not bring: getrandom(2) (sys/random.h) and mallopt(3)
// (malloc.h). The target also defines symbols the linker takes in place of newer glibc versions
// of them (see hypotf.c).
#include <malloc.h>
#include <sys/random.h>

/// Grows the heap by `bytes` for a large request, on transparent huge pages where offered (heap.c).
void compass_prepare_heap(size_t bytes);

#endif
