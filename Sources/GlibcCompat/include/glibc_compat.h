#ifndef COMPASS_GLIBC_COMPAT_H
#define COMPASS_GLIBC_COMPAT_H

// Nothing to call: this target only defines symbols the linker takes in place of newer glibc
// versions of them (see hypotf.c).

#endif
