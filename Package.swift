// swift-tools-version: 6.1
import PackageDescription

// Layout (see ../shared/DESIGN.md):
//   Sources/  the core, the plugin kit, the lab (config, loader, measurement, store) and the CLI
//   Drivers/  thin wrappers over C libraries (SQLite, OpenSSL, libusb, libgpiod, libftdi)
//   Plugins/  board, toolchain and power-switch plugins, one folder each, built as shared objects
//   Probes/   probe plugins, one folder per device family
let package = Package(
    name: "mlbench",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "mlbench", targets: ["mlbench"]),
        // What an out-of-tree Swift plugin depends on.
        .library(name: "MLBenchPluginKit", targets: ["MLBenchPluginKit"]),
        // In-tree plugins: each is a shared object loaded by dlopen, never linked.
        .library(name: "mlbench-host", type: .dynamic, targets: ["HostBoardPlugin"]),
        .library(name: "mlbench-onnxruntime", type: .dynamic, targets: ["ONNXRuntimePlugin"]),
        .library(name: "mlbench-tvm", type: .dynamic, targets: ["TVMPlugin"]),
        .library(name: "mlbench-tensorrt", type: .dynamic, targets: ["TensorRTPlugin"]),
        .library(name: "mlbench-vitis-ai", type: .dynamic, targets: ["VitisAIPlugin"]),
        // Bench hardware: probes (Probes/) and power switches (Plugins/).
        .library(name: "mlbench-fnirsi", type: .dynamic, targets: ["FNIRSIProbePlugin"]),
        .library(name: "mlbench-usbrelay", type: .dynamic, targets: ["HIDRelayPlugin"]),
        .library(name: "mlbench-gpio-relay", type: .dynamic, targets: ["GPIORelayPlugin"]),
        .library(name: "mlbench-command-outlet", type: .dynamic, targets: ["CommandOutletPlugin"]),
        .library(name: "mlbench-host-probes", type: .dynamic, targets: ["HostProbesPlugin"]),
        .library(name: "mlbench-ftdi-relay", type: .dynamic, targets: ["FTDIRelayPlugin"]),
        .library(name: "mlbench-ina2xx", type: .dynamic, targets: ["INA2xxProbePlugin"]),
        .library(name: "mlbench-ykush", type: .dynamic, targets: ["YKUSHPlugin"]),
        .library(name: "mlbench-tflite", type: .dynamic, targets: ["TFLitePlugin"]),
        .library(name: "mlbench-jetson", type: .dynamic, targets: ["JetsonBoardPlugin"]),
        .library(name: "mlbench-zynq", type: .dynamic, targets: ["ZynqBoardPlugin"]),
        .library(name: "mlbench-tc3xx", type: .dynamic, targets: ["TC3xxBoardPlugin"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        // The shared store of several bench hosts (PostgreSQL).
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        // Imported directly by the PostgreSQL store (futures, logger); postgres-nio needs them anyway.
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        // mlbench serve: the REST API, server-sent events, /metrics.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
    ],
    targets: [
        // The versioned C ABI between the core and plugins (one header).
        .target(name: "CMLBenchPlugin", path: "Sources/CMLBenchPlugin"),

        // Drivers: C libraries from Debian and their Swift wrappers.
        .systemLibrary(name: "CSQLite", path: "Drivers/CSQLite", pkgConfig: "sqlite3",
                       providers: [.apt(["libsqlite3-dev"])]),
        .target(name: "SQLiteDriver", dependencies: ["CSQLite"], path: "Drivers/SQLite"),
        .systemLibrary(name: "COpenSSL", path: "Drivers/COpenSSL", pkgConfig: "libcrypto",
                       providers: [.apt(["libssl-dev"])]),
        .target(name: "OpenSSLDriver", dependencies: ["COpenSSL"], path: "Drivers/OpenSSL"),
        .systemLibrary(name: "CLibUSB", path: "Drivers/CLibUSB", pkgConfig: "libusb-1.0",
                       providers: [.apt(["libusb-1.0-0-dev"])]),
        .target(name: "USBDriver", dependencies: ["CLibUSB"], path: "Drivers/USB"),
        // libgpiod v1 (Debian bookworm ships 1.6): the chip/line API.
        .systemLibrary(name: "CGPIOD", path: "Drivers/CGPIOD", pkgConfig: "libgpiod",
                       providers: [.apt(["libgpiod-dev"])]),
        .target(name: "GPIODriver", dependencies: ["CGPIOD"], path: "Drivers/GPIO"),
        .systemLibrary(name: "CFTDI", path: "Drivers/CFTDI", pkgConfig: "libftdi1",
                       providers: [.apt(["libftdi1-dev"])]),
        .target(name: "FTDIDriver", dependencies: ["CFTDI"], path: "Drivers/FTDI"),
        // Serial ports (termios): board consoles and UART harnesses.
        .target(name: "SerialDriver", path: "Drivers/Serial"),
        // perf_event_open(2): a header-only binding (the syscall has no libc wrapper).
        .systemLibrary(name: "CPerfEvent", path: "Drivers/CPerfEvent"),
        .target(name: "PerfDriver", dependencies: ["CPerfEvent"], path: "Drivers/Perf"),

        // The core: the four protocols and the domain types. No vendor, no C library.
        .target(name: "MLBenchCore", path: "Sources/MLBenchCore"),
        // Turns Swift types conforming to the core protocols into C ABI tables.
        .target(name: "MLBenchPluginKit", dependencies: ["MLBenchCore", "CMLBenchPlugin"],
                path: "Sources/MLBenchPluginKit", exclude: ["python"]),
        // The lab: configuration files, plugin loader, isolation manager, statistics, store.
        .target(name: "MLBench",
                dependencies: ["MLBenchCore", "CMLBenchPlugin", "SQLiteDriver", "OpenSSLDriver", "USBDriver", "GPIODriver",
                               .product(name: "Yams", package: "Yams"),
                               .product(name: "PostgresNIO", package: "postgres-nio"),
                               .product(name: "NIOCore", package: "swift-nio"),
                               .product(name: "Logging", package: "swift-log")],
                path: "Sources/MLBench"),
        // The service (mlbench serve): users, tokens, sharing, uploads, the REST API and its OpenAPI document.
        .target(name: "MLBenchService",
                dependencies: ["MLBench", "OpenSSLDriver",
                               .product(name: "Hummingbird", package: "hummingbird"),
                               .product(name: "Yams", package: "Yams"),
                               .product(name: "Logging", package: "swift-log")],
                path: "Sources/MLBenchService",
                // The web panel's pages, styles and scripts, served by PanelRoutes.
                resources: [.copy("Panel")]),
        .executableTarget(name: "mlbench",
                          dependencies: ["MLBench", "MLBenchService", .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          path: "Sources/mlbench"),

        // In-tree plugins.
        .target(name: "HostBoardPlugin", dependencies: ["MLBenchPluginKit"], path: "Plugins/host/Sources"),
        .target(name: "ONNXRuntimePlugin", dependencies: ["MLBenchPluginKit"], path: "Plugins/onnxruntime/Sources"),
        .target(name: "TVMPlugin", dependencies: ["MLBenchPluginKit"], path: "Plugins/tvm/Sources"),
        .target(name: "TensorRTPlugin", dependencies: ["MLBenchPluginKit"], path: "Plugins/tensorrt/Sources"),
        .target(name: "VitisAIPlugin", dependencies: ["MLBenchPluginKit", "MLBenchCore"], path: "Plugins/vitis-ai/Sources"),
        .target(name: "TFLitePlugin", dependencies: ["MLBenchPluginKit"], path: "Plugins/tflite/Sources"),
        // What the Linux board plugins (Jetson, Zynq) share: the SSH transport and the remote runner host.
        .target(name: "LinuxBoardKit", dependencies: ["MLBenchPluginKit", "MLBenchDeviceKit", "SerialDriver"], path: "Plugins/LinuxBoardKit/Sources"),
        // Board plugins: the board in one module (linked by the tests), the exported entry in another.
        .target(name: "JetsonBoard", dependencies: ["LinuxBoardKit", "MLBenchDeviceKit"], path: "Plugins/jetson/Sources"),
        .target(name: "JetsonBoardPlugin", dependencies: ["JetsonBoard"], path: "Plugins/jetson/Entry"),
        .target(name: "ZynqBoard", dependencies: ["LinuxBoardKit"], path: "Plugins/zynq/Sources"),
        .target(name: "ZynqBoardPlugin", dependencies: ["ZynqBoard"], path: "Plugins/zynq/Entry"),
        // AURIX TC3xx: the UART harness client, ELF memory usage; the harness C source is in Plugins/tc3xx/harness.
        .target(name: "TC3xxBoard", dependencies: ["MLBenchPluginKit", "SerialDriver"], path: "Plugins/tc3xx/Sources"),
        .target(name: "TC3xxBoardPlugin", dependencies: ["TC3xxBoard"], path: "Plugins/tc3xx/Entry"),

        // What device plugins share: probe streaming, relay banks, USB device selection.
        .target(name: "MLBenchDeviceKit", dependencies: ["MLBenchPluginKit", "USBDriver"], path: "Plugins/DeviceKit"),
        // Device families, split as libsigrok does: a pure protocol part and the device part.
        .target(name: "FNIRSIProtocol", path: "Probes/fnirsi/Sources/Protocol"),
        .target(name: "FNIRSIProbePlugin", dependencies: ["MLBench", "MLBenchCore", "FNIRSIProtocol", "HIDRelayProtocol", "MLBenchDeviceKit", "USBDriver"],
                path: "Probes/fnirsi/Sources/Plugin"),
        .target(name: "HIDRelayProtocol", path: "Plugins/usbrelay/Sources/Protocol"),
        .target(name: "HIDRelayPlugin", dependencies: ["HIDRelayProtocol", "MLBenchDeviceKit", "USBDriver"],
                path: "Plugins/usbrelay/Sources/Plugin"),
        .target(name: "GPIORelayPlugin", dependencies: ["MLBenchDeviceKit", "GPIODriver"], path: "Plugins/gpio-relay/Sources"),
        .target(name: "CommandOutletPlugin", dependencies: ["MLBenchPluginKit"], path: "Plugins/command-outlet/Sources"),
        .target(name: "FTDIRelayPlugin", dependencies: ["MLBenchDeviceKit", "FTDIDriver"], path: "Plugins/ftdi-relay/Sources"),
        .target(name: "INA2xxProtocol", path: "Probes/ina2xx/Sources/Protocol"),
        .target(name: "INA2xxProbePlugin", dependencies: ["INA2xxProtocol", "MLBenchDeviceKit", "FTDIDriver"],
                path: "Probes/ina2xx/Sources/Plugin"),
        .target(name: "YKUSHProtocol", path: "Plugins/ykush/Sources/Protocol"),
        .target(name: "YKUSHPlugin", dependencies: ["YKUSHProtocol", "MLBenchDeviceKit", "USBDriver"], path: "Plugins/ykush/Sources/Plugin"),
        .target(name: "HostSensors", path: "Probes/host/Sources/Sensors"),
        .target(name: "HostProbesPlugin", dependencies: ["HostSensors", "MLBenchDeviceKit", "PerfDriver"],
                path: "Probes/host/Sources/Plugin"),

        // Measurement-methodology benchmarks (scripts/bench): programs that print figures.
        .executableTarget(name: "mlbench-bench", dependencies: ["MLBench"], path: "Benchmarks/MLBenchBenchmarks"),
        // Probe pipeline throughput on a replayed stream (scripts/bench).
        .executableTarget(name: "mlbench-probe-bench", dependencies: ["FNIRSIProtocol", "MLBenchDeviceKit"],
                          path: "Benchmarks/ProbePipeline"),

        .testTarget(name: "MLBenchTests", dependencies: ["MLBench", "MLBenchCore", "MLBenchService", "SQLiteDriver", "OpenSSLDriver",
                                                         "MLBenchPluginKit", "LinuxBoardKit", "JetsonBoard", "ZynqBoard", "TC3xxBoard", "SerialDriver",
                                                         .product(name: "Yams", package: "Yams")],
                    path: "Tests/MLBenchTests"),
        // Emulated USB devices behind umockdev (usbdevfs ioctl handlers), and the
        // program that drives plugins against them under umockdev-wrapper.
        .systemLibrary(name: "CUMockdev", path: "Tests/USBEmulation/CUMockdev", pkgConfig: "umockdev-1.0",
                       providers: [.apt(["libumockdev-dev"])]),
        .target(name: "USBEmulators", dependencies: ["CUMockdev"], path: "Tests/USBEmulation/Emulators"),
        .executableTarget(name: "mlbench-usb-emulation", dependencies: ["USBEmulators", "MLBench", "MLBenchCore", "FNIRSIProtocol"],
                          path: "Tests/USBEmulation/Runner"),
        // Drivers and device plugins: protocols from bytes, devices against emulated ones.
        .testTarget(name: "DeviceTests", dependencies: ["MLBench", "MLBenchCore", "FNIRSIProtocol", "HIDRelayProtocol", "MLBenchDeviceKit", "USBDriver", "GPIODriver", "FTDIDriver",
                                   "HostSensors", "PerfDriver", "INA2xxProtocol", "YKUSHProtocol", "SerialDriver"],
                    path: "Tests/DeviceTests"),
    ]
)
