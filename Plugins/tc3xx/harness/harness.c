/* The harness protocol (see mlbench_harness.h); no libc beyond string functions,
 * so it builds for bare metal as for the host. */
#include "mlbench_harness.h"

#include <string.h>

#ifndef MLB_MAX_INPUT
#define MLB_MAX_INPUT 65536
#endif
#ifndef MLB_MAX_OUTPUT
#define MLB_MAX_OUTPUT 16384
#endif
#define MLB_MAX_COMMAND (2 * MLB_MAX_INPUT + 64)

static uint8_t input[MLB_MAX_INPUT];
static uint8_t output[MLB_MAX_OUTPUT];
static size_t expected;   /* bytes announced by db load */
static size_t loaded;     /* bytes received so far */
static int have_results;
static char command[MLB_MAX_COMMAND];

static void put(const char *text) { mlb_port_write(text, strlen(text)); }

static void put_line(const char *text) {
    put(text);
    put("\r\n");
}

/* Unsigned decimal without printf: bare-metal builds have no stdio. */
static void put_u64(uint64_t value) {
    char digits[21];
    int n = 0;
    do { digits[n++] = (char)('0' + value % 10); value /= 10; } while (value);
    while (n) { char c = digits[--n]; mlb_port_write(&c, 1); }
}

static void put_tagged(const char *prefix, const char *text, const char *suffix) {
    put(prefix); put(text); put(suffix); put("\r\n");
}

static void error(const char *text) { put_tagged("e-[", text, "]"); }

static int parse_u32(const char **cursor, uint32_t *value) {
    const char *p = *cursor;
    while (*p == ' ') p++;
    if (*p < '0' || *p > '9') return -1;
    uint64_t v = 0;
    while (*p >= '0' && *p <= '9') {
        v = v * 10 + (uint64_t)(*p - '0');
        if (v > 0xffffffffu) return -1;
        p++;
    }
    *value = (uint32_t)v;
    *cursor = p;
    return 0;
}

static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static void do_profile(void) {
    put_tagged("m-profile-[", "mlbench-harness-1", "]");
    put_tagged("m-model-[", mlb_model_name(), "]");
    put("m-input-bytes-["); put_u64(mlb_model_input_bytes()); put_line("]");
    put("m-output-bytes-["); put_u64(mlb_model_output_bytes()); put_line("]");
    put_tagged("m-timer-[", mlb_port_timer_name(), "]");
    put_line("m-counters-[ccnt,icnt,m1cnt,m2cnt,m3cnt]");
}

static void do_db(const char *args) {
    if (strncmp(args, "load", 4) == 0) {
        const char *p = args + 4;
        uint32_t n;
        if (parse_u32(&p, &n) != 0 || *p != 0) { error("db load: expected a byte count"); return; }
        if (n != mlb_model_input_bytes()) {
            put("e-[db load: the model takes "); put_u64(mlb_model_input_bytes()); put(" bytes, not "); put_u64(n); put_line("]");
            return;
        }
        expected = n;
        loaded = 0;
        have_results = 0;
        put("m-[Expecting "); put_u64(n); put_line(" bytes]");
        return;
    }
    if (expected == 0) { error("db: no db load before the data"); return; }
    size_t length = strlen(args);
    if (length % 2) { error("db: odd number of hex digits"); return; }
    if (loaded + length / 2 > expected) { error("db: more bytes than announced by db load"); return; }
    for (size_t i = 0; i < length; i += 2) {
        int high = hex_value(args[i]), low = hex_value(args[i + 1]);
        if (high < 0 || low < 0) { error("db: not a hex digit"); return; }
    }
    for (size_t i = 0; i < length; i += 2) input[loaded++] = (uint8_t)(hex_value(args[i]) << 4 | hex_value(args[i + 1]));
    if (loaded == expected) put_line("m-load-done");
}

static void do_infer(const char *args) {
    uint32_t count, warmup = 0;
    const char *p = args;
    if (parse_u32(&p, &count) != 0) { error("infer: expected 'infer N W'"); return; }
    if (*p) {
        if (parse_u32(&p, &warmup) != 0) { error("infer: expected 'infer N W'"); return; }
    }
    while (*p == ' ') p++;
    if (*p) { error("infer: expected 'infer N W'"); return; }
    if (expected == 0 || loaded != expected) { error("infer: the input is not loaded (db load, then db data)"); return; }
    if (mlb_model_output_bytes() > MLB_MAX_OUTPUT) { error("infer: the model's output is larger than the harness buffer"); return; }
    put("m-warmup-start-"); put_u64(warmup); put_line("");
    for (uint32_t i = 0; i < warmup; i++) {
        if (mlb_model_run(input, output) != 0) { error("infer: the model failed"); return; }
    }
    put_line("m-warmup-done");
    put("m-infer-start-"); put_u64(count); put_line("");
    mlb_counters total = {{0}, 0}, now;
    for (uint32_t i = 0; i < count; i++) {
        mlb_port_counters_start();
        uint32_t start = mlb_port_micros();
        int status = mlb_model_run(input, output);
        uint32_t lap = mlb_port_micros() - start;   /* unsigned: right across a wrap */
        mlb_port_counters_read(&now);
        if (status != 0) { error("infer: the model failed"); return; }
        for (int c = 0; c < MLB_COUNTERS; c++) total.value[c] += now.value[c];
        total.available = now.available;
        put("m-lap-us-"); put_u64(lap); put_line("");
    }
    put("m-counters-[");
    for (int c = 0; c < MLB_COUNTERS; c++) {
        if (c) put(",");
        if (total.available & (1u << c)) put_u64(total.value[c]); else put("na");
    }
    put_line("]");
    have_results = count > 0;
    put_line("m-infer-done");
}

static void do_results(void) {
    if (!have_results) { error("results: no inference has run on the loaded input"); return; }
    static const char digits[] = "0123456789abcdef";
    put("m-results-[");
    for (size_t i = 0; i < mlb_model_output_bytes(); i++) {
        char pair[2] = { digits[output[i] >> 4], digits[output[i] & 15] };
        mlb_port_write(pair, 2);
    }
    put_line("]");
}

static void dispatch(char *text) {
    /* Leading whitespace (line ends from a terminal) is not part of a command. */
    while (*text == ' ' || *text == '\r' || *text == '\n' || *text == '\t') text++;
    if (strcmp(text, "name") == 0) put_tagged("m-name-[", mlb_port_name(), "]");
    else if (strcmp(text, "profile") == 0) do_profile();
    else if (strncmp(text, "db ", 3) == 0) do_db(text + 3);
    else if (strncmp(text, "infer ", 6) == 0) do_infer(text + 6);
    else if (strcmp(text, "results") == 0) do_results();
    else { put("e-[unknown command: "); put(text); put_line("]"); }
    put_line("m-ready");
}

void mlb_harness_main(void) {
    put_tagged("m-boot-[", mlb_port_name(), "]");
    put_line("m-ready");
    size_t length = 0;
    int overflow = 0;
    for (;;) {
        int c = mlb_port_getc();
        if (c < 0) return;
        if (c == '%') {
            command[length] = 0;
            if (overflow) { error("command too long"); put_line("m-ready"); }
            else dispatch(command);
            length = 0;
            overflow = 0;
        } else if (length + 1 < sizeof command) {
            command[length++] = (char)c;
        } else {
            overflow = 1;
        }
    }
}
