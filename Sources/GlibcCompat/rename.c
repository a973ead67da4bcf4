// A new file put in place under a name only if the name is free, in one call: what the file
// store uses for a record that must not write over one linked in meanwhile. renameat2(2) with
// RENAME_NOREPLACE (glibc 2.28, Linux 3.15; ext4, xfs, btrfs, tmpfs); where the file system
// refuses the flag, a hard link, which refuses a taken name as well, and the old name removed.
#define _GNU_SOURCE
#include "glibc_compat.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int compass_rename_new(const char *from, const char *to) {
    if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0) return 0;
    if (errno != EINVAL && errno != ENOSYS) return -1;
    return compass_link_new(from, to);
}

int compass_link_new(const char *from, const char *to) {
    if (link(from, to) != 0) return -1;
    unlink(from);
    return 0;
}
