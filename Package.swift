// swift-tools-version: 6.1
import PackageDescription

// Layout (see ../shared/DESIGN.md):
//   Sources/  the core, the plugin kit, the lab (config, loader, measurement, store) and the CLI
//   Drivers/  thin wrappers over C libraries (SQLite, OpenSSL)
//   Plugins/  board and toolchain plugins, one folder each, built as shared objects
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
        .library(name: "mlbench-tflite", type: .dynamic, targets: ["TFLitePlugin"]),
        .library(name: "mlbench-jetson", type: .dynamic, targets: ["JetsonBoardPlugin"]),
        .library(name: "mlbench-zynq", type: .dynamic, targets: ["ZynqBoardPlugin"]),
        .library(name: "mlbench-tc3xx", type: .dynamic, targets: ["TC3xxBoardPlugin"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
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
        // Serial ports (termios): board consoles and UART harnesses.
        .target(name: "SerialDriver", path: "Drivers/Serial"),

        // The core: the four protocols and the domain types. No vendor, no C library.
        .target(name: "MLBenchCore", path: "Sources/MLBenchCore"),
        // Turns Swift types conforming to the core protocols into C ABI tables.
        .target(name: "MLBenchPluginKit", dependencies: ["MLBenchCore", "CMLBenchPlugin"],
                path: "Sources/MLBenchPluginKit", exclude: ["python"]),
        // The lab: configuration files, plugin loader, isolation manager, statistics, store.
        .target(name: "MLBench",
                dependencies: ["MLBenchCore", "CMLBenchPlugin", "SQLiteDriver", "OpenSSLDriver",
                               .product(name: "Yams", package: "Yams")],
                path: "Sources/MLBench"),
        .executableTarget(name: "mlbench",
                          dependencies: ["MLBench", .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          path: "Sources/mlbench"),

        // In-tree plugins.
        .target(name: "HostBoardPlugin", dependencies: ["MLBenchPluginKit"], path: "Plugins/host/Sources"),
        .target(name: "ONNXRuntimePlugin", dependencies: ["MLBenchPluginKit"], path: "Plugins/onnxruntime/Sources"),
        .target(name: "TVMPlugin", dependencies: ["MLBenchPluginKit"], path: "Plugins/tvm/Sources"),
        .target(name: "TFLitePlugin", dependencies: ["MLBenchPluginKit"], path: "Plugins/tflite/Sources"),
        // What the Linux board plugins (Jetson, Zynq) share: the SSH transport and the remote runner host.
        .target(name: "LinuxBoardKit", dependencies: ["MLBenchPluginKit", "SerialDriver"], path: "Plugins/LinuxBoardKit/Sources"),
        // Board plugins: the board in one module (linked by the tests), the exported entry in another.
        .target(name: "JetsonBoard", dependencies: ["LinuxBoardKit"], path: "Plugins/jetson/Sources"),
        .target(name: "JetsonBoardPlugin", dependencies: ["JetsonBoard"], path: "Plugins/jetson/Entry"),
        .target(name: "ZynqBoard", dependencies: ["LinuxBoardKit"], path: "Plugins/zynq/Sources"),
        .target(name: "ZynqBoardPlugin", dependencies: ["ZynqBoard"], path: "Plugins/zynq/Entry"),
        // AURIX TC3xx: the UART harness client, ELF memory usage; the harness C source is in Plugins/tc3xx/harness.
        .target(name: "TC3xxBoard", dependencies: ["MLBenchPluginKit", "SerialDriver"], path: "Plugins/tc3xx/Sources"),
        .target(name: "TC3xxBoardPlugin", dependencies: ["TC3xxBoard"], path: "Plugins/tc3xx/Entry"),

        // Measurement-methodology benchmarks (scripts/bench): programs that print figures.
        .executableTarget(name: "mlbench-bench", dependencies: ["MLBench"], path: "Benchmarks/MLBenchBenchmarks"),

        .testTarget(name: "MLBenchTests", dependencies: ["MLBench", "MLBenchCore", "SQLiteDriver", "OpenSSLDriver",
                                                         "MLBenchPluginKit", "LinuxBoardKit", "JetsonBoard", "ZynqBoard", "TC3xxBoard", "SerialDriver"],
                    path: "Tests/MLBenchTests"),
    ]
)
