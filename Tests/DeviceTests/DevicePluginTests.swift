import Foundation
import MLBench
import MLBenchCore
import XCTest

/// The device plugins through the plugin ABI, as the lab loads them: each
/// loads, lists its settings, and on a machine without the device fails with
/// an error that names what is missing.
final class DevicePluginTests: XCTestCase {
    func catalog(_ names: [String]) throws -> PluginCatalog {
        let catalog = PluginCatalog(searchPath: [try PluginStaging.stage(names, for: self).path])
        XCTAssertEqual(catalog.problems, [])
        return catalog
    }

    func configuration(_ plugin: LoadedPlugin, _ settings: [String: JSONValue]) -> PluginConfiguration {
        PluginConfiguration(kind: "", pluginDirectory: plugin.discovered.directory, settings: .object(settings))
    }

    func testEveryDevicePluginLoadsAndListsItsSettings() throws {
        let names = PluginStaging.plugins.map(\.0)
        let catalog = try catalog(names)
        // Per plugin: each factory's role and kind, and the settings it accepts.
        let expected: [String: [(Role, String, Set<String>)]] = [
            "fnirsi": [(.probe, "fnirsi", ["serial", "model", "silence_timeout_s"])],
            "usbrelay": [(.powerSwitch, "usbrelay", ["serial", "names"])],
            "gpio-relay": [(.powerSwitch, "gpio-relay", ["chip", "lines", "active_low", "initial_state", "names"])],
            "command-outlet": [(.powerSwitch, "command-outlet", ["outlets", "timeout_s"])],
            "ftdi-relay": [(.powerSwitch, "ftdi-relay", ["serial", "relays", "active_low", "usb_id", "names"])],
            "ykush": [(.powerSwitch, "ykush", ["serial", "names"])],
            "ina2xx": [(.probe, "ina2xx", ["model", "address", "shunt_ohms", "current_lsb", "max_current", "conversion_time_us",
                                          "averaging", "serial", "i2c_clock_hz"])],
            "host-probes": [(.probe, "perf", ["pid", "events", "interval_ms"]), (.probe, "thermal", ["include", "interval_ms"]),
                            (.probe, "rapl", ["interval_ms"]), (.probe, "rss", ["pid", "interval_ms"])],
        ]
        for name in names {
            let plugin = try catalog.load(name)
            XCTAssertEqual(plugin.name, name)
            XCTAssertEqual(plugin.version, "1.0.0")
            let factories = try XCTUnwrap(expected[name], name)
            XCTAssertEqual(plugin.factories.map(\.role), factories.map(\.0), name)
            XCTAssertEqual(plugin.factories.map(\.kind), factories.map(\.1), name)
            for (role, kind, settings) in factories {
                let provision = try XCTUnwrap(plugin.discovered.manifest.provides.first { $0.kind == kind && $0.role == role }, "\(name) \(kind)")
                XCTAssertEqual(Set(provision.settings?.keys.map { $0 } ?? []), settings, "\(name) '\(kind)' lists every setting it accepts")
                XCTAssertTrue(provision.settings?.values.allSatisfy { !$0.isEmpty } ?? false, name)
            }
        }
    }

