import CMLBenchPlugin
import Foundation
import MLBenchCore

/// Collects what a plugin writes through an `mlb_reply`.
private final class ReplyBuffer {
    var bytes = [UInt8]()
    var text: String { String(decoding: bytes, as: UTF8.self) }
}

/// One instance made by a plugin factory, and the calls into its table. The
/// role proxies below turn the protocol's methods into these calls.
public class PluginInstance: @unchecked Sendable {
    public let plugin: LoadedPlugin
    public let kind: String
    let factory: UnsafePointer<mlb_factory>
    let instance: UnsafeMutableRawPointer
    let lock = NSLock()

    init(plugin: LoadedPlugin, role: Role, kind: String?, configuration: PluginConfiguration) throws {
        self.plugin = plugin
        let factory = try plugin.factory(role: role, kind: kind)
        self.factory = factory
        let factoryKind = factory.pointee.kind.map { String(cString: $0) } ?? ""
        self.kind = factoryKind
        var configuration = configuration
        configuration.kind = factoryKind
        let request = try JSONCoding.encode(configuration)
        var created: UnsafeMutableRawPointer?
        let (status, reply) = PluginInstance.withReply { reply in factory.pointee.create?(request, &created, reply) ?? Int32(MLB_ERROR_UNSUPPORTED) }
        guard status == MLB_OK, let created else {
            throw PluginError.call(plugin: plugin.name, kind: factoryKind, operation: "create",
                                   failure: PluginFailure(PluginFailure.Code(rawValue: status) ?? .failed, reply))
        }
        instance = created
    }

    deinit {
        factory.pointee.destroy?(instance)
    }

    /// Calls `operation` with `request` encoded as JSON and decodes its reply.
    func call<Request: Encodable, Response: Decodable>(_ name: String, _ operation: mlb_operation?, _ request: Request) throws -> Response {
        let failure = { (failure: PluginFailure) in PluginError.call(plugin: self.plugin.name, kind: self.kind, operation: name, failure: failure) }
        guard let operation else { throw failure(PluginFailure(.unsupported, "the plugin does not implement \(name)")) }
        let text = try JSONCoding.encode(request)
        // Plugin instances are not required to be thread-safe: one call at a time.
        lock.lock()
        let (status, reply) = PluginInstance.withReply { reply in operation(instance, text, reply) }
        lock.unlock()
        guard status == MLB_OK else {
            throw failure(PluginFailure(PluginFailure.Code(rawValue: status) ?? .failed, reply))
        }
        do {
            return try JSONCoding.decode(Response.self, from: reply.isEmpty ? "{}" : reply)
        } catch {
            throw failure(PluginFailure(.failed, "unreadable reply '\(reply.prefix(200))': \(error)"))
        }
    }

    static func withReply(_ body: (UnsafeMutablePointer<mlb_reply>) -> mlb_status) -> (mlb_status, String) {
        let buffer = ReplyBuffer()
        var reply = mlb_reply(context: Unmanaged.passUnretained(buffer).toOpaque(), write: { reply, bytes, length in
            guard let reply, let context = reply.pointee.context, let bytes, length > 0 else { return }
            let buffer = Unmanaged<ReplyBuffer>.fromOpaque(context).takeUnretainedValue()
            bytes.withMemoryRebound(to: UInt8.self, capacity: length) { buffer.bytes.append(contentsOf: UnsafeBufferPointer(start: $0, count: length)) }
        })
        let status = withExtendedLifetime(buffer) { body(&reply) }
        return (status, buffer.text)
    }

    /// The role's table, after checking that it is as large as this core expects.
    static func table<Table>(_ factory: UnsafePointer<mlb_factory>, _ plugin: LoadedPlugin, role: Role, as _: Table.Type) throws -> UnsafePointer<Table> {
        guard let raw = factory.pointee.table else {
            throw PluginError.tableTooSmall(plugin: plugin.name, role: role, size: 0, expected: UInt32(MemoryLayout<Table>.size))
        }
        let size = raw.load(as: UInt32.self)
        guard size >= MemoryLayout<Table>.size else {
            throw PluginError.tableTooSmall(plugin: plugin.name, role: role, size: size, expected: UInt32(MemoryLayout<Table>.size))
        }
        return raw.assumingMemoryBound(to: Table.self)
    }
}

/// A toolchain implemented by a plugin.
public final class PluginToolchain: PluginInstance, Toolchain, @unchecked Sendable {
    private let table: UnsafePointer<mlb_toolchain_table>
    /// The managed environment the toolchain runs in (its exact package versions), if it has one.
    public let environment: ToolchainEnvironments.Record?

    public init(plugin: LoadedPlugin, kind: String?, configuration: PluginConfiguration,
                environment: ToolchainEnvironments.Record? = nil) throws {
        self.environment = environment
        let factory = try plugin.factory(role: .toolchain, kind: kind)
        table = try PluginInstance.table(factory, plugin, role: .toolchain, as: mlb_toolchain_table.self)
        try super.init(plugin: plugin, role: .toolchain, kind: kind, configuration: configuration)
    }

    public func describe() throws -> ToolchainDescription { try call("describe", table.pointee.describe, Empty()) }
    public func check(_ request: CompatibilityRequest) throws -> CompatibilityReport { try call("check", table.pointee.check, request) }
    public func build(_ request: BuildRequest) throws -> BuildResult { try call("build", table.pointee.build, request) }
    public func runner(_ request: RunnerRequest) throws -> RunnerSpec { try call("runner", table.pointee.runner, request) }
}

