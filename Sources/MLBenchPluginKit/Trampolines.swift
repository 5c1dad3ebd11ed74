import CMLBenchPlugin
import Foundation
import MLBenchCore

/// The object behind every `void *instance` a Swift plugin hands out.
final class InstanceBox {
    let object: AnyObject
    init(_ object: AnyObject) { self.object = object }
}

/// C entry points shared by every Swift plugin. C function pointers cannot
/// capture context, so each one finds its Swift object through the instance
/// pointer and decodes the JSON request into the protocol's message type.
enum Trampolines {
    static func create(_ configuration: UnsafePointer<CChar>?, _ instance: UnsafeMutablePointer<UnsafeMutableRawPointer?>?,
                       _ reply: UnsafeMutablePointer<mlb_reply>?) -> mlb_status {
        guard let instance else {
            return fail(reply, PluginFailure(.invalidRequest, "create() was called without an instance pointer"))
        }
        do {
            let text = configuration.map { String(cString: $0) } ?? "{}"
            let parsed: PluginConfiguration
            do {
                parsed = try JSONCoding.decode(PluginConfiguration.self, from: text)
            } catch {
                throw PluginFailure(.invalidConfiguration, "cannot read the configuration: \(error)")
            }
            guard let factory = PluginExport.factories[parsed.kind] else {
                let known = PluginExport.factories.keys.sorted().joined(separator: ", ")
                throw PluginFailure(.invalidConfiguration, "this plugin provides no kind '\(parsed.kind)' (it provides: \(known))")
            }
            let object = try factory.make(parsed)
            instance.pointee = Unmanaged.passRetained(InstanceBox(object)).toOpaque()
            return mlb_status(MLB_OK)
        } catch {
            return fail(reply, error)
        }
    }

    static func destroy(_ instance: UnsafeMutableRawPointer?) {
        guard let instance else { return }
        Unmanaged<InstanceBox>.fromOpaque(instance).release()
    }

    /// Decodes the request, calls `body` on the instance as `Object`, encodes the result.
    static func serve<Object, Request: Decodable, Response: Encodable>(
        _ instance: UnsafeMutableRawPointer?, _ request: UnsafePointer<CChar>?, _ reply: UnsafeMutablePointer<mlb_reply>?,
        as _: Object.Type, _ body: (Object, Request) throws -> Response
    ) -> mlb_status {
        do {
            let object = try unbox(instance, as: Object.self)
            let decoded: Request
            do {
                decoded = try JSONCoding.decode(Request.self, from: request.map { String(cString: $0) } ?? "{}")
            } catch {
                throw PluginFailure(.invalidRequest, "\(error)")
            }
            let response = try body(object, decoded)
            write(reply, try JSONCoding.encode(response))
            return mlb_status(MLB_OK)
        } catch {
            return fail(reply, error)
        }
    }

    static func unbox<Object>(_ instance: UnsafeMutableRawPointer?, as _: Object.Type) throws -> Object {
        guard let instance else { throw PluginFailure(.invalidRequest, "null instance") }
        let box = Unmanaged<InstanceBox>.fromOpaque(instance).takeUnretainedValue()
        guard let object = box.object as? Object else {
            throw PluginFailure(.invalidRequest, "the instance is a \(type(of: box.object)), not a \(Object.self)")
        }
        return object
    }

    static func write(_ reply: UnsafeMutablePointer<mlb_reply>?, _ text: String) {
        guard let reply, let writeFunction = reply.pointee.write else { return }
        var text = text
        text.withUTF8 { bytes in
            bytes.withMemoryRebound(to: CChar.self) { chars in
                writeFunction(reply, chars.baseAddress, chars.count)
            }
        }
    }

    static func fail(_ reply: UnsafeMutablePointer<mlb_reply>?, _ error: Error) -> mlb_status {
        if let failure = error as? PluginFailure {
            write(reply, failure.message)
            return failure.code.rawValue
        }
        write(reply, "\(error)")
        return PluginFailure.Code.failed.rawValue
    }
}

/// Lets a C sink pointer travel into the probe's delivery closure; the core
/// guarantees it stays valid until `stop` returns.
private struct SinkReference: @unchecked Sendable {
    let sink: UnsafeMutablePointer<mlb_sample_sink>
}

