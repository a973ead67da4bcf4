// The scans are inline, in include/byte_scan.h; a C target needs a source file of its own.
#include "byte_scan.h"
