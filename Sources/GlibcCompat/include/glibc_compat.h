#ifndef COMPASS_GLIBC_COMPAT_H
#define COMPASS_GLIBC_COMPAT_H

// What the Swift Glibc module does not bring: getrandom(2) (sys/random.h). The target also
// defines symbols the linker takes in place of newer glibc versions of them (see hypotf.c), and
// the heap's settings for large requests (heap.c).
#include <stddef.h>
#include <sys/random.h>

/// Large blocks from the heap, and the heap kept rather than handed back between requests.
void compass_keep_heap(void);
/// `compass_keep_heap`, and the heap grown by `bytes` for one large request, on transparent huge
/// pages where the kernel offers them.
void compass_prepare_heap(size_t bytes);

#endif