/// The role tables, one each for every Swift plugin.
enum Tables {
    nonisolated(unsafe) static let toolchain: UnsafeMutablePointer<mlb_toolchain_table> = allocate(mlb_toolchain_table(
        struct_size: UInt32(MemoryLayout<mlb_toolchain_table>.size),
        describe: { i, r, o in Trampolines.serve(i, r, o, as: (any Toolchain).self) { (t, _: Empty) in try t.describe() } },
        check: { i, r, o in Trampolines.serve(i, r, o, as: (any Toolchain).self) { (t, q: CompatibilityRequest) in try t.check(q) } },
        build: { i, r, o in Trampolines.serve(i, r, o, as: (any Toolchain).self) { (t, q: BuildRequest) in try t.build(q) } },
        runner: { i, r, o in Trampolines.serve(i, r, o, as: (any Toolchain).self) { (t, q: RunnerRequest) in try t.runner(q) } }))

    nonisolated(unsafe) static let board: UnsafeMutablePointer<mlb_board_table> = allocate(mlb_board_table(
        struct_size: UInt32(MemoryLayout<mlb_board_table>.size),
        describe: { i, r, o in Trampolines.serve(i, r, o, as: (any Board).self) { (b, _: Empty) in try b.describe() } },
        reset: { i, r, o in Trampolines.serve(i, r, o, as: (any Board).self) { (b, q: ResetRequest) in try b.reset(q) } },
        conditions: { i, r, o in Trampolines.serve(i, r, o, as: (any Board).self) { (b, q: ConditionsRequest) in try b.conditions(q) } },
        deploy: { i, r, o in Trampolines.serve(i, r, o, as: (any Board).self) { (b, q: DeployRequest) in try b.deploy(q) } },
        start_runner: { i, r, o in Trampolines.serve(i, r, o, as: (any Board).self) { (b, q: RunnerLaunch) in try b.startRunner(q) } },
        exchange: { i, r, o in Trampolines.serve(i, r, o, as: (any Board).self) { (b, q: RunnerExchange) in try b.exchange(q) } },
        stop_runner: { i, r, o in Trampolines.serve(i, r, o, as: (any Board).self) { (b, q: RunnerStop) in try b.stopRunner(q) } },
        fetch: { i, r, o in Trampolines.serve(i, r, o, as: (any Board).self) { (b, q: FetchRequest) in try b.fetch(q); return Empty() } },
        cleanup: { i, r, o in Trampolines.serve(i, r, o, as: (any Board).self) { (b, q: CleanupRequest) in try b.cleanup(q); return Empty() } }))

    nonisolated(unsafe) static let probe: UnsafeMutablePointer<mlb_probe_table> = allocate(mlb_probe_table(
        struct_size: UInt32(MemoryLayout<mlb_probe_table>.size),
        describe: { i, r, o in Trampolines.serve(i, r, o, as: (any Probe).self) { (p, _: Empty) in try p.describe() } },
        start: { i, r, sink, o in
            guard let sink else { return Trampolines.fail(o, PluginFailure(.invalidRequest, "start() needs a sample sink")) }
            let reference = SinkReference(sink: sink)
            return Trampolines.serve(i, r, o, as: (any Probe).self) { (p, _: Empty) -> Empty in
                try p.start { samples in
                    var converted = samples.map { mlb_sample(timestamp_ns: $0.timestampNs, channel: $0.channel, value: $0.value) }
                    converted.withUnsafeMutableBufferPointer { buffer in
                        reference.sink.pointee.deliver?(reference.sink, buffer.baseAddress, buffer.count)
                    }
                }
                return Empty()
            }
        },
        stop: { i, r, o in Trampolines.serve(i, r, o, as: (any Probe).self) { (p, _: Empty) in try p.stop(); return Empty() } }))

    nonisolated(unsafe) static let powerSwitch: UnsafeMutablePointer<mlb_power_switch_table> = allocate(mlb_power_switch_table(
        struct_size: UInt32(MemoryLayout<mlb_power_switch_table>.size),
        describe: { i, r, o in Trampolines.serve(i, r, o, as: (any PowerSwitch).self) { (s, _: Empty) in try s.describe() } },
        set: { i, r, o in Trampolines.serve(i, r, o, as: (any PowerSwitch).self) { (s, q: OutletCommand) in try s.set(q); return Empty() } },
        state: { i, r, o in Trampolines.serve(i, r, o, as: (any PowerSwitch).self) { (s, q: OutletQuery) in try s.state(q) } }))

    private static func allocate<T>(_ value: T) -> UnsafeMutablePointer<T> {
        let pointer = UnsafeMutablePointer<T>.allocate(capacity: 1)
        pointer.initialize(to: value)
        return pointer
    }
}
