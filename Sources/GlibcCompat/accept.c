#define _GNU_SOURCE
#include <sys/socket.h>

#include "glibc_compat.h"

// accept4 is a GNU extension (glibc 2.10, Linux 2.6.28): the Swift Glibc module leaves it out.
int compass_accept_nonblocking(int listener) {
    return accept4(listener, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
}
