/* What the C plugins among the test fixtures share: writing a reply and reading
 * a string from the flat JSON the core sends (paths, names: no escapes). */
#ifndef MLBENCH_FIXTURE_PLUGIN_H
#define MLBENCH_FIXTURE_PLUGIN_H

#include <stdio.h>
#include <string.h>
#include "mlbench_plugin.h"

static inline void reply(mlb_reply *r, const char *text) { if (r && r->write) r->write(r, text, strlen(text)); }

/* The string value of "key" in flat JSON without escapes (what the core sends for paths). */
static inline int json_string(const char *json, const char *key, char *out, size_t cap) {
    char pattern[128];
    snprintf(pattern, sizeof pattern, "\"%s\":\"", key);
    const char *start = strstr(json, pattern);
    if (!start) return 0;
    start += strlen(pattern);
    const char *end = strchr(start, '"');
    if (!end || (size_t)(end - start) >= cap) return 0;
    memcpy(out, start, (size_t)(end - start));
    out[end - start] = 0;
    return 1;
}

#endif
