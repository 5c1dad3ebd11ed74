/* Host port of the harness, for tests without a board: the link is the master
 * side of a pseudo-terminal whose slave path is published as a symlink (the
 * "serial device" the plugin opens, as it opens /dev/ttyUSB0 on a real bench);
 * the timer is CLOCK_MONOTONIC; the cycle counter is the TSC where there is one
 * (x86), the other counters are not available on the host.
 *
 *   harness-host --link PATH      serve on a new pseudo-terminal, PATH -> its slave
 */
#define _GNU_SOURCE
#include "mlbench_harness.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

static int link_fd = -1;

int mlb_port_getc(void) {
    unsigned char c;
    for (;;) {
        ssize_t n = read(link_fd, &c, 1);
        if (n == 1) return c;
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EIO) {
            /* No slave open yet (or it closed): the board waits for its host. */
            usleep(10000);
            continue;
        }
        return -1;
    }
}

void mlb_port_write(const char *bytes, size_t count) {
    while (count) {
        ssize_t n = write(link_fd, bytes, count);
        if (n < 0) {
            if (errno == EINTR) continue;
            return;
        }
        bytes += n;
        count -= (size_t)n;
    }
}

uint32_t mlb_port_micros(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint32_t)((uint64_t)now.tv_sec * 1000000u + (uint64_t)now.tv_nsec / 1000u);
}

const char *mlb_port_timer_name(void) { return "clock_monotonic"; }
const char *mlb_port_name(void) { return "mlbench-harness-host"; }

static uint64_t cycles_at_start;

static uint64_t cycles(void) {
#if defined(__x86_64__) || defined(__i386__)
    return __rdtsc();
#else
    return 0;
#endif
}

void mlb_port_counters_start(void) { cycles_at_start = cycles(); }

void mlb_port_counters_read(mlb_counters *out) {
    memset(out, 0, sizeof *out);
#if defined(__x86_64__) || defined(__i386__)
    out->value[0] = cycles() - cycles_at_start;
    out->available = 1u;
#endif
}

int main(int argc, char **argv) {
    if (argc != 3 || strcmp(argv[1], "--link") != 0) {
        fprintf(stderr, "usage: %s --link PATH\n", argv[0]);
        return 2;
    }
    link_fd = posix_openpt(O_RDWR | O_NOCTTY);
    if (link_fd < 0 || grantpt(link_fd) != 0 || unlockpt(link_fd) != 0) {
        perror("pseudo-terminal");
        return 1;
    }
    /* Raw on the board side too: no echo, no line editing, '%' passes through. */
    struct termios options;
    tcgetattr(link_fd, &options);
    cfmakeraw(&options);
    tcsetattr(link_fd, TCSANOW, &options);
    unlink(argv[2]);
    if (symlink(ptsname(link_fd), argv[2]) != 0) {
        perror("symlink");
        return 1;
    }
    mlb_harness_main();
    return 0;
}
