/*
 * A stand-in for a TriCore cross toolchain, for the TC3xx tests: it "builds" a
 * model given as C source (generated C, as TFLite Micro or TVM would emit) with
 * the mlbench UART harness into
 *   - program.elf: harness + model linked by the host's gcc/ld at TC397 addresses
 *     (the linker script of the settings), not runnable here, read by the board
 *     plugin for its memory table — what a TriCore build would give;
 *   - program-host: the same C for the host with the pseudo-terminal port, which
 *     the stand-in flasher "boots" in place of the board;
 *   - harness-model.json: the model's inputs and outputs (option "description").
 * Settings: "harness" (the harness source folder), "linker_script".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fixture_plugin.h"

typedef struct { char harness[4096]; char script[4096]; } toolchain;

static mlb_status create(const char *config, void **instance, mlb_reply *r) {
    toolchain *self = calloc(1, sizeof *self);
    if (!json_string(config, "harness", self->harness, sizeof self->harness) ||
        !json_string(config, "linker_script", self->script, sizeof self->script)) {
        free(self); reply(r, "settings 'harness' and 'linker_script' are required"); return MLB_ERROR_INVALID_CONFIG;
    }
    *instance = self;
    return MLB_OK;
}

static void destroy(void *instance) { free(instance); }

static mlb_status describe(void *i, const char *q, mlb_reply *r) {
    (void)i; (void)q;
    reply(r, "{\"name\":\"harness-c\",\"version\":\"1.0\",\"formats\":[\"c\"],\"targets\":[\"tc397\"]}");
    return MLB_OK;
}

static mlb_status check(void *i, const char *q, mlb_reply *r) {
    (void)i; (void)q;
    reply(r, "{\"compatible\":true,\"issues\":[]}");
    return MLB_OK;
}

static int run(const char *command, mlb_reply *r) {
    if (system(command) == 0) return 0;
    char message[9000];
    snprintf(message, sizeof message, "build step failed: %s", command);
    reply(r, message);
    return -1;
}

static mlb_status build(void *i, const char *q, mlb_reply *r) {
    toolchain *self = i;
    char model[4096], out[4096], description[4096], command[32768];
    if (!json_string(q, "model", model, sizeof model) || !json_string(q, "output_directory", out, sizeof out)) {
        reply(r, "build needs model and output_directory"); return MLB_ERROR_INVALID_REQUEST;
    }
    if (!json_string(q, "description", description, sizeof description)) {
        reply(r, "option 'description' (the model's harness-model.json) is required"); return MLB_ERROR_INVALID_REQUEST;
    }
    /* -mcmodel=large: the TC397 addresses of constants lie above 2 GiB. The buffers are sized
     * for small models: the default 64 KiB input buffer and its command line overflow DSPR0. */
    snprintf(command, sizeof command,
             "cd '%s' && cc -c -O2 -mcmodel=large -fno-pic -fno-asynchronous-unwind-tables -ffreestanding -fno-common -DMLB_MAX_INPUT=4096 -DMLB_MAX_OUTPUT=4096 "
             "-I'%s' '%s/harness.c' '%s' && ld -T '%s' --unresolved-symbols=ignore-all -e 0 -o program.elf *.o "
             "&& cc -O2 -I'%s' -o program-host '%s/harness.c' '%s/port_host.c' '%s' && cp '%s' harness-model.json && rm -f *.o",
             out, self->harness, self->harness, model, self->script,
             self->harness, self->harness, self->harness, model, description);
    if (run(command, r) != 0) return MLB_ERROR_FAILED;
    char answer[8400];
    snprintf(answer, sizeof answer, "{\"artifact\":\"%s/program.elf\",\"log\":\"linked at TC397 addresses; host build for the stand-in board\",\"effective_options\":{}}", out);
    reply(r, answer);
    return MLB_OK;
}

/* The board plugin is the runner (it speaks the harness protocol itself). */
static mlb_status runner(void *i, const char *q, mlb_reply *r) {
    (void)i; (void)q;
    reply(r, "{\"command\":[\"uart-harness\"],\"environment\":{},\"files\":[]}");
    return MLB_OK;
}

static const mlb_toolchain_table table = { sizeof(mlb_toolchain_table), describe, check, build, runner };
static const mlb_factory factories[] = { { MLB_ROLE_TOOLCHAIN, "harness-c", create, destroy, &table } };
static const mlb_plugin_descriptor descriptor = {
    MLB_ABI_VERSION, "harness-c", "1.0.0", "Stand-in TriCore toolchain: harness + model C, linked at TC397 addresses", 1, factories };

const mlb_plugin_descriptor *mlbench_plugin_entry(void) { return &descriptor; }
