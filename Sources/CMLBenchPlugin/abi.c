/* The header is the product; this file gives SwiftPM a C target to build. */
#include "mlbench_plugin.h"
