import CPerfEvent
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The counters this layer opens, hardware and software.
public enum PerfEvent: String, CaseIterable, Sendable {
    case instructions, cycles
    case cacheReferences = "cache_references"
    case cacheMisses = "cache_misses"
    case branchMisses = "branch_misses"
    case taskClock = "task_clock"
    case contextSwitches = "context_switches"
    case pageFaults = "page_faults"

    /// The hardware counters (a PMU is needed; VMs often have none).
    public static let hardware: [PerfEvent] = [.instructions, .cycles, .cacheReferences, .cacheMisses, .branchMisses]

    var typeAndConfig: (UInt32, UInt64) {
        switch self {
        case .instructions: return (PERF_TYPE_HARDWARE.rawValue, UInt64(PERF_COUNT_HW_INSTRUCTIONS.rawValue))
        case .cycles: return (PERF_TYPE_HARDWARE.rawValue, UInt64(PERF_COUNT_HW_CPU_CYCLES.rawValue))
        case .cacheReferences: return (PERF_TYPE_HARDWARE.rawValue, UInt64(PERF_COUNT_HW_CACHE_REFERENCES.rawValue))
        case .cacheMisses: return (PERF_TYPE_HARDWARE.rawValue, UInt64(PERF_COUNT_HW_CACHE_MISSES.rawValue))
        case .branchMisses: return (PERF_TYPE_HARDWARE.rawValue, UInt64(PERF_COUNT_HW_BRANCH_MISSES.rawValue))
        case .taskClock: return (PERF_TYPE_SOFTWARE.rawValue, UInt64(PERF_COUNT_SW_TASK_CLOCK.rawValue))
        case .contextSwitches: return (PERF_TYPE_SOFTWARE.rawValue, UInt64(PERF_COUNT_SW_CONTEXT_SWITCHES.rawValue))
        case .pageFaults: return (PERF_TYPE_SOFTWARE.rawValue, UInt64(PERF_COUNT_SW_PAGE_FAULTS.rawValue))
        }
    }

    /// "count", or "ns" for the task clock.
    public var unit: String { self == .taskClock ? "ns" : "count" }
}

/// Why a counter could not be opened or read.
public struct PerfError: Error, Sendable, CustomStringConvertible, Equatable {
    public var event: String
    public var target: String
    public var call: String
    public var errno: Int32

    public var description: String {
        var text = "perf counter '\(event)' of \(target): \(call) failed: \(String(cString: strerror(errno))) (errno \(errno))"
        switch errno {
        case ENOENT, EOPNOTSUPP, ENODEV:
            text += "; not available: the kernel offers no such counter here (a VM without a virtual PMU has no hardware counters)"
        case EACCES, EPERM:
            text += "; not permitted: lower /proc/sys/kernel/perf_event_paranoid or grant CAP_PERFMON"
        case ESRCH:
            text += "; the process does not exist"
        default: break
        }
        return text
    }

    /// True when the counter does not exist here (as opposed to a refusal).
    public var notAvailable: Bool { [ENOENT, EOPNOTSUPP, ENODEV].contains(errno) }
}

/// One counter on one thread of a process, counting in user and kernel mode
/// while that thread runs on any CPU; threads it creates later are counted too.
/// Owns its file descriptor.
public final class PerfCounter: @unchecked Sendable {
    public let event: PerfEvent
    public let thread: pid_t
    let fd: Int32

    /// Opens and enables the counter on thread `thread` (a process id counts its main thread).
    public init(_ event: PerfEvent, thread: pid_t, target: String) throws {
        self.event = event
        self.thread = thread
        var attr = perf_event_attr()
        attr.size = UInt32(MemoryLayout<perf_event_attr>.size)
        (attr.type, attr.config) = event.typeAndConfig
        // Scaling values tell how long the counter really ran when the PMU is multiplexed.
        attr.read_format = UInt64(PERF_FORMAT_TOTAL_TIME_ENABLED.rawValue | PERF_FORMAT_TOTAL_TIME_RUNNING.rawValue)
        attr.disabled = 1
        attr.inherit = 1
        let fd = mlb_perf_event_open(&attr, thread, -1, -1, UInt(PERF_FLAG_FD_CLOEXEC))
        guard fd >= 0 else { throw PerfError(event: event.rawValue, target: target, call: "perf_event_open", errno: Glibc.errno) }
        guard mlb_perf_enable(fd) == 0 else {
            let code = Glibc.errno
            close(fd)
            throw PerfError(event: event.rawValue, target: target, call: "ioctl(PERF_EVENT_IOC_ENABLE)", errno: code)
        }
        self.fd = fd
    }

    deinit { close(fd) }

    /// The count so far, scaled up for the time the counter was multiplexed out.
    public func read() throws -> Double {
        var values = [UInt64](repeating: 0, count: 3)
        let got = values.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        guard got == 24 else { throw PerfError(event: event.rawValue, target: "thread \(thread)", call: "read", errno: got < 0 ? Glibc.errno : EIO) }
        let (value, enabled, running) = (values[0], values[1], values[2])
        guard running > 0 else { return 0 }
        return running == enabled ? Double(value) : Double(value) * Double(enabled) / Double(running)
    }
}