    /// This machine has no USB meter, relay board or GPIO chip.
    func testWithoutTheDeviceEachPluginNamesWhatIsMissing() throws {
        let catalog = try catalog(["fnirsi", "usbrelay", "gpio-relay", "ftdi-relay", "ina2xx", "ykush"])
        let ykush = try catalog.load("ykush")
        XCTAssertThrowsError(try PluginPowerSwitch(plugin: ykush, kind: nil, configuration: configuration(ykush, [:]))) {
            XCTAssertEqual("\($0)", "plugin 'ykush' (ykush) create: device error: YKUSH hub not found: no USB device with id 04d8:f0cd (YKUSH XS), 04d8:f11b (YKUSH3), 04d8:f2f7 (YKUSH) is connected")
        }
        let ina = try catalog.load("ina2xx")
        XCTAssertThrowsError(try PluginProbe(plugin: ina, kind: nil, configuration: configuration(ina, ["shunt_ohms": .number(0.1), "max_current": .number(2)]))) {
            XCTAssertEqual("\($0)", "plugin 'ina2xx' (ina2xx) create: device error: FT232H for INA226 (FTDI 0403:6014): ftdi_usb_open_desc failed (-3): device not found; no device with this id is connected")
        }
        let ftdi = try catalog.load("ftdi-relay")
        XCTAssertThrowsError(try PluginPowerSwitch(plugin: ftdi, kind: nil, configuration: configuration(ftdi, ["serial": .string("A9XK2M1T")]))) {
            XCTAssertEqual("\($0)", "plugin 'ftdi-relay' (ftdi-relay) create: device error: FTDI relay board (FTDI 0403:6001 serial A9XK2M1T): ftdi_usb_open_desc failed (-3): device not found; no device with this id is connected")
        }
        XCTAssertThrowsError(try PluginPowerSwitch(plugin: ftdi, kind: nil, configuration: configuration(ftdi, [:]))) {
            XCTAssertTrue("\($0)".contains("invalid configuration: settings:"), "the serial is required: \($0)")
        }
        let fnirsi = try catalog.load("fnirsi")
        XCTAssertThrowsError(try PluginProbe(plugin: fnirsi, kind: nil, configuration: configuration(fnirsi, [:]))) {
            XCTAssertEqual("\($0)", "plugin 'fnirsi' (fnirsi) create: device error: FNIRSI meter not found: no USB device with id "
                           + "0483:003a (FNIRSI FNB48), 0483:003b (FNIRSI C1), 2e3c:0049 (FNIRSI FNB48S), 2e3c:5558 (FNIRSI FNB58) is connected")
        }
        XCTAssertThrowsError(try PluginProbe(plugin: fnirsi, kind: nil, configuration: configuration(fnirsi, ["model": .string("FNB99")]))) {
            XCTAssertTrue("\($0)".contains("setting 'model': 'FNB99' is not a FNIRSI model this probe knows (FNB48, C1, FNB48S, FNB58)"), "\($0)")
        }
        XCTAssertThrowsError(try PluginProbe(plugin: fnirsi, kind: nil, configuration: configuration(fnirsi, ["serail": .string("x")]))) {
            XCTAssertTrue("\($0)".contains("unknown setting 'serail'"), "\($0)")
        }
        let relay = try catalog.load("usbrelay")
        XCTAssertThrowsError(try PluginPowerSwitch(plugin: relay, kind: nil, configuration: configuration(relay, ["serial": .string("QAAMZ")]))) {
            XCTAssertEqual("\($0)", "plugin 'usbrelay' (usbrelay) create: device error: USB HID relay board not found: no USB device with id 16c0:05df (USB HID relay) is connected")
        }
        let gpio = try catalog.load("gpio-relay")
        XCTAssertThrowsError(try PluginPowerSwitch(plugin: gpio, kind: nil, configuration: configuration(gpio, ["chip": .string("gpiochip9"), "lines": .array([.number(17)])]))) {
            XCTAssertTrue("\($0)".hasPrefix("plugin 'gpio-relay' (gpio-relay) create: device error: GPIO chip 'gpiochip9': gpiod_chip_open_by_name failed: No such file or directory (errno 2); "), "\($0)")
        }
        XCTAssertThrowsError(try PluginPowerSwitch(plugin: gpio, kind: nil, configuration: configuration(gpio, ["chip": .string("/dev/gpiochip9"), "lines": .array([.string("RELAY1")])]))) {
            XCTAssertTrue("\($0)".contains("GPIO chip '/dev/gpiochip9': gpiod_chip_open failed: No such file or directory"), "\($0)")
        }
    }

    func testGPIORelaySettingsAreCheckedBeforeAnyChipIsOpened() throws {
        let catalog = try catalog(["gpio-relay"])
        let gpio = try catalog.load("gpio-relay")
        let cases: [([String: JSONValue], String)] = [
            (["chip": .string("gpiochip0"), "lines": .array([])], "setting 'lines': give at least one line"),
            (["chip": .string("gpiochip0"), "lines": .array([.number(1)]), "initial_state": .string("maybe")], "setting 'initial_state': 'maybe' is neither on nor off"),
            (["lines": .array([.number(1)])], "settings:"),
        ]
        for (settings, message) in cases {
            XCTAssertThrowsError(try PluginPowerSwitch(plugin: gpio, kind: nil, configuration: configuration(gpio, settings))) {
                XCTAssertTrue("\($0)".contains("invalid configuration: \(message)"), "\($0)")
            }
        }
    }

