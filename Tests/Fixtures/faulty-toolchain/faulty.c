/*
 * A toolchain plugin in plain C whose runner misbehaves on purpose, so that
 * the tests can check how the lab survives a runner that crashes or hangs.
 * Its "build" copies the model; its runner is runner.sh, whose fault comes
 * from the inventory setting "fault": "crash", "hang", "flaky" or "none".
 * "flaky" refuses the first runner request of the process as not ready (a
 * transient fault the lab must retry), then behaves.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fixture_plugin.h"

typedef struct { char directory[4096]; char fault[32]; } faulty;

static mlb_status create(const char *config, void **instance, mlb_reply *r) {
    faulty *self = calloc(1, sizeof *self);
    if (!json_string(config, "plugin_directory", self->directory, sizeof self->directory)) {
        free(self); reply(r, "no plugin_directory"); return MLB_ERROR_INVALID_CONFIG;
    }
    if (!json_string(config, "fault", self->fault, sizeof self->fault)) strcpy(self->fault, "none");
    *instance = self;
    return MLB_OK;
}

static void destroy(void *instance) { free(instance); }

static mlb_status describe(void *i, const char *q, mlb_reply *r) {
    (void)i; (void)q;
    reply(r, "{\"name\":\"faulty\",\"version\":\"1.0\",\"formats\":[\"onnx\"],\"targets\":[\"cpu\"]}");
    return MLB_OK;
}

static mlb_status check(void *i, const char *q, mlb_reply *r) {
    (void)i; (void)q;
    reply(r, "{\"compatible\":true,\"issues\":[]}");
    return MLB_OK;
}

static mlb_status build(void *i, const char *q, mlb_reply *r) {
    (void)i;
    char model[4096], out[4096], target[8300], buffer[65536];
    if (!json_string(q, "model", model, sizeof model) || !json_string(q, "output_directory", out, sizeof out)) {
        reply(r, "build needs model and output_directory"); return MLB_ERROR_INVALID_REQUEST;
    }
    snprintf(target, sizeof target, "%s/model.bin", out);
    FILE *in = fopen(model, "rb"), *copy = fopen(target, "wb");
    if (!in || !copy) { if (in) fclose(in); if (copy) fclose(copy); reply(r, "cannot copy the model"); return MLB_ERROR_FAILED; }
    size_t n;
    while ((n = fread(buffer, 1, sizeof buffer, in)) > 0) fwrite(buffer, 1, n, copy);
    fclose(in); fclose(copy);
    char answer[8400];
    snprintf(answer, sizeof answer, "{\"artifact\":\"%s\",\"log\":\"copied\",\"effective_options\":{}}", target);
    reply(r, answer);
    return MLB_OK;
}

/* Per process, not per instance: the lab may create a new instance for a retry. */
static int flaky_refusals;

static mlb_status runner(void *i, const char *q, mlb_reply *r) {
    (void)q;
    faulty *self = i;
    if (strcmp(self->fault, "flaky") == 0 && flaky_refusals++ == 0) {
        reply(r, "the runner's transport is not up yet");
        return MLB_ERROR_NOT_READY;
    }
    char answer[9000];
    snprintf(answer, sizeof answer,
             "{\"command\":[\"/bin/sh\",\"runner.sh\"],\"environment\":{\"FAULT\":\"%s\"},\"files\":[\"%s/runner.sh\"]}",
             self->fault, self->directory);
    reply(r, answer);
    return MLB_OK;
}

static const mlb_toolchain_table table = { sizeof(mlb_toolchain_table), describe, check, build, runner };
static const mlb_factory factories[] = { { MLB_ROLE_TOOLCHAIN, "faulty", create, destroy, &table } };
static const mlb_plugin_descriptor descriptor = {
    MLB_ABI_VERSION, "faulty", "1.0.0", "A toolchain whose runner crashes or hangs, for tests", 1, factories };

const mlb_plugin_descriptor *mlbench_plugin_entry(void) { return &descriptor; }
