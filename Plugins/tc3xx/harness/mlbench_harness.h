/*
 * mlbench UART harness for bare-metal boards (AURIX TC3xx), in the style of
 * MLPerf Tiny's harness: commands end with '%', replies are lines starting
 * with "m-" (message) or "e-" (error), and every command ends with "m-ready".
 *
 *   name%            m-name-[<harness name>]
 *   profile%         m-profile-[mlbench-harness-1] m-model-[<name>] m-input-bytes-[N]
 *                    m-output-bytes-[M] m-timer-[<source>] m-counters-[ccnt,icnt,m1cnt,m2cnt,m3cnt]
 *   db load N%       m-[Expecting N bytes]           (N must be the model's input size)
 *   db HHHH...%      appends hex bytes; m-load-done once N bytes arrived
 *   infer N W%       m-warmup-start-W m-warmup-done m-infer-start-N, then N lines
 *                    m-lap-us-<µs> (one per timed inference), then
 *                    m-counters-[<ccnt>,<icnt>,<m1>,<m2>,<m3>] (sums over the N
 *                    inferences, "na" where the port has no such counter), m-infer-done
 *   results%         m-results-[<hex of the output bytes of the last inference>]
 *
 * The outputs go back as raw bytes so the lab compares exactly what the board
 * computed with the reference (semantic preservation).
 *
 * A port supplies the byte link, the microsecond timer and the counters; a
 * model supplies its sizes and one inference. Both are plain C, so the same
 * harness.c builds for the TriCore (port_tc3xx.c) and for the host (port_host.c).
 */
#ifndef MLBENCH_HARNESS_H
#define MLBENCH_HARNESS_H

#include <stddef.h>
#include <stdint.h>

/* ---- port ---- */
/* Blocks until a byte arrives; returns it, or -1 when the link is gone. */
int mlb_port_getc(void);
/* Writes bytes to the link. */
void mlb_port_write(const char *bytes, size_t count);
/* A free-running microsecond timer (wraps at 2^32). */
uint32_t mlb_port_micros(void);
/* The timer's name, e.g. "stm0" or "clock_monotonic". */
const char *mlb_port_timer_name(void);
/* The port's name, reported by name%. */
const char *mlb_port_name(void);

/* CPU counters: CCNT (cycles), ICNT (instructions), M1CNT..M3CNT (events such
 * as cache misses). `available` has bit i set for counter i that exists. */
enum { MLB_COUNTERS = 5 };
typedef struct {
    uint64_t value[MLB_COUNTERS];
    uint32_t available;
} mlb_counters;
void mlb_port_counters_start(void);
void mlb_port_counters_read(mlb_counters *out);

/* ---- model ---- */
const char *mlb_model_name(void);
size_t mlb_model_input_bytes(void);
size_t mlb_model_output_bytes(void);
/* One inference; returns 0 on success. */
int mlb_model_run(const uint8_t *input, uint8_t *output);

/* ---- harness ---- */
/* Prints the banner and serves commands until the link is gone. */
void mlb_harness_main(void);

#endif
