import FNIRSIProtocol
import Foundation
import MLBenchDeviceKit
import MLBenchPluginKit
import USBDriver

/// A FNIRSI USB meter (FNB48, C1, FNB48S, FNB58) as a probe: the device part,
/// moving the protocol's bytes over libusb interrupt transfers.
final class FNIRSIMeter: Probe, @unchecked Sendable {
    struct Settings: Decodable {
        /// Selects one meter when several are connected.
        var serial: String?
        /// Only this model ("FNB58", "FNB48S", "FNB48", "C1").
        var model: String?
        /// How long without a report before the meter is declared gone (default 3 s).
        var silenceTimeoutS: Double?
    }

    static let knownSettings: Set<String> = ["serial", "model", "silence_timeout_s"]

    private let context: USBContext
    private let handle: USBDeviceHandle
    private let model: FNIRSIModel
    private let interface: UInt8
    private let inEndpoint: UInt8
    private let outEndpoint: UInt8
    private let silenceTimeoutNs: Int64
    private let slot = ProbeStreamSlot()

    init(_ configuration: PluginConfiguration) throws {
        let settings = try configuration.decodeSettings(Settings.self, known: FNIRSIMeter.knownSettings)
        var models = FNIRSIModel.allCases
        if let name = settings.model {
            guard let model = FNIRSIModel.allCases.first(where: { $0.rawValue.lowercased() == name.lowercased() }) else {
                throw PluginFailure(.invalidConfiguration,
                                    "setting 'model': '\(name)' is not a FNIRSI model this probe knows (\(FNIRSIModel.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            models = [model]
        }
        if let timeout = settings.silenceTimeoutS, !(timeout > 0) {
            throw PluginFailure(.invalidConfiguration, "setting 'silence_timeout_s': must be above 0, got \(timeout)")
        }
        silenceTimeoutNs = Int64((settings.silenceTimeoutS ?? 3) * 1e9)
        do {
            context = try USBContext()
        } catch {
            throw PluginFailure(.device, "\(error)")
        }
        let ids = Dictionary(uniqueKeysWithValues: models.map { (USBID(vendor: $0.vendorID, product: $0.productID), "FNIRSI \($0.rawValue)") })
        handle = try USBSelection.open("FNIRSI meter", ids: ids, serial: settings.serial, context: context)
        model = FNIRSIModel(vendorID: handle.device.id.vendor, productID: handle.device.id.product)!
        // The HID interface with an interrupt endpoint each way carries the reports.
        (interface, inEndpoint, outEndpoint) = try USBSelection.claimInterruptPair(handle)
    }

    func describe() throws -> ProbeDescription {
        ProbeDescription(channels: FNIRSIChannel.allCases.map { ProbeChannel(name: $0.name, unit: $0.unit) },
                         rateHz: FNIRSIProtocol.sampleRateHz)
    }

    func start(_ deliver: @escaping @Sendable ([ProbeSample]) -> Void) throws {
        let stream = try slot.open(device: handle.label)
        do {
            for packet in model.startSequence { try handle.interruptWrite(endpoint: outEndpoint, packet, timeoutMs: 1000) }
        } catch {
            try? slot.close()
            throw PluginFailure(.device, "\(error)")
        }
        var decoder = FNIRSIStreamDecoder()
        var buffer = [UInt8](repeating: 0, count: FNIRSIProtocol.reportLength)
        let keepAliveNs = Int64(model.keepAliveInterval * 1e9)
        var nextKeepAlive = monotonicNanoseconds() + keepAliveNs
        var lastReport = monotonicNanoseconds()
        let handle = handle, inEndpoint = inEndpoint, outEndpoint = outEndpoint, silence = silenceTimeoutNs
        stream.start(deliver: deliver, read: { batch in
            let count: Int
            do {
                count = try handle.interruptRead(endpoint: inEndpoint, into: &buffer, timeoutMs: 200)
            } catch let error as USBError where error.code == .timeout {
                // Short timeouts keep stop prompt; only a long silence means the meter is gone.
                if monotonicNanoseconds() - lastReport > silence {
                    throw USBError(device: handle.label, call: "libusb_interrupt_transfer(IN)", code: .timeout,
                                   detail: "no report for \(Double(silence) / 1e9) s")
                }
                count = 0
            }
            let now = monotonicNanoseconds()
            if count > 0 {
                lastReport = now
                buffer.withUnsafeBufferPointer { bytes in
                    decoder.consume(UnsafeBufferPointer(rebasing: bytes[0..<count]), arrivalNs: now) { batch.append($0, $1, $2) }
                }
            }
            if now >= nextKeepAlive {
                try handle.interruptWrite(endpoint: outEndpoint, FNIRSIProtocol.keepAlive, timeoutMs: 1000)
                nextKeepAlive = now + keepAliveNs
            }
        }, close: {
            // Drain what the meter still sends: left unread, it may freeze until replugged.
            var scratch = [UInt8](repeating: 0, count: FNIRSIProtocol.reportLength)
            for _ in 0..<8 {
                guard let count = try? handle.interruptRead(endpoint: inEndpoint, into: &scratch, timeoutMs: 50), count > 0 else { break }
            }
        })
    }

    func stop() throws { try slot.close() }
}
