import Foundation
import MLBench
import MLBenchCore

/// How `mlbench serve` runs: where it listens, the lab and store it serves, and its limits.
public struct ServiceConfiguration: Sendable {
    /// A loopback address (127.0.0.1, ::1, localhost): the service is reached through a
    /// reverse proxy or an SSH tunnel, never directly from the network.
    public var host = "127.0.0.1"
    /// 0: any free port (printed when the server is listening).
    public var port = 8080
    /// The store location (a postgres:// URL or an SQLite file).
    public var store: String
    /// The largest model file accepted, in bytes.
    public var maxModelBytes = 512 * 1024 * 1024
    /// The largest input (npy) file accepted, in bytes.
    public var maxInputBytes = 64 * 1024 * 1024
    /// The largest JSON request body accepted, in bytes.
    public var maxJSONBytes = 4 * 1024 * 1024
    /// How often server-sent event streams look at the store, in seconds.
    public var eventPoll: Double = 0.5
    /// How long a server-sent event stream lasts at most, in seconds (the client reconnects).
    public var eventStreamLimit: Double = 3600

    public init(store: String) { self.store = store }

    /// Whether `host` is a loopback address.
    public static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}

/// What every route shares: the lab, the configuration, and the store (one connection,
/// used by one request at a time: the store is not thread-safe, and SQLite serialises
/// writers anyway).
public final class LabService: Sendable {
    public let lab: Lab
    public let configuration: ServiceConfiguration
    let gate: StoreGate

    public init(lab: Lab, configuration: ServiceConfiguration, signer: sending BundleSigner?) throws {
        self.lab = lab
        self.configuration = configuration
        gate = try StoreGate(location: configuration.store, signer: signer)
    }

    /// Runs `body` with the store, alone.
    public func withStore<T: Sendable>(_ body: @escaping @Sendable (LabStore) throws -> T) async throws -> T {
        try await gate.run(body)
    }

    /// Where the service keeps each submitted experiment's folder (links to its uploaded files).
    public var submissions: URL { lab.home.root.appendingPathComponent("service/experiments", isDirectory: true) }
}

/// Serialises access to the one store connection, on a thread of its own: store calls
/// block (SQLite, PostgreSQL round trips, the compatibility checks of a submission), so they
/// stay off Swift's cooperative threads and the server's event loops.
final class StoreGate: Sendable {
    /// Touched only on `queue`.
    private struct Box: @unchecked Sendable { let store: LabStore }
    private let box: Box
    private let queue = DispatchQueue(label: "mlbench.serve.store")

    init(location: String, signer: sending BundleSigner?) throws {
        let store = try LabStore.open(location)
        store.signer = signer
        box = Box(store: store)
    }

    func run<T: Sendable>(_ body: @escaping @Sendable (LabStore) throws -> T) async throws -> T {
        let box = self.box
        return try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try body(box.store) }) }
        }
    }
}
