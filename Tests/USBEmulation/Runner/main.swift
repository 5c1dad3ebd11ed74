import FNIRSIProtocol
import Foundation
import MLBench
import MLBenchCore
import USBEmulators

// Runs one scenario against emulated USB devices and prints what happened as
// JSON, for DeviceTests to check. Plugins are loaded exactly as the lab loads
// them (manifest, dlopen, C ABI), and reach the emulated devices through the
// real libusb. Must run under umockdev-wrapper.
//
//   mlbench-usb-emulation fnirsi|usbrelay PLUGIN_PATH

struct Observation: Encodable {
    var scenario: String
    var values: [String: JSONValue] = [:]
    var errors: [String: String] = [:]
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("mlbench-usb-emulation: \(message)\n".utf8))
    exit(2)
}

let arguments = CommandLine.arguments

// `mlbench-usb-emulation serve-ina226 PROGRAM ARGUMENTS...`: an INA226 at 0x40 (2.5 mV
// across its shunt at 12.0 V, as in the ina2xx scenario) on an emulated FT232H with
// serial "FT232HTC" while PROGRAM runs. The program inherits the testbed (UMOCKDEV_DIR
// and the preload library in its environment; the ioctl handlers answer from this
// process over umockdev's socket), so a whole `mlbench run` reaches the meter through
// the real libftdi and libusb, as on a bench. Exits with the program's status.
if arguments.count >= 3, arguments[1] == "serve-ina226" {
    var problem: UnsafeMutablePointer<CChar>?
    guard let bed = emu_testbed_new(&problem) else { fail(String(cString: problem!)) }
    _ = emu_add_ft232h_ina2xx(bed, 1, "FT232HTC", 226, 0x40, 1000, 9600)
    guard getenv("UMOCKDEV_DIR") != nil else { fail("the testbed did not set UMOCKDEV_DIR") }
    // posix_spawn and waitpid: the program gets this process's environment as it is now.
    var pid = pid_t()
    let argv = Array(arguments.dropFirst(2)).map { strdup($0) } + [nil]
    let spawned = posix_spawn(&pid, arguments[2], nil, nil, argv, environ)
    guard spawned == 0 else { fail("cannot start \(arguments[2]): \(String(cString: strerror(spawned)))") }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0, errno == EINTR {}
    emu_testbed_free(bed)
    // The program's exit status, or 128 + the signal that ended it, as a shell says.
    exit((status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f))
}

guard arguments.count == 3 else { fail("usage: mlbench-usb-emulation SCENARIO PLUGIN_PATH, or serve-ina226 PROGRAM ARGUMENTS...") }
let scenario = arguments[1]
let catalog = PluginCatalog(searchPath: [arguments[2]])
var error: UnsafeMutablePointer<CChar>?
guard let testbed = emu_testbed_new(&error) else { fail(String(cString: error!)) }
var observation = Observation(scenario: scenario)
for problem in catalog.problems { observation.errors["catalog", default: ""] += "\(problem); " }

/// MLBENCH_EMULATION_ONLY=stage runs one stage alone (to look into one failure).
let only = ProcessInfo.processInfo.environment["MLBENCH_EMULATION_ONLY"]

@MainActor func record(_ key: String, _ body: () throws -> Void) {
    if let only, only != key { return }
    do { try body() } catch { observation.errors[key] = "\(error)" }
}

/// The one record of a one-probe recording.
func onlyRecord(_ records: [ProbeRecorder.Record]) throws -> ProbeRecorder.Record {
    guard records.count == 1 else { fail("a one-probe recording gave \(records.count) records") }
    return records[0]
}


