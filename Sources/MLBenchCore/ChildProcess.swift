import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a child process could not be used.
public struct ChildProcessError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case spawnFailed
        case timedOut
        case exited
        case io
    }

    public var kind: Kind
    public var command: String
    public var detail: String

    public var description: String {
        switch kind {
        case .spawnFailed: return "cannot start '\(command)': \(detail)"
        case .timedOut: return "'\(command)' did not answer in time: \(detail)"
        case .exited: return "'\(command)' exited: \(detail)"
        case .io: return "I/O with '\(command)' failed: \(detail)"
        }
    }
}

/// A child process with pipes on its standard streams, read with deadlines.
///
/// Built on posix_spawn and poll rather than Foundation's Process so that a
/// runner that hangs is detected by a timeout and killed, never waited on
/// forever. Standard error is drained on a thread into a bounded tail, so a
/// chatty child never blocks on a full pipe.
public final class ChildProcess: @unchecked Sendable {
    public let command: [String]
    public let pid: pid_t
    private let stdinFD: Int32
    private let stdoutFD: Int32
    private var stdoutBuffer = [UInt8]()
    private let stderrTail: TailBuffer
    private let stderrThread: Thread
    private var exitStatus: Int32?
    private let lock = NSLock()

    private typealias AddChdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, UnsafePointer<CChar>?) -> Int32
    private static let addChdir: AddChdir? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addchdir_np") else { return nil }
        return unsafeBitCast(symbol, to: AddChdir.self)
    }()

    /// How much of standard error is kept.
    public static let stderrLimit = 64 * 1024

    /// Starts `command` (searched on PATH when it has no slash).
    public init(_ command: [String], environment: [String: String]? = nil, directory: String? = nil) throws {
        precondition(!command.isEmpty, "a command needs a program")
        self.command = command
        let name = command.joined(separator: " ")

        var inPipe: [Int32] = [0, 0], outPipe: [Int32] = [0, 0], errPipe: [Int32] = [0, 0]
        guard pipe(&inPipe) == 0, pipe(&outPipe) == 0, pipe(&errPipe) == 0 else {
            throw ChildProcessError(kind: .spawnFailed, command: name, detail: String(cString: strerror(errno)))
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, inPipe[0], 0)
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)
        for fd in inPipe + outPipe + errPipe { posix_spawn_file_actions_addclose(&actions, fd) }
        if let directory {
            // glibc ≥ 2.29 has the chdir action (hidden behind _GNU_SOURCE from
            // Swift); it keeps the spawn free of races with other threads.
            guard let addChdir = ChildProcess.addChdir else {
                throw ChildProcessError(kind: .spawnFailed, command: name, detail: "this C library has no posix_spawn_file_actions_addchdir_np")
            }
            let result = addChdir(&actions, directory)
            if result != 0 {
                throw ChildProcessError(kind: .spawnFailed, command: name, detail: "cannot change to \(directory): \(String(cString: strerror(result)))")
            }
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Its own process group, so that killing it also kills what it started.
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK))
        posix_spawnattr_setpgroup(&attributes, 0)
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        posix_spawnattr_setsigmask(&attributes, &emptyMask)

        var env = environment ?? ProcessInfo.processInfo.environment
        if environment != nil {
            // Keep PATH and HOME unless the caller set them: programs expect them.
            for key in ["PATH", "HOME"] where env[key] == nil { env[key] = ProcessInfo.processInfo.environment[key] }
        }
        let argv = command.map { strdup($0) } + [nil]
        let envp = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var child: pid_t = 0
        let result = posix_spawnp(&child, command[0], &actions, &attributes, argv, envp)
        close(inPipe[0]); close(outPipe[1]); close(errPipe[1])
        guard result == 0 else {
            close(inPipe[1]); close(outPipe[0]); close(errPipe[0])
            throw ChildProcessError(kind: .spawnFailed, command: name, detail: String(cString: strerror(result)))
        }
        pid = child
        stdinFD = inPipe[1]
        stdoutFD = outPipe[0]
        // Writing to a runner that died must give EPIPE, not kill the lab.
        signal(SIGPIPE, SIG_IGN)
        let tail = TailBuffer(limit: ChildProcess.stderrLimit)
        stderrTail = tail
        let errFD = errPipe[0]
        stderrThread = Thread {
            var chunk = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = chunk.withUnsafeMutableBytes { read(errFD, $0.baseAddress, 4096) }
                if count < 0 && errno == EINTR { continue }
                if count <= 0 { break }
                tail.append(chunk[0..<count])
            }
            close(errFD)
            tail.finish()
        }
        stderrThread.start()
    }

    deinit {
        terminate()
        _ = try? wait(timeout: 5)
        close(stdinFD)
        close(stdoutFD)
    }

    /// Writes `line` and a newline to the child's standard input.
    public func writeLine(_ line: String) throws {
        var bytes = Array(line.utf8)
        bytes.append(UInt8(ascii: "\n"))
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { write(stdinFD, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                throw ChildProcessError(kind: .io, command: displayName, detail: "write: \(String(cString: strerror(errno)))")
            }
            offset += written
        }
    }

    /// Closes the child's standard input (end of file for it).
    public func closeInput() {
        close(stdinFD)
    }

    /// Reads one line from standard output, waiting at most `timeout` seconds.
    /// Returns nil at end of file (the child closed its output or exited).
    public func readLine(timeout: Double) throws -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let newline = stdoutBuffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: stdoutBuffer[..<newline], as: UTF8.self)
                stdoutBuffer.removeSubrange(...newline)
                return line
            }
            let remaining = deadline.timeIntervalSinceNow
            if remaining <= 0 {
                throw ChildProcessError(kind: .timedOut, command: displayName, detail: "no reply within \(timeout) s")
            }
            var descriptor = pollfd(fd: stdoutFD, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, Int32(min(remaining * 1000, 60_000).rounded(.up)))
            if ready < 0 {
                if errno == EINTR { continue }
                throw ChildProcessError(kind: .io, command: displayName, detail: "poll: \(String(cString: strerror(errno)))")
            }
            if ready == 0 { continue }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let count = chunk.withUnsafeMutableBytes { read(stdoutFD, $0.baseAddress, 65536) }
            if count < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                throw ChildProcessError(kind: .io, command: displayName, detail: "read: \(String(cString: strerror(errno)))")
            }
            if count == 0 {
                if stdoutBuffer.isEmpty { return nil }
                let line = String(decoding: stdoutBuffer, as: UTF8.self)
                stdoutBuffer.removeAll()
                return line
            }
            stdoutBuffer.append(contentsOf: chunk[0..<count])
        }
    }

    /// Reads standard output to its end, within `timeout` seconds.
    public func readToEnd(timeout: Double) throws -> String {
        var lines = [String]()
        let deadline = Date().addingTimeInterval(timeout)
        while let line = try readLine(timeout: max(deadline.timeIntervalSinceNow, 0.001)) {
            lines.append(line)
        }
        return lines.joined(separator: "\n")
    }

    /// Sends SIGKILL to the child's process group, unless it has already exited.
    public func terminate() {
        lock.lock()
        defer { lock.unlock() }
        if exitStatus == nil { kill(-pid, SIGKILL) }
    }

    /// Waits for the child to exit; returns its exit status, or the negated
    /// signal number when a signal ended it.
    @discardableResult
    public func wait(timeout: Double) throws -> Int32 {
        lock.lock()
        if let exitStatus { lock.unlock(); return exitStatus }
        lock.unlock()
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            var status: Int32 = 0
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid {
                let code: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : -(status & 0x7f)
                lock.lock()
                exitStatus = code
                lock.unlock()
                stderrTail.waitFinished(timeout: 2)
                return code
            }
            if result < 0 && errno != EINTR {
                throw ChildProcessError(kind: .io, command: displayName, detail: "waitpid: \(String(cString: strerror(errno)))")
            }
            if Date() >= deadline {
                throw ChildProcessError(kind: .timedOut, command: displayName, detail: "still running after \(timeout) s")
            }
            usleep(2_000)
        }
    }

    /// The last part of what the child wrote to standard error.
    public var stderr: String { stderrTail.text }

    private var displayName: String { command.joined(separator: " ") }

    /// Runs `command` to completion and collects its output; kills it after `timeout` seconds.
    public static func run(_ command: [String], environment: [String: String]? = nil, directory: String? = nil,
                           timeout: Double) throws -> (status: Int32, stdout: String, stderr: String) {
        let child = try ChildProcess(command, environment: environment, directory: directory)
        child.closeInput()
        let output: String
        do {
            output = try child.readToEnd(timeout: timeout)
        } catch let error as ChildProcessError where error.kind == .timedOut {
            child.terminate()
            _ = try? child.wait(timeout: 5)
            throw ChildProcessError(kind: .timedOut, command: error.command,
                                    detail: "killed after \(timeout) s; stderr: \(child.stderr.suffix(2000))")
        }
        let status = try child.wait(timeout: max(timeout, 5))
        return (status, output, child.stderr)
    }
}

/// The last `limit` bytes written to it.
private final class TailBuffer: @unchecked Sendable {
    private var bytes = [UInt8]()
    private let limit: Int
    private let condition = NSCondition()
    private var finished = false

    init(limit: Int) { self.limit = limit }

    func append(_ chunk: ArraySlice<UInt8>) {
        condition.lock()
        bytes.append(contentsOf: chunk)
        if bytes.count > limit { bytes.removeFirst(bytes.count - limit) }
        condition.unlock()
    }

    func finish() {
        condition.lock()
        finished = true
        condition.broadcast()
        condition.unlock()
    }

    func waitFinished(timeout: Double) {
        condition.lock()
        let deadline = Date().addingTimeInterval(timeout)
        while !finished && condition.wait(until: deadline) {}
        condition.unlock()
    }

    var text: String {
        condition.lock()
        defer { condition.unlock() }
        return String(decoding: bytes, as: UTF8.self)
    }
}
