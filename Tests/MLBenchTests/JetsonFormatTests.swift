import Foundation
@testable import JetsonBoard
import LinuxBoardKit
import XCTest

/// The Jetson's tool outputs and sysfs files, in their real formats.
final class JetsonFormatTests: XCTestCase {
    /// JetPack 4 (Nano, L4T R32): rails without units, GPU load without a clock.
    func testTegrastatsJetPack4Line() throws {
        let line = "RAM 1766/3964MB (lfb 197x4MB) SWAP 0/2048MB (cached 0MB) CPU [24%@1224,15%@1224,13%@1224,10%@1224] EMC_FREQ 0% GR3D_FREQ 0% PLL@21C CPU@25C PMIC@100C GPU@23.5C AO@33.5C thermal@24.5C POM_5V_IN 2545/2547 POM_5V_GPU 0/0 POM_5V_CPU 549/529"
        let stats = try TegraStatsLine.parse(line)
        XCTAssertEqual(stats.ramUsedMB, 1766)
        XCTAssertEqual(stats.ramTotalMB, 3964)
        XCTAssertEqual(stats.swapUsedMB, 0)
        XCTAssertEqual(stats.cpus.count, 4)
        XCTAssertEqual(stats.cpus[0]?.load, 24)
        XCTAssertEqual(stats.cpus[0]?.mhz, 1224)
        XCTAssertEqual(stats.gpuLoadPercent, 0)
        XCTAssertNil(stats.gpuMHz)
        XCTAssertEqual(stats.temperaturesC["GPU"], 23.5)
        XCTAssertEqual(stats.temperaturesC["PMIC"], 100)
        XCTAssertEqual(stats.railsMW["POM_5V_IN"]?.now, 2545)
        XCTAssertEqual(stats.railsMW["POM_5V_IN"]?.average, 2547)
        XCTAssertEqual(stats.railsMW["POM_5V_CPU"]?.average, 529)
        XCTAssertEqual(stats.railsMW.count, 3)
    }

    /// JetPack 5/6 (Orin, L4T R35/R36): a date prefix, units on rails, per-GPC GPU clocks, CPUs off, unread sensors at -256.
    func testTegrastatsJetPack5Line() throws {
        let line = "11-23-2026 13:45:02 RAM 1641/30536MB (lfb 6714x4MB) SWAP 0/15268MB (cached 0MB) CPU [12%@2201,4%@2201,off,off] EMC_FREQ 2%@3199 GR3D_FREQ 46%@[1300,1300] VIC_FREQ 729 APE 174 CV0@-256C CPU@47.5C tj@47.5C VDD_GPU_SOC 7167mW/4977mW VDD_CPU_CV 1195mW/796mW VIN_SYS_5V0 3933mW/3534mW"
        let stats = try TegraStatsLine.parse(line)
        XCTAssertEqual(stats.ramUsedMB, 1641)
        XCTAssertEqual(stats.cpus.count, 4)
        XCTAssertNil(stats.cpus[2], "an 'off' CPU is nil")
        XCTAssertEqual(stats.emcLoadPercent, 2)
        XCTAssertEqual(stats.emcMHz, 3199)
        XCTAssertEqual(stats.gpuLoadPercent, 46)
        XCTAssertEqual(stats.gpuMHz, 1300)
        XCTAssertNil(stats.temperaturesC["CV0"], "-256 marks a sensor that is not read")
        XCTAssertEqual(stats.temperaturesC["tj"], 47.5)
        XCTAssertEqual(stats.railsMW["VDD_GPU_SOC"]?.now, 7167)
        XCTAssertEqual(stats.railsMW["VDD_GPU_SOC"]?.average, 4977)
        XCTAssertNil(stats.railsMW["VIC_FREQ"], "a frequency is not a rail")
        XCTAssertEqual(stats.railsMW.count, 3)
    }