switch scenario {
case "fnirsi":
    // 60 reports 40 ms apart, as the meter sends them (2.4 s: keep-alives are due), every
    // tenth with a broken CRC; then the meter is unplugged.
    var reports = [UInt8]()
    for index in 0..<60 {
        let readings = (0..<4).map { sample in
            FNIRSIReading(volts: 5 + Double(index * 4 + sample) * 0.001, amperes: 0.5, dPlusVolts: 0.6, dMinusVolts: 0.6, celsius: 31.5)
        }
        var report = FNIRSIProtocol.encode(readings)
        if index % 10 == 9 { report[20] ^= 0x40 }
        reports += report
    }
    let meter = emu_add_fnirsi(testbed, 1, 0x2e3c, 0x5558, "EMU58", reports, 60, 40_000, 1)
    // A second meter makes the serial setting necessary.
    _ = emu_add_fnirsi(testbed, 2, 0x2e3c, 0x5558, "OTHER", [], 0, 20_000, 0)
    record("without_serial") {
        let plugin = try catalog.load("fnirsi")
        _ = try PluginProbe(plugin: plugin, kind: nil, configuration: PluginConfiguration(kind: "", pluginDirectory: plugin.discovered.directory))
    }
    record("wrong_serial") {
        let plugin = try catalog.load("fnirsi")
        _ = try PluginProbe(plugin: plugin, kind: nil, configuration: PluginConfiguration(
            kind: "", pluginDirectory: plugin.discovered.directory, settings: .object(["serial": .string("NOPE")])))
    }
    record("stream") {
        let plugin = try catalog.load("fnirsi")
        let probe = try PluginProbe(plugin: plugin, kind: nil, configuration: PluginConfiguration(
            kind: "", pluginDirectory: plugin.discovered.directory, settings: .object(["serial": .string("EMU58")])))
        let description = try probe.describe()
        observation.values["channels"] = .array(description.channels.map { .string("\($0.name) \($0.unit)") })
        observation.values["rate_hz"] = .number(description.rateHz)
        // Recorded as an experiment records its probes: the unplug leaves a named gap.
        let recorder = ProbeRecorder(probes: [(name: "fnb58", probe: probe)])
        let started = Date()
        recorder.start()
        while emu_fnirsi_reports_sent(meter) < 60 && Date().timeIntervalSince(started) < 20 { Thread.sleep(forTimeInterval: 0.02) }
        Thread.sleep(forTimeInterval: 0.5)
        var commands = [UInt8](repeating: 0, count: 256)
        let count = emu_fnirsi_commands(meter, &commands, 256)
        observation.values["commands"] = .array(commands.prefix(count).map { .number(Double($0)) })
        let record = try onlyRecord(recorder.stop())
        if let failure = record.failure { observation.errors["stop"] = failure }
        observation.values["gap_s"] = record.gap.map { .number($0.seconds) } ?? .null
        let samples = record.samples
        func values(_ channel: FNIRSIChannel) -> [JSONValue] { samples.filter { $0.channel == channel.rawValue }.map { .number($0.value) } }
        observation.values["voltage"] = .array(values(.voltage))
        observation.values["current"] = .array(values(.current))
        observation.values["power"] = .array(values(.power))
        observation.values["temperature"] = .array(values(.temperature))
        observation.values["rejected"] = .array(values(.rejectedReports))
        let times = samples.filter { $0.channel == FNIRSIChannel.voltage.rawValue }.map(\.timestampNs)
        observation.values["timestamps_increasing"] = .bool(zip(times, times.dropFirst()).allSatisfy { $0 < $1 })
        observation.values["reports_sent"] = .number(Double(emu_fnirsi_reports_sent(meter)))
    }
case "fnb48":
    // The older FNB48 ends its start sequence with 0x83 and needs a keep-alive far more often.
    var reports = [UInt8]()
    for index in 0..<20 {
        reports += FNIRSIProtocol.encode((0..<4).map { _ in
            FNIRSIReading(volts: 9 + Double(index) * 0.01, amperes: 1.0, dPlusVolts: 0, dMinusVolts: 0, celsius: 25)
        })
    }
    let meter = emu_add_fnirsi(testbed, 1, 0x0483, 0x003a, "", reports, 20, 40_000, 0)
    record("stream") {
        let plugin = try catalog.load("fnirsi")
        let probe = try PluginProbe(plugin: plugin, kind: nil, configuration: PluginConfiguration(
            kind: "", pluginDirectory: plugin.discovered.directory, settings: .object(["model": .string("FNB48")])))
        let collected = ProbeSampleBuffer()
        let started = Date()
        try probe.start { collected.add($0) }
        while emu_fnirsi_reports_sent(meter) < 20 && Date().timeIntervalSince(started) < 10 { Thread.sleep(forTimeInterval: 0.02) }
        Thread.sleep(forTimeInterval: 0.1)
        try probe.stop()
        var commands = [UInt8](repeating: 0, count: 4096)
        let count = emu_fnirsi_commands(meter, &commands, 4096)
        observation.values["commands"] = .array(commands.prefix(count).map { .number(Double($0)) })
        observation.values["voltage_count"] = .number(Double(collected.all.filter { $0.channel == FNIRSIChannel.voltage.rawValue }.count))
    }
case "usbrelay":
    let board = emu_add_hid_relay(testbed, 1, 2, "QAAMZ")
    record("relay") {
        let plugin = try catalog.load("usbrelay")
        let power = try PluginPowerSwitch(plugin: plugin, kind: nil, configuration: PluginConfiguration(
            kind: "", pluginDirectory: plugin.discovered.directory,
            settings: .object(["serial": .string("QAAMZ"), "names": .object(["2": .string("jetson")])])))
        observation.values["outlets"] = .array(try power.describe().outlets.map { .string($0) })
        try power.set(OutletCommand(outlet: "jetson", on: true))
        observation.values["mask_after_jetson_on"] = .number(Double(emu_relay_mask(board)))
        observation.values["jetson_state_on"] = .bool(try power.state(OutletQuery(outlet: "jetson")).on)
        try power.set(OutletCommand(outlet: "1", on: true))
        try power.set(OutletCommand(outlet: "jetson", on: false))
        observation.values["mask_after_jetson_off"] = .number(Double(emu_relay_mask(board)))
        observation.values["jetson_state_off"] = .bool(try power.state(OutletQuery(outlet: "jetson")).on)
        emu_relay_stick(board, 1)
        do { try power.set(OutletCommand(outlet: "1", on: false)) } catch { observation.errors["stuck"] = "\(error)" }
        do { try power.set(OutletCommand(outlet: "3", on: true)) } catch { observation.errors["no_such_outlet"] = "\(error)" }
        observation.values["set_reports"] = .number(Double(emu_relay_set_reports(board)))
    }
    record("wrong_serial") {
        let plugin = try catalog.load("usbrelay")
        _ = try PluginPowerSwitch(plugin: plugin, kind: nil, configuration: PluginConfiguration(
            kind: "", pluginDirectory: plugin.discovered.directory, settings: .object(["serial": .string("ZZZZZ")])))
    }
case "ftdi-relay":
    // Relay 8 is already on (the latch survives a lab restart); relays 1–4 are wired.
    let board = emu_add_ftdi_bitbang(testbed, 1, "A9XK2M1T", 0x80)
    _ = emu_add_ftdi_bitbang(testbed, 2, "OTHER001", 0x00)
    record("relay") {
        let plugin = try catalog.load("ftdi-relay")
        let power = try PluginPowerSwitch(plugin: plugin, kind: nil, configuration: PluginConfiguration(
            kind: "", pluginDirectory: plugin.discovered.directory,
            settings: .object(["serial": .string("A9XK2M1T"), "relays": .number(4), "names": .object(["3": .string("zcu104")])])))
        observation.values["latch_after_open"] = .number(Double(emu_ftdi_latch(board)))
        observation.values["bitmode"] = .number(Double(emu_ftdi_bitmode(board)))
        observation.values["outlets"] = .array(try power.describe().outlets.map { .string($0) })
        try power.set(OutletCommand(outlet: "zcu104", on: true))
        observation.values["latch_after_on"] = .number(Double(emu_ftdi_latch(board)))
        observation.values["zcu104_on"] = .bool(try power.state(OutletQuery(outlet: "zcu104")).on)
        try power.set(OutletCommand(outlet: "1", on: true))
        try power.set(OutletCommand(outlet: "zcu104", on: false))
        observation.values["latch_after_off"] = .number(Double(emu_ftdi_latch(board)))
        observation.values["zcu104_off"] = .bool(try power.state(OutletQuery(outlet: "zcu104")).on)
    }
    record("wrong_serial") {
        let plugin = try catalog.load("ftdi-relay")
        _ = try PluginPowerSwitch(plugin: plugin, kind: nil, configuration: PluginConfiguration(
            kind: "", pluginDirectory: plugin.discovered.directory, settings: .object(["serial": .string("NOPE")])))
    }
case "ina2xx":
    // 2.5 mV across 0.1 Ω (shunt register 1000 × 2.5 µV) at 12.0 V (bus register 9600 × 1.25 mV).
    let sensor = emu_add_ft232h_ina2xx(testbed, 1, "FT232H01", 226, 0x41, 1000, 9600)
    record("wrong_address") {
        let plugin = try catalog.load("ina2xx")
        _ = try PluginProbe(plugin: plugin, kind: nil, configuration: PluginConfiguration(
            kind: "", pluginDirectory: plugin.discovered.directory, settings: .object(["address": .number(0x40), "shunt_ohms": .number(0.1), "max_current": .number(2)])))
    }
    record("stream") {
        let plugin = try catalog.load("ina2xx")
        let probe = try PluginProbe(plugin: plugin, kind: nil, configuration: PluginConfiguration(
            kind: "", pluginDirectory: plugin.discovered.directory,
            settings: .object(["address": .number(0x41), "shunt_ohms": .number(0.1), "current_lsb": .number(0.0001),
                               "conversion_time_us": .number(588), "averaging": .number(4)])))
        observation.values["calibration"] = .number(Double(emu_ina226_register(sensor, 0x05)))
        observation.values["configuration"] = .number(Double(emu_ina226_register(sensor, 0x00)))
        observation.values["rate_hz"] = .number(try probe.describe().rateHz)
        let collected = ProbeSampleBuffer()
        try probe.start { collected.add($0) }
        Thread.sleep(forTimeInterval: 0.5)
        // The FT232H is unplugged mid-stream: the stream ends, stop says why.
        emu_unplug(sensor)
        let unplugged = collected.count
        Thread.sleep(forTimeInterval: 0.3)
        do { try probe.stop() } catch { observation.errors["stop"] = "\(error)" }
        let samples = collected.all
        observation.values["samples_after_unplug"] = .number(Double(samples.count - unplugged))
        for (channel, name) in ["bus_voltage", "shunt_voltage", "current", "power"].enumerated() {
            let values = samples.filter { $0.channel == UInt32(channel) }.map(\.value)
            observation.values[name] = .array(values.prefix(3).map { .number($0) })
            observation.values[name + "_count"] = .number(Double(values.count))
        }
    }
case "ina219":
    // 2.5 mV (shunt register 250 × 10 µV) at 12.0 V (bus register 3000 << 3, conversion-ready flag set).
    let sensor = emu_add_ft232h_ina2xx(testbed, 1, "FT232H02", 219, 0x40, 250, 3000 << 3 | 0b10)
    record("stream") {
        let plugin = try catalog.load("ina2xx")
        let probe = try PluginProbe(plugin: plugin, kind: nil, configuration: PluginConfiguration(
            kind: "", pluginDirectory: plugin.discovered.directory,
            settings: .object(["model": .string("INA219"), "shunt_ohms": .number(0.1), "current_lsb": .number(0.0001)])))
        observation.values["calibration"] = .number(Double(emu_ina226_register(sensor, 0x05)))
        observation.values["configuration"] = .number(Double(emu_ina226_register(sensor, 0x00)))
        let collected = ProbeSampleBuffer()
        try probe.start { collected.add($0) }
        Thread.sleep(forTimeInterval: 0.3)
        try probe.stop()
        let samples = collected.all
        for (channel, name) in ["bus_voltage", "shunt_voltage", "current", "power"].enumerated() {
            observation.values[name] = .array(samples.filter { $0.channel == UInt32(channel) }.prefix(3).map { .number($0.value) })
        }
    }
case "ykush":
    let hub = emu_add_ykush(testbed, 1, 0xf2f7, 3, "YK21234")
    record("hub") {
        let plugin = try catalog.load("ykush")
        let power = try PluginPowerSwitch(plugin: plugin, kind: nil, configuration: PluginConfiguration(
            kind: "", pluginDirectory: plugin.discovered.directory, settings: .object(["names": .object(["2": .string("tc375")])])))
        observation.values["outlets"] = .array(try power.describe().outlets.map { .string($0) })
        try power.set(OutletCommand(outlet: "tc375", on: true))
        observation.values["ports_after_on"] = .number(Double(emu_ykush_ports(hub)))
        observation.values["tc375_on"] = .bool(try power.state(OutletQuery(outlet: "tc375")).on)
        try power.set(OutletCommand(outlet: "3", on: true))
        try power.set(OutletCommand(outlet: "tc375", on: false))
        observation.values["ports_after_off"] = .number(Double(emu_ykush_ports(hub)))
        observation.values["tc375_off"] = .bool(try power.state(OutletQuery(outlet: "tc375")).on)
    }
default:
    fail("unknown scenario '\(scenario)'")
}

emu_testbed_free(testbed)
let encoder = JSONEncoder()
encoder.outputFormatting = [.sortedKeys]
print(String(decoding: try encoder.encode(observation), as: UTF8.self))
