// The Swift runtime calls hypotf. Linked against glibc 2.35 or later, that reference binds to
// hypotf@GLIBC_2.35 (the version glibc 2.35 gave its new implementation), and the executables
// would not start on Amazon Linux 2023 (glibc 2.34) or any older glibc. A definition in the
// executable itself wins over the shared library's, so this one is taken instead: it calls
// glibc's own float hypot under the name it has had since glibc 2.27 (_Float32), so the math is
// still glibc's and no symbol newer than 2.34 is needed.
#include "glibc_compat.h"

extern float hypotf32(float x, float y);

float hypotf(float x, float y) {
    return hypotf32(x, y);
}
