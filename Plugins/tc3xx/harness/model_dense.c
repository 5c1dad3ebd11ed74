/* A small float32 dense layer (8 inputs, 4 outputs) with fixed weights: the
 * model the harness tests run, standing in for generated C (TFLite Micro or
 * TVM's C runtime) of a real model. Input and output are float32, little-endian. */
#include "mlbench_harness.h"

#include <string.h>

#define IN 8
#define OUT 4

static const float weights[OUT][IN] = {
    { 0.50f, -0.25f, 0.125f, 1.0f, -1.0f, 0.75f, 0.0f, 0.25f },
    { -0.5f, 0.25f, 0.5f, -0.125f, 0.0f, 1.0f, -0.75f, 0.5f },
    { 1.0f, 1.0f, -1.0f, 0.0f, 0.5f, -0.5f, 0.25f, -0.25f },
    { 0.0f, -0.5f, 0.25f, 0.5f, 0.125f, 0.0f, 1.0f, -1.0f },
};
static const float bias[OUT] = { 0.1f, -0.2f, 0.3f, 0.0f };

const char *mlb_model_name(void) { return "dense-8x4"; }
size_t mlb_model_input_bytes(void) { return IN * sizeof(float); }
size_t mlb_model_output_bytes(void) { return OUT * sizeof(float); }

int mlb_model_run(const uint8_t *input, uint8_t *output) {
    float x[IN], y[OUT];
    memcpy(x, input, sizeof x);
    for (int o = 0; o < OUT; o++) {
        float sum = bias[o];
        for (int i = 0; i < IN; i++) sum += weights[o][i] * x[i];
        y[o] = sum;
    }
    memcpy(output, y, sizeof y);
    return 0;
}