    func testTegrastatsGarbageIsNamed() {
        XCTAssertThrowsError(try TegraStatsLine.parse("tegrastats: command not found")) { error in
            XCTAssertTrue("\(error)".contains("tegrastats"), "\(error)")
            XCTAssertTrue("\(error)".contains("RAM"), "\(error)")
        }
        XCTAssertThrowsError(try TegraStatsLine.parse("RAM 12/34MB CPU [x%@1]")) { error in
            XCTAssertTrue("\(error)".contains("CPU entry 'x%@1'"), "\(error)")
        }
    }

    func testNVPModelQuery() throws {
        XCTAssertEqual(try NVPModelQuery.parse("NV Power Mode: MAXN\n0\n"), NVPModelQuery(name: "MAXN", id: 0))
        XCTAssertEqual(try NVPModelQuery.parse("NV Fan Mode:quiet\nNV Power Mode: MODE_15W\n1\n"), NVPModelQuery(name: "MODE_15W", id: 1))
        XCTAssertThrowsError(try NVPModelQuery.parse("NVPM ERROR: failed to read PARAM\n")) { error in
            XCTAssertTrue("\(error)".contains("nvpmodel -q"), "\(error)")
        }
    }

    /// JetPack 4: the ina3221x iio driver; channels 0–2 with rail_name_N, power given.
    func testINA3221JetPack4IIO() throws {
        let folder = "/sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0"
        let rails = try INA3221Rails.parse([
            "\(folder)/rail_name_0": "POM_5V_IN\n", "\(folder)/in_voltage0_input": "5000\n", "\(folder)/in_current0_input": "509\n",
            "\(folder)/in_power0_input": "2545\n",
            "\(folder)/rail_name_1": "POM_5V_GPU\n", "\(folder)/in_voltage1_input": "5000\n", "\(folder)/in_current1_input": "0\n",
            "\(folder)/in_power1_input": "0\n",
        ])
        XCTAssertEqual(rails, [PowerRail(name: "POM_5V_IN", millivolts: 5000, milliamps: 509, milliwatts: 2545),
                               PowerRail(name: "POM_5V_GPU", millivolts: 5000, milliamps: 0, milliwatts: 0)])
    }

    /// JetPack 5/6: the mainline hwmon driver; NC channels and the sum channel are skipped, power is V × I.
    func testINA3221JetPack5Hwmon() throws {
        let folder = "/sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3"
        let rails = try INA3221Rails.parse([
            "\(folder)/in1_label": "VDD_GPU_SOC\n", "\(folder)/in1_input": "19936\n", "\(folder)/curr1_input": "139\n",
            "\(folder)/in2_label": "NC\n", "\(folder)/in2_input": "0\n", "\(folder)/curr2_input": "0\n",
            "\(folder)/in7_label": "sum of shunt voltages\n", "\(folder)/in7_input": "1180\n",
        ])
        XCTAssertEqual(rails.count, 1)
        XCTAssertEqual(rails.first?.name, "VDD_GPU_SOC")
        XCTAssertEqual(rails.first?.milliwatts ?? 0, 19936 * 139 / 1000, accuracy: 0.001)
        XCTAssertThrowsError(try INA3221Rails.parse(["\(folder)/in1_label": "VDD_IN", "\(folder)/in1_input": "n/a"])) { error in
            XCTAssertTrue("\(error)".contains("\(folder)/in1_input"), "the bad file is named: \(error)")
        }
    }

    func testL4TReleaseAndThermalZones() throws {
        let release = try L4TRelease.parse("# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64, DATE: Tue Aug  1 19:57:35 UTC 2023\n")
        XCTAssertEqual(release.version, "35.4.1")
        XCTAssertEqual(release.jetpack, 5)
        XCTAssertEqual(try L4TRelease.parse("# R32 (release), REVISION: 7.4, GCID: 1").jetpack, 4)
        XCTAssertThrowsError(try L4TRelease.parse("Ubuntu 20.04"))
        let zones = LinuxFacts.thermalZones(["/sys/class/thermal/thermal_zone0/type": "CPU-therm\n", "/sys/class/thermal/thermal_zone0/temp": "46781\n",
                                        "/sys/class/thermal/thermal_zone1/type": "CV0-therm\n"])
        XCTAssertEqual(zones, ["CPU-therm": 46.781])
    }
}
