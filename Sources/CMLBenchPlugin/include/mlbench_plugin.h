/*
 * mlbench plugin ABI — the only interface between the mlbench core and a plugin.
 *
 * A plugin is a shared object that exports one symbol, `mlbench_plugin_entry`,
 * returning a descriptor. The descriptor names the plugin and lists factories;
 * each factory creates instances of one role (toolchain, board, probe, power
 * switch) from a JSON configuration, and points at that role's function table.
 *
 * Docs/PluginABI.md documents every request and reply in full.
 *
 * Conventions, shared by every function below:
 *  - Structured data crosses the boundary as UTF-8 JSON text; the schemas are
 *    documented in Docs/PluginABI.md. Requests are NUL-terminated strings that
 *    the plugin must not keep after the call returns.
 *  - Replies are written through an `mlb_reply`, which copies the bytes, so
 *    no memory ever changes hands between the core and the plugin.
 *  - Every operation returns an `mlb_status`. On MLB_OK the reply holds the
 *    result (JSON); otherwise it holds a human-readable error message.
 *  - Function tables begin with `struct_size`, so a later minor revision may
 *    append functions; the major `abi_version` changes on any other change.
 *
 * The design follows CLAP and SANE: plain C, versioned, no allocator sharing.
 */
#ifndef MLBENCH_PLUGIN_H
#define MLBENCH_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The ABI version this header describes. The loader refuses any other. */
#define MLB_ABI_VERSION 1u

/* The symbol every plugin exports. */
#define MLB_ENTRY_SYMBOL "mlbench_plugin_entry"

typedef int32_t mlb_status;

enum {
    MLB_OK = 0,
    MLB_ERROR_FAILED = 1,          /* the operation failed; see the message */
    MLB_ERROR_INVALID_REQUEST = 2, /* the request JSON was malformed or incomplete */
    MLB_ERROR_INVALID_CONFIG = 3,  /* the configuration given to create() is wrong */
    MLB_ERROR_UNSUPPORTED = 4,     /* the instance does not implement this operation */
    MLB_ERROR_TIMEOUT = 5,         /* a deadline given in the request passed */
    MLB_ERROR_DEVICE = 6,          /* the device or a driver reported an error */
    MLB_ERROR_NOT_READY = 7        /* the board or device is not ready */
};

/* Roles a factory may provide. */
typedef enum mlb_role {
    MLB_ROLE_TOOLCHAIN = 1,
    MLB_ROLE_BOARD = 2,
    MLB_ROLE_PROBE = 3,
    MLB_ROLE_POWER_SWITCH = 4
} mlb_role;

/* A reply sink provided by the core. `write` appends bytes to the reply; it may
 * be called any number of times during one operation. */
typedef struct mlb_reply {
    void *context;
    void (*write)(struct mlb_reply *reply, const char *bytes, size_t length);
} mlb_reply;

/* Every role operation has this shape: an instance, a JSON request (at least
 * "{}"), and a reply sink. */
typedef mlb_status (*mlb_operation)(void *instance, const char *request_json, mlb_reply *reply);

/* Toolchain: checks and builds models, and names the runner that executes them.
 *  describe     {}                       -> {"name","version","formats":[...],"targets":[...]}
 *  check        {"model","target",...}   -> {"compatible":bool,"issues":[...]}
 *  build        {"model","options","target","output_directory"} -> {"artifact","log","effective_options"}
 *  runner       {"artifact","target"}    -> {"command":[...],"environment":{...},"files":[...]} */
typedef struct mlb_toolchain_table {
    uint32_t struct_size;
    mlb_operation describe;
    mlb_operation check;
    mlb_operation build;
    mlb_operation runner;
} mlb_toolchain_table;

/* Board: a target that runs models under a runner.
 *  describe       {}  -> {"name","architecture","memories":[{"name","size_bytes","used_bytes"}]}
 *  reset          {"timeout_ms"} -> {"ready":bool,"log"}
 *  conditions     {"apply":{...}} -> {"applied":{...},"observed":{...}}
 *  deploy         {"files":[{"source","name"}]} -> {"directory"}
 *  start_runner   {"command":[...],"environment":{},"directory","start_timeout_ms"}
 *                 -> {"session","greeting"} (greeting: the runner's first line)
 *  exchange       {"session","message","timeout_ms"} -> {"message"} (one runner line)
 *  stop_runner    {"session"} -> {"exit_status","stderr"}
 *  fetch          {"directory","names":[...],"destination"} -> {} (copies files
 *                 from the board's directory into a host folder)
 *  cleanup        {"directory"} -> {} */
typedef struct mlb_board_table {
    uint32_t struct_size;
    mlb_operation describe;
    mlb_operation reset;
    mlb_operation conditions;
    mlb_operation deploy;
    mlb_operation start_runner;
    mlb_operation exchange;
    mlb_operation stop_runner;
    mlb_operation fetch;
    mlb_operation cleanup;
} mlb_board_table;

/* One sample of one channel of a probe, on CLOCK_MONOTONIC. */
typedef struct mlb_sample {
    int64_t timestamp_ns;
    uint32_t channel;
    double value;
} mlb_sample;

/* A sample sink provided by the core; a probe calls it with batches from any
 * thread while it is started. */
typedef struct mlb_sample_sink {
    void *context;
    void (*deliver)(struct mlb_sample_sink *sink, const mlb_sample *samples, size_t count);
} mlb_sample_sink;

/* Probe: streams timestamped samples.
 *  describe  {} -> {"channels":[{"name","unit"}],"rate_hz"}
 *  start     sink stays valid until stop returns
 *  stop      {} -> {} */
typedef struct mlb_probe_table {
    uint32_t struct_size;
    mlb_operation describe;
    mlb_status (*start)(void *instance, const char *request_json, mlb_sample_sink *sink, mlb_reply *reply);
    mlb_operation stop;
} mlb_probe_table;

/* PowerSwitch: outlets that can be turned on and off.
 *  describe  {} -> {"outlets":[...]}
 *  set       {"outlet","on":bool} -> {}
 *  state     {"outlet"} -> {"on":bool} */
typedef struct mlb_power_switch_table {
    uint32_t struct_size;
    mlb_operation describe;
    mlb_operation set;
    mlb_operation state;
} mlb_power_switch_table;

/* A factory creates instances of one role. `kind` is the name inventories and
 * experiments use (e.g. "host", "tvm"). `create` receives
 * {"kind", "plugin_directory", "settings":{...}, "environment":{...}} and stores the
 * new instance in *instance; `destroy` releases it. `table` points at the
 * role's table (mlb_board_table for MLB_ROLE_BOARD, ...). */
typedef struct mlb_factory {
    mlb_role role;
    const char *kind;
    mlb_status (*create)(const char *config_json, void **instance, mlb_reply *reply);
    void (*destroy)(void *instance);
    const void *table;
} mlb_factory;

/* What `mlbench_plugin_entry` returns. `abi_version` comes first so that the
 * loader can check it before reading anything else. The descriptor and
 * everything it points to must stay valid while the library is loaded. */
typedef struct mlb_plugin_descriptor {
    uint32_t abi_version;
    const char *name;
    const char *version;
    const char *description;
    size_t factory_count;
    const mlb_factory *factories;
} mlb_plugin_descriptor;

typedef const mlb_plugin_descriptor *(*mlb_entry_function)(void);

#ifdef __cplusplus
}
#endif

#endif /* MLBENCH_PLUGIN_H */