/// A board implemented by a plugin.
public final class PluginBoard: PluginInstance, Board, @unchecked Sendable {
    private let table: UnsafePointer<mlb_board_table>

    public init(plugin: LoadedPlugin, kind: String?, configuration: PluginConfiguration) throws {
        let factory = try plugin.factory(role: .board, kind: kind)
        table = try PluginInstance.table(factory, plugin, role: .board, as: mlb_board_table.self)
        try super.init(plugin: plugin, role: .board, kind: kind, configuration: configuration)
    }

    public func describe() throws -> BoardDescription { try call("describe", table.pointee.describe, Empty()) }
    public func reset(_ request: ResetRequest) throws -> ResetReport { try call("reset", table.pointee.reset, request) }
    public func conditions(_ request: ConditionsRequest) throws -> ConditionsReport { try call("conditions", table.pointee.conditions, request) }
    public func deploy(_ request: DeployRequest) throws -> Deployment { try call("deploy", table.pointee.deploy, request) }
    public func startRunner(_ request: RunnerLaunch) throws -> RunnerSession { try call("start_runner", table.pointee.start_runner, request) }
    public func exchange(_ request: RunnerExchange) throws -> RunnerExchangeReply { try call("exchange", table.pointee.exchange, request) }
    public func stopRunner(_ request: RunnerStop) throws -> RunnerExit { try call("stop_runner", table.pointee.stop_runner, request) }
    public func fetch(_ request: FetchRequest) throws { let _: Empty = try call("fetch", table.pointee.fetch, request) }
    public func cleanup(_ request: CleanupRequest) throws { let _: Empty = try call("cleanup", table.pointee.cleanup, request) }
}

/// A power switch implemented by a plugin.
public final class PluginPowerSwitch: PluginInstance, PowerSwitch, @unchecked Sendable {
    private let table: UnsafePointer<mlb_power_switch_table>

    public init(plugin: LoadedPlugin, kind: String?, configuration: PluginConfiguration) throws {
        let factory = try plugin.factory(role: .powerSwitch, kind: kind)
        table = try PluginInstance.table(factory, plugin, role: .powerSwitch, as: mlb_power_switch_table.self)
        try super.init(plugin: plugin, role: .powerSwitch, kind: kind, configuration: configuration)
    }

    public func describe() throws -> PowerSwitchDescription { try call("describe", table.pointee.describe, Empty()) }
    public func set(_ request: OutletCommand) throws { let _: Empty = try call("set", table.pointee.set, request) }
    public func state(_ request: OutletQuery) throws -> OutletState { try call("state", table.pointee.state, request) }
}

/// A probe implemented by a plugin; samples arrive through the C sink.
public final class PluginProbe: PluginInstance, Probe, @unchecked Sendable {
    private let table: UnsafePointer<mlb_probe_table>
    private var sink: UnsafeMutablePointer<mlb_sample_sink>?

    public init(plugin: LoadedPlugin, kind: String?, configuration: PluginConfiguration) throws {
        let factory = try plugin.factory(role: .probe, kind: kind)
        table = try PluginInstance.table(factory, plugin, role: .probe, as: mlb_probe_table.self)
        try super.init(plugin: plugin, role: .probe, kind: kind, configuration: configuration)
    }

    private final class Delivery {
        let deliver: @Sendable ([ProbeSample]) -> Void
        init(_ deliver: @escaping @Sendable ([ProbeSample]) -> Void) { self.deliver = deliver }
    }

    public func describe() throws -> ProbeDescription { try call("describe", table.pointee.describe, Empty()) }

    public func start(_ deliver: @escaping @Sendable ([ProbeSample]) -> Void) throws {
        guard let start = table.pointee.start else {
            throw PluginError.call(plugin: plugin.name, kind: kind, operation: "start", failure: PluginFailure(.unsupported, "no start"))
        }
        let sink = UnsafeMutablePointer<mlb_sample_sink>.allocate(capacity: 1)
        sink.initialize(to: mlb_sample_sink(context: Unmanaged.passRetained(Delivery(deliver)).toOpaque(), deliver: { sink, samples, count in
            guard let sink, let context = sink.pointee.context, let samples else { return }
            let delivery = Unmanaged<Delivery>.fromOpaque(context).takeUnretainedValue()
            delivery.deliver((0..<count).map { ProbeSample(timestampNs: samples[$0].timestamp_ns, channel: samples[$0].channel, value: samples[$0].value) })
        }))
        let (status, reply) = PluginInstance.withReply { reply in start(instance, "{}", sink, reply) }
        guard status == MLB_OK else {
            release(sink)
            throw PluginError.call(plugin: plugin.name, kind: kind, operation: "start",
                                   failure: PluginFailure(PluginFailure.Code(rawValue: status) ?? .failed, reply))
        }
        self.sink = sink
    }

    public func stop() throws {
        defer {
            if let sink { release(sink) }
            sink = nil
        }
        let _: Empty = try call("stop", table.pointee.stop, Empty())
    }

    private func release(_ sink: UnsafeMutablePointer<mlb_sample_sink>) {
        if let context = sink.pointee.context { Unmanaged<Delivery>.fromOpaque(context).release() }
        sink.deinitialize(count: 1)
        sink.deallocate()
    }
}
