/* libgpiod v1 (Debian bookworm ships 1.6): the chip/line API, not v2's request API. */
#include <gpiod.h>
