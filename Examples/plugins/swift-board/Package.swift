// swift-tools-version: 6.1
// An mlbench board plugin built out of tree: a package of its own that depends
// on mlbench only for MLBenchPluginKit, and produces one shared object,
// libmlbench-swift-board.so, which mlbench loads with dlopen (never links).
//
//   swift build -c release
//   MLBENCH_SOURCE=/path/to/mlbench swift build -c release   # mlbench checked out elsewhere
//
// See Docs/PluginGuide.md of mlbench.
import PackageDescription
import Foundation

/// Where the mlbench sources are: $MLBENCH_SOURCE, else this example's place
/// inside the mlbench repository (Examples/plugins/swift-board).
let mlbenchSource = Context.environment["MLBENCH_SOURCE"] ?? "../../.."

/// SwiftPM names a path dependency after its folder (lowercased), not after the
/// name in its manifest: a checkout in ~/src/mlbench is "mlbench", one in
/// /work/main is "main". Products are looked up by that identity.
let mlbenchIdentity: String = {
    let absolute = mlbenchSource.hasPrefix("/") ? mlbenchSource : Context.packageDirectory + "/" + mlbenchSource
    return URL(fileURLWithPath: absolute).standardizedFileURL.lastPathComponent.lowercased()
}()

let package = Package(
    name: "swift-board",
    platforms: [.macOS(.v14)],
    products: [
        // The library mlbench loads: lib<name>.so, named in plugin.yaml.
        .library(name: "mlbench-swift-board", type: .dynamic, targets: ["SwiftBoard"]),
    ],
    dependencies: [
        .package(path: mlbenchSource),
    ],
    targets: [
        .target(name: "SwiftBoard",
                dependencies: [.product(name: "MLBenchPluginKit", package: mlbenchIdentity)],
                path: "Sources/SwiftBoard"),
    ]
)
