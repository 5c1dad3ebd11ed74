import Foundation
import MLBenchCore

/// The published JSON Schemas of the configuration files. They are the single
/// source of the files' shape: the YAML loaders validate against them, and
/// `mlbench schema NAME` prints them (Docs/schemas/ holds copies, checked by a test).
public enum Schemas {
    public static let names = ["experiment", "inventory", "manifest"]

    public static func text(named name: String) -> String? {
        switch name {
        case "experiment": return experiment
        case "inventory": return inventory
        case "manifest": return manifest
        default: return nil
        }
    }

    static func experimentValue() throws -> JSONValue { try parse(experiment) }
    static func inventoryValue() throws -> JSONValue { try parse(inventory) }
    static func manifestValue() throws -> JSONValue { try parse(manifest) }

    private static func parse(_ text: String) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
    }

    public static let experiment = #"""
    {
      "$schema": "https://json-schema.org/draft/2020-12/schema",
      "$id": "https://mlbench.dev/schemas/experiment.schema.json",
      "title": "mlbench experiment",
      "description": "One experiment: a model deployed by a toolchain on a board, measured, and compared with reference outputs. Paths are relative to the experiment file.",
      "type": "object",
      "required": ["name", "model", "inputs", "reference", "toolchain", "board", "semantic_preservation"],
      "additionalProperties": false,
      "properties": {
        "name": {"type": "string", "description": "A short name for the experiment."},
        "description": {"type": "string"},
        "model": {"type": "string", "description": "The model file (ONNX)."},
        "inputs": {
          "type": "object", "minProperties": 1,
          "description": "Model input name to a .npy file holding every sample stacked on axis 0.",
          "additionalProperties": {"type": "string"}
        },
        "reference": {
          "type": "object", "additionalProperties": false,
          "description": "Exactly one of 'outputs' or 'toolchain'.",
          "properties": {
            "outputs": {"type": "object", "minProperties": 1, "additionalProperties": {"type": "string"},
                        "description": "Output name to a .npy file of reference outputs, stacked like the inputs."},
            "toolchain": {"type": "string", "description": "Inventory name of the reference toolchain, run on the host."},
            "model": {"type": "string", "description": "Model the reference toolchain runs; the experiment's model when absent."}
          }
        },
        "toolchain": {
          "type": "object", "required": ["name", "target"], "additionalProperties": false,
          "properties": {
            "name": {"type": "string", "description": "Inventory name of the toolchain."},
            "version": {"type": "string", "description": "Installed environment version; the newest when absent."},
            "target": {"type": "string", "description": "What the toolchain builds for (llvm, cpu, cuda, ...)."},
            "options": {"type": "object", "description": "Toolchain options (precision, optimization level, ...)."}
          }
        },
        "board": {"type": "string", "description": "Inventory name of the board, or predicted:<board> for its trained predictors instead of a measurement (nothing is reset, built or run)."},
        "conditions": {
          "type": "object", "additionalProperties": {"type": "string"},
          "description": "Controllable conditions to apply before measuring (governor, cpus, power mode, ...)."
        },
        "measurement": {
          "type": "object", "additionalProperties": false,
          "properties": {
            "min_iterations": {"type": "integer", "minimum": 1},
            "max_iterations": {"type": "integer", "minimum": 1},
            "min_time_s": {"type": "number", "minimum": 0},
            "max_time_s": {"type": "number", "exclusiveMinimum": 0},
            "target_relative_ci_width": {"type": "number", "exclusiveMinimum": 0},
            "batch_iterations": {"type": "integer", "minimum": 1},
            "max_warmup_iterations": {"type": "integer", "minimum": 0},
            "min_warmup_iterations": {"type": "integer", "minimum": 0, "description": "Warm-up iterations observed at least before steady state can be confirmed (default 150)."},
            "request_timeout_s": {"type": "number", "exclusiveMinimum": 0},
            "max_retries": {"type": "integer", "minimum": 0, "description": "Restarts after a transient fault (board not ready, reset timed out)."},
            "retry_backoff_s": {"type": "number", "minimum": 0, "description": "Wait before the first restart; doubled before each further one."},
            "canary": {"type": "boolean", "description": "Time a fixed reference workload after every measured iteration to flag disturbed periods (default true)."},
            "native_benchmark_s": {"type": "integer", "minimum": 0, "description": "Seconds of the toolchain's own benchmark tool (trtexec, xdputil benchmark) after measuring, reported beside mlbench's figures (default 0: none)."},
            "cool_down_band_c": {"type": "number", "minimum": 0, "description": "After the experiment, wait until the board's hottest temperature is within this many degrees C of its baseline (default 2)."},
            "cool_down_timeout_s": {"type": "number", "minimum": 0, "description": "The longest cool-down wait; 0 turns cool-down off (default 300)."},
            "cool_down_poll_s": {"type": "number", "exclusiveMinimum": 0, "description": "Seconds between temperature readings during cool-down (default 2)."},
            "scenario": {"enum": ["single_stream", "offline", "server"], "description": "How queries reach the model (MLPerf LoadGen's scenarios); single-stream is always measured (default single_stream)."},
            "scenario_queries": {"type": "integer", "minimum": 1, "description": "Queries of the offline run or of each server schedule (default 1000 offline, 2000 server)."},
            "server_target_latency_ms": {"type": "number", "exclusiveMinimum": 0, "description": "Server: the latency target of server_percentile, in ms (required for the server scenario)."},
            "server_percentile": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1, "description": "Server: the latency percentile held to the target (default 0.99)."},
            "server_rate_per_s": {"type": "number", "exclusiveMinimum": 0, "description": "Server: the Poisson arrival rate; without it, the highest rate meeting the target is searched."},
            "invocations": {"type": "integer", "minimum": 1, "maximum": 100, "description": "Runner processes measured one after the other, each with its own warm-up and a share of max_time_s; above 1 the result has an interval across them (default 1)."},
            "server_search_steps": {"type": "integer", "minimum": 1, "description": "Server: bisection steps of the rate search (default 5)."},
            "input_placement": {"enum": ["device", "host"], "description": "Where the inputs live while iterations are timed: placed once in the runtime's device memory, no data moved per iteration (device, the default), or handed over from host memory with the outputs taken back on every iteration (host). A runner that cannot place inputs on its device falls back to host; the result records both."}
          }
        },
        "semantic_preservation": {
          "type": "object", "required": ["metric"], "additionalProperties": false,
          "description": "When a deployed output counts as identical to the reference. 'threshold' is required for max_abs, cosine, l2 (largest distance) and psnr (lowest PSNR in dB); allclose (needs atol or rtol) and top_k (k, default 1) do not take one.",
          "properties": {
            "metric": {"type": "string", "enum": ["max_abs", "cosine", "l2", "psnr", "allclose", "top_k"]},
            "threshold": {"type": "number", "minimum": 0},
            "atol": {"type": "number", "minimum": 0, "description": "allclose: |d - r| <= atol + rtol * |r| for every element."},
            "rtol": {"type": "number", "minimum": 0, "description": "allclose: relative to the reference's |r|."},
            "k": {"type": "integer", "minimum": 1, "description": "top_k: how many of the largest elements must be the same set."},
            "labels": {
              "type": "object", "required": ["file", "output", "task"], "additionalProperties": false,
              "description": "Ground truth for accuracy metrics, computed for the deployed and the reference outputs.",
              "properties": {
                "file": {"type": "string", "description": "A .npy file with one label per sample, stacked like the inputs: class indices (classification) or targets shaped like the output (regression)."},
                "output": {"type": "string", "description": "The model output the labels are for."},
                "task": {"type": "string", "enum": ["classification", "regression"]}
              }
            }
          }
        }
      }
    }
    """#

    public static let inventory = #"""
    {
      "$schema": "https://json-schema.org/draft/2020-12/schema",
      "$id": "https://mlbench.dev/schemas/inventory.schema.json",
      "title": "mlbench lab inventory",
      "description": "The boards of the lab with their plugins, power outlets, probes and toolchains.",
      "type": "object",
      "required": ["boards", "toolchains"],
      "additionalProperties": false,
      "properties": {
        "plugin_paths": {"type": "array", "items": {"type": "string"}},
        "boards": {
          "type": "object", "minProperties": 1,
          "additionalProperties": {
            "type": "object", "required": ["plugin"], "additionalProperties": false,
            "properties": {
              "plugin": {"type": "string"},
              "kind": {"type": "string"},
              "settings": {"type": "object"},
              "power": {
                "type": "object", "required": ["switch", "outlet"], "additionalProperties": false,
                "properties": {
                  "switch": {"type": "string"},
                  "outlet": {"type": "string"},
                  "off_time_s": {"type": "number", "minimum": 0}
                }
              },
              "reset_timeout_s": {"type": "number", "exclusiveMinimum": 0}
            }
          }
        },
        "power_switches": {
          "type": "object",
          "additionalProperties": {
            "type": "object", "required": ["plugin"], "additionalProperties": false,
            "properties": {"plugin": {"type": "string"}, "kind": {"type": "string"}, "settings": {"type": "object"}}
          }
        },
        "probes": {
          "type": "object",
          "additionalProperties": {
            "type": "object", "required": ["plugin"], "additionalProperties": false,
            "properties": {"plugin": {"type": "string"}, "kind": {"type": "string"}, "settings": {"type": "object"},
                           "board": {"type": "string"}}
          }
        },
        "mlflow": {
          "type": "object", "additionalProperties": false,
          "properties": {"tracking_uri": {"type": "string"}, "experiment": {"type": "string", "minLength": 1}}
        },
        "toolchains": {
          "type": "object",
          "additionalProperties": {
            "type": "object", "required": ["plugin"], "additionalProperties": false,
            "properties": {"plugin": {"type": "string"}, "kind": {"type": "string"}, "settings": {"type": "object"}}
          }
        }
      }
    }
    """#

    public static let manifest = #"""
    {
      "$schema": "https://json-schema.org/draft/2020-12/schema",
      "$id": "https://mlbench.dev/schemas/manifest.schema.json",
      "title": "mlbench plugin manifest (plugin.yaml)",
      "description": "Read by the core without loading any code; must agree with the descriptor the library returns.",
      "type": "object",
      "required": ["name", "version", "abi_version", "library", "provides"],
      "additionalProperties": false,
      "properties": {
        "name": {"type": "string"},
        "version": {"type": "string"},
        "abi_version": {"type": "integer", "minimum": 1},
        "library": {"type": "string", "description": "The shared object, relative to the manifest."},
        "description": {"type": "string"},
        "requires": {
          "type": "object", "additionalProperties": false,
          "properties": {"libraries": {"type": "array", "items": {"type": "string"},
                                       "description": "System libraries (sonames) the plugin links."}}
        },
        "provides": {
          "type": "array", "minItems": 1,
          "items": {
            "type": "object", "required": ["role", "kind"], "additionalProperties": false,
            "properties": {
              "role": {"type": "string", "enum": ["toolchain", "board", "probe", "power_switch"]},
              "kind": {"type": "string"},
              "resets_itself": {"type": "boolean",
                                "description": "A board that reaches a clean state without a power switch (the host)."},
              "settings": {"type": "object", "additionalProperties": {"type": "string"},
                           "description": "The settings an inventory entry may give, each with what it means."},
              "usb_devices": {"type": "object", "additionalProperties": {"type": "string"},
                              "description": "USB devices the kind drives, as vvvv:pppp (hex) to a model name; 'mlbench devices scan' looks for them."},
              "gpio_chips": {"type": "boolean",
                             "description": "The kind drives GPIO lines; 'mlbench devices scan' offers it for each GPIO chip."},
              "environment": {
                "type": "object", "required": ["python"], "additionalProperties": false,
                "description": "A managed Python environment per toolchain version.",
                "properties": {
                  "python": {
                    "type": "object", "required": ["packages", "default_version"], "additionalProperties": false,
                    "properties": {
                      "default_version": {"type": "string"},
                      "packages": {"type": "array", "minItems": 1, "items": {"type": "string"},
                                   "description": "pip requirements; {version} stands for the version installed."}
                    }
                  }
                }
              }
            }
          }
        }
      }
    }
    """#
}

extension Schemas {
    /// The schema text without the indentation of its Swift literal, as published in Docs/schemas/.
    public static func normalized(_ text: String) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false).map { line in
            line.hasPrefix("    ") ? String(line.dropFirst(4)) : String(line)
        }.joined(separator: "\n")
    }
}