    // MARK: Command outlet, with real processes

    func commandOutlet(_ outlets: [String: [String: String]], timeout: Double? = nil) throws -> PluginPowerSwitch {
        let catalog = try catalog(["command-outlet"])
        let plugin = try catalog.load("command-outlet")
        var settings: [String: JSONValue] = ["outlets": .object(outlets.mapValues { .object($0.mapValues { .string($0) }) })]
        if let timeout { settings["timeout_s"] = .number(timeout) }
        return try PluginPowerSwitch(plugin: plugin, kind: nil, configuration: configuration(plugin, settings))
    }

    func testCommandOutletRunsTheCommandsAndReadsTheStatus() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("outlet-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
        // A pretend PDU: one state file per outlet, named by MLBENCH_OUTLET.
        let state = "\(folder.path)/$MLBENCH_OUTLET"
        let commands = ["on": "echo on > \(state)", "off": "echo off > \(state)", "status": "cat \(state)"]
        let power = try commandOutlet(["jetson": commands, "zcu104": commands])
        XCTAssertEqual(try power.describe().outlets, ["jetson", "zcu104"])
        try power.set(OutletCommand(outlet: "jetson", on: true))
        XCTAssertEqual(try String(contentsOf: folder.appendingPathComponent("jetson"), encoding: .utf8), "on\n")
        XCTAssertTrue(try power.state(OutletQuery(outlet: "jetson")).on)
        try power.set(OutletCommand(outlet: "jetson", on: false))
        XCTAssertFalse(try power.state(OutletQuery(outlet: "jetson")).on)
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder.appendingPathComponent("zcu104").path), "only the outlet asked for was switched")
        XCTAssertThrowsError(try power.set(OutletCommand(outlet: "kv260", on: true))) {
            XCTAssertTrue("\($0)".contains("invalid request: no outlet 'kv260' (outlets: jetson, zcu104)"), "\($0)")
        }
    }

    func testCommandOutletFailuresAreNamed() throws {
        let power = try commandOutlet([
            "refused": ["on": "echo 'PDU refused: port locked' >&2; exit 3", "off": "true"],
            "slow": ["on": "sleep 10", "off": "true"],
            "liar": ["on": "true", "off": "true", "status": "echo off"],
            "mumbles": ["on": "true", "off": "true", "status": "echo maybe"],
        ], timeout: 0.5)
        XCTAssertThrowsError(try power.set(OutletCommand(outlet: "refused", on: true))) {
            XCTAssertTrue("\($0)".hasSuffix("device error: outlet 'refused' on command `echo 'PDU refused: port locked' >&2; exit 3` exited with status 3: PDU refused: port locked"), "\($0)")
        }
        let start = Date()
        XCTAssertThrowsError(try power.set(OutletCommand(outlet: "slow", on: true))) {
            XCTAssertTrue("\($0)".hasSuffix("timed out: outlet 'slow' on command `sleep 10` took longer than 0.5 s and was killed"), "\($0)")
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 5, "the timeout kills the command")
        XCTAssertThrowsError(try power.set(OutletCommand(outlet: "liar", on: true))) {
            XCTAssertTrue("\($0)".hasSuffix("device error: outlet 'liar': switched on but its status command says off"), "\($0)")
        }
        XCTAssertThrowsError(try power.state(OutletQuery(outlet: "mumbles"))) {
            XCTAssertTrue("\($0)".contains("printed 'maybe'; its first word must be on or off"), "\($0)")
        }
        XCTAssertThrowsError(try power.state(OutletQuery(outlet: "refused"))) {
            XCTAssertTrue("\($0)".contains("unsupported: outlet 'refused' has no status command"), "\($0)")
        }
    }
}
