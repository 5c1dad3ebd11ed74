/* AURIX TC3xx port of the harness (bare metal, TriCore compiler: tricore-gcc or
 * TASKING). UNVERIFIED on hardware: written from the TC3xx user manual's register
 * descriptions, to be checked on a TC375 Lite Kit / TC397 TriBoard.
 *
 * - Link: ASCLIN0 at 115200 8N1 (the miniWiggler's second FTDI channel on both
 *   kits); the board's startup code (iLLD or equivalent) configures the pins and
 *   the baud rate before main and provides the two byte functions below.
 * - Timer: STM0, whose TIM0 register counts at f_STM (100 MHz by default on TC3xx).
 * - Counters: core special function registers read with __mfcr: CCTRL 0xFC00
 *   (bit 1 CE enables counting), CCNT 0xFC04 cycles, ICNT 0xFC08 instructions,
 *   M1CNT/M2CNT/M3CNT 0xFC0C/0xFC10/0xFC14, whose events CCTRL selects (the
 *   default M1 = I-cache miss, M2 = D-cache miss clean, M3 = D-cache miss dirty).
 */
#include "mlbench_harness.h"

#include <machine/intrinsics.h>   /* __mfcr/__mtcr (tricore-gcc); TASKING has them built in */

#define CCTRL 0xFC00
#define CCNT 0xFC04
#define ICNT 0xFC08
#define M1CNT 0xFC0C
#define M2CNT 0xFC10
#define M3CNT 0xFC14

#define STM0_TIM0 (*(volatile uint32_t *)0xF0001010u)
#ifndef MLB_STM_MHZ
#define MLB_STM_MHZ 100u
#endif

/* From the board's startup code (ASCLIN0 driver). */
extern int mlb_board_uart_getc(void);
extern void mlb_board_uart_putc(char c);

int mlb_port_getc(void) { return mlb_board_uart_getc(); }

void mlb_port_write(const char *bytes, size_t count) {
    while (count--) mlb_board_uart_putc(*bytes++);
}

uint32_t mlb_port_micros(void) { return STM0_TIM0 / MLB_STM_MHZ; }
const char *mlb_port_timer_name(void) { return "stm0"; }
const char *mlb_port_name(void) { return "mlbench-harness-tc3xx"; }

static uint32_t start[MLB_COUNTERS];

static void read_all(uint32_t *v) {
    v[0] = __mfcr(CCNT);
    v[1] = __mfcr(ICNT);
    v[2] = __mfcr(M1CNT);
    v[3] = __mfcr(M2CNT);
    v[4] = __mfcr(M3CNT);
}

void mlb_port_counters_start(void) {
    __mtcr(CCTRL, __mfcr(CCTRL) | 0x2u);   /* CE: count */
    __isync();
    read_all(start);
}

void mlb_port_counters_read(mlb_counters *out) {
    uint32_t now[MLB_COUNTERS];
    read_all(now);
    for (int i = 0; i < MLB_COUNTERS; i++) {
        /* The counters are 31 bits wide (bit 31 is the sticky overflow flag). */
        out->value[i] = (now[i] - start[i]) & 0x7fffffffu;
    }
    out->available = 0x1fu;
}

int main(void) {
    mlb_harness_main();
    for (;;) {}
}
