// The release executables link libstdc++ statically (Package.swift), and libstdc++ refers to
// arc4random, which glibc has had only since 2.36 (arc4random@GLIBC_2.36): the executables would
// not start on Amazon Linux 2023 (glibc 2.34). A definition in the executable itself wins over
// the shared library's, so this one is taken instead. It returns bytes of the kernel's CSPRNG
// (getrandom(2), in glibc since 2.25), as glibc's own does, and /dev/urandom's where the kernel
// has no getrandom; no generator of ours.
#include "glibc_compat.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/random.h>
#include <unistd.h>

static int compass_urandom(void *buffer, size_t count) {
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t done = 0;
    while (done < count) {
        ssize_t got = read(fd, (char *)buffer + done, count - done);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) {
            close(fd);
            return -1;
        }
        done += (size_t)got;
    }
    close(fd);
    return 0;
}

uint32_t arc4random(void) {
    uint32_t value;
    for (;;) {
        ssize_t got = getrandom(&value, sizeof value, 0);
        if (got == (ssize_t)sizeof value) return value;
        if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (got < 0 && errno == ENOSYS && compass_urandom(&value, sizeof value) == 0) return value;
        // No source of randomness at all: glibc ends the process here too.
        abort();
    }
}
