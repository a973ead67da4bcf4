#ifndef COMPASS_GLIBC_COMPAT_H
#define COMPASS_GLIBC_COMPAT_H

// What the Swift Glibc module does not bring: getrandom(2) (sys/random.h), a rename onto a
// free name only (rename.c) and accept4(2) (accept.c). The target also defines symbols the
// linker takes in place of newer glibc versions of them (see hypotf.c), and the heap's settings
// for large requests (heap.c).
#include <stddef.h>
#include <sys/random.h>

/// Large blocks from the heap, and the heap kept rather than handed back between requests.
void compass_keep_heap(void);
/// `compass_keep_heap`, and the heap grown by `bytes` for one large request, on transparent huge
/// pages where the kernel offers them.
void compass_prepare_heap(size_t bytes);

/// `from` renamed to `to` only if `to` does not exist (then -1 with errno EEXIST, `from` left);
/// 0 when done. See rename.c.
int compass_rename_new(const char *from, const char *to);

/// `compass_rename_new`'s way where a file system refuses `RENAME_NOREPLACE`: `from` linked as
/// `to`, which refuses a taken name as well (-1, errno EEXIST, `from` left), then removed.
int compass_link_new(const char *from, const char *to);

/// A connection from the listening socket `listener`, close-on-exec and non-blocking from the
/// start (accept4 with SOCK_CLOEXEC | SOCK_NONBLOCK); -1 with errno as accept(2) sets it.
int compass_accept_nonblocking(int listener);

#endif
