import Foundation
import MLBenchPluginKit

/// A set of relays addressed by index (0-based): a USB relay board, the bits of
/// an FTDI bit-bang port, GPIO lines, the ports of a hub. The power-switch
/// logic (outlet names, checks, read-back) lives above it in `RelayPowerSwitch`.
public protocol RelayBank: AnyObject {
    /// How many relays there are.
    var relayCount: Int { get }
    /// How errors and listings name the bank ("USBRelay2 serial ABCDE").
    var label: String { get }
    /// Switches one relay.
    func setRelay(_ index: Int, on: Bool) throws
    /// Reads one relay's state back from the device.
    func relayState(_ index: Int) throws -> Bool
}

/// A power switch over a relay bank. Outlets are named "1"…"N" (as printed on
/// relay boards) unless names are given. After each switch the state is read
/// back, so a relay that did not follow is an error, not a silent lie.
public final class RelayPowerSwitch: PowerSwitch, @unchecked Sendable {
    public let bank: RelayBank
    /// Outlet names in relay order.
    public let outlets: [String]
    private let lock = NSLock()

    /// `names` maps relay numbers (1-based, as strings) to the names inventories use; unnamed relays keep their number.
    public init(bank: RelayBank, names: [String: String] = [:]) throws {
        self.bank = bank
        for key in names.keys.sorted() {
            guard let number = Int(key), (1...bank.relayCount).contains(number) else {
                throw PluginFailure(.invalidConfiguration, "setting 'names': '\(key)' is not a relay of \(bank.label) (it has 1…\(bank.relayCount))")
            }
        }
        outlets = (1...max(bank.relayCount, 1)).prefix(bank.relayCount).map { names[String($0)] ?? String($0) }
        if Set(outlets).count != outlets.count {
            throw PluginFailure(.invalidConfiguration, "setting 'names': outlet names must be unique, got \(outlets)")
        }
    }

    /// The relay index of an outlet name or number.
    public func index(of outlet: String) throws -> Int {
        if let index = outlets.firstIndex(of: outlet) { return index }
        throw PluginFailure(.invalidRequest, "\(bank.label) has no outlet '\(outlet)' (it has: \(outlets.joined(separator: ", ")))")
    }

    /// The outlet names, in relay order.
    public func describe() throws -> PowerSwitchDescription { PowerSwitchDescription(outlets: outlets) }

    /// Switches an outlet, then reads it back: a relay that did not follow is a device error.
    public func set(_ request: OutletCommand) throws {
        let index = try index(of: request.outlet)
        lock.lock()
        defer { lock.unlock() }
        try deviceCall { try bank.setRelay(index, on: request.on) }
        let now = try deviceCall { try bank.relayState(index) }
        guard now == request.on else {
            throw PluginFailure(.device, "\(bank.label) outlet '\(request.outlet)': switched \(request.on ? "on" : "off") but reads back \(now ? "on" : "off")")
        }
    }

    /// The outlet's state as read from the device.
    public func state(_ request: OutletQuery) throws -> OutletState {
        let index = try index(of: request.outlet)
        lock.lock()
        defer { lock.unlock() }
        return OutletState(on: try deviceCall { try bank.relayState(index) })
    }

    /// Turns an outlet off, waits `offTime` seconds, turns it on: a power cycle.
    public func cycle(_ outlet: String, offTime: Double) throws {
        try set(OutletCommand(outlet: outlet, on: false))
        Thread.sleep(forTimeInterval: offTime)
        try set(OutletCommand(outlet: outlet, on: true))
    }

    /// Driver errors become device failures with the driver's own message (it names device and call).
    private func deviceCall<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let failure as PluginFailure { throw failure } catch {
            throw PluginFailure(.device, "\(error)")
        }
    }
}

/// One output that drives a relay: a GPIO line, a bit of a port.
public protocol RelayLine: AnyObject {
    /// How errors name the line ("line 17").
    var label: String { get }
    /// Drives the relay on (logical 1, after any active-low inversion) or off.
    func drive(_ on: Bool) throws
    /// What the line drives now.
    func driven() throws -> Bool
}

/// A relay bank made of independent lines, one relay each.
public final class LineRelayBank: RelayBank {
    public let lines: [RelayLine]
    public let label: String

    /// Relay i is `lines[i]`; `label` names the bank in errors.
    public init(label: String, lines: [RelayLine]) {
        self.label = label
        self.lines = lines
    }

    public var relayCount: Int { lines.count }
    public func setRelay(_ index: Int, on: Bool) throws { try lines[index].drive(on) }
    public func relayState(_ index: Int) throws -> Bool { try lines[index].driven() }
}
