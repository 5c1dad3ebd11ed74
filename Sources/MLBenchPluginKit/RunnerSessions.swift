import Foundation
import MLBenchCore

/// The runner processes a board has started, by session id: waiting for the
/// greeting, one-line exchanges with a deadline, and stopping — the same for a
/// runner that is a local process (host) and one behind an SSH channel (Jetson,
/// Zynq), whose local end is the `ssh` client.
///
/// A runner that does not answer in time is killed through `abort`, which the
/// board supplies: killing a local `ssh` does not kill the process on the board.
public final class RunnerSessions: @unchecked Sendable {
    private struct Entry {
        var child: ChildProcess
        var abort: () -> Void
    }

    private var entries: [String: Entry] = [:]
    private let lock = NSLock()
    /// Names the runner's place in messages ("the runner", "the runner on board 'orin'").
    private let subject: String

    public init(subject: String = "the runner") {
        self.subject = subject
    }

    /// Waits for the first line of a runner that has just been started and keeps
    /// it as a session; returns the session id and the greeting.
    public func start(_ child: ChildProcess, startTimeoutMs: Int, abort: (() -> Void)? = nil) throws -> (id: String, greeting: String) {
        let kill = abort ?? { child.terminate() }
        let greeting: String
        do {
            guard let line = try child.readLine(timeout: Double(startTimeoutMs) / 1000) else {
                let status = try? child.wait(timeout: 5)
                throw PluginFailure(.failed, "\(subject) exited before it was ready (status \(status.map(String.init) ?? "?")): \(child.stderr.suffix(4000))")
            }
            greeting = line
        } catch let error as ChildProcessError {
            kill()
            child.terminate()
            throw PluginFailure(.timeout, "\(error); stderr: \(child.stderr.suffix(4000))")
        }
        let id = UUID().uuidString.lowercased()
        lock.lock()
        entries[id] = Entry(child: child, abort: kill)
        lock.unlock()
        return (id, greeting)
    }

    /// Sends one line and waits for the one-line answer; a runner that stays
    /// silent past the deadline is killed, one that died is reported with its last words.
    public func exchange(_ request: RunnerExchange) throws -> RunnerExchangeReply {
        let entry = try self.entry(request.session)
        let child = entry.child
        do {
            try child.writeLine(request.message)
            if let line = try child.readLine(timeout: Double(request.timeoutMs) / 1000) {
                return RunnerExchangeReply(message: line)
            }
        } catch let error as ChildProcessError where error.kind == .timedOut {
            entry.abort()
            child.terminate()
            throw PluginFailure(.timeout, "\(subject) gave no answer within \(request.timeoutMs) ms and was killed")
        } catch is ChildProcessError {
            // A write to a dead runner fails; how it ended is reported below.
        }
        let status = try? child.wait(timeout: 5)
        let how = status.map { $0 < 0 ? "killed by signal \(-$0)" : "exited with status \($0)" } ?? "stopped answering"
        throw PluginFailure(.failed, "\(subject) \(how); its last words: \(child.stderr.suffix(4000))")
    }

    /// Closes the runner's input, waits for it to end (killing it after 10 s) and forgets the session.
    public func stop(_ request: RunnerStop) throws -> RunnerExit {
        let entry = try self.entry(request.session)
        lock.lock()
        entries[request.session] = nil
        lock.unlock()
        let child = entry.child
        child.closeInput()
        let status: Int32
        if let code = try? child.wait(timeout: 10) {
            status = code
        } else {
            entry.abort()
            child.terminate()
            status = (try? child.wait(timeout: 5)) ?? -9
        }
        return RunnerExit(exitStatus: status, stderr: String(child.stderr.suffix(16_000)))
    }

    /// The process of a session, for what a board does to it (pinning, priority).
    public func child(_ id: String) throws -> ChildProcess { try entry(id).child }

    private func entry(_ id: String) throws -> Entry {
        lock.lock()
        defer { lock.unlock() }
        guard let entry = entries[id] else { throw PluginFailure(.invalidRequest, "no runner session '\(id)'") }
        return entry
    }
}

/// File names that travel between the lab and a board: plain names only, so a
/// request can never write or read outside its deployment folder.
public enum PlainFileName {
    /// Throws an invalid-request failure naming `step` when `name` is not a plain file name.
    public static func check(_ name: String, step: String) throws {
        guard !name.isEmpty, !name.contains("/"), name != "..", name != "." else {
            throw PluginFailure(.invalidRequest, "\(step): '\(name)' is not a plain file name")
        }
    }
}

/// Deployments kept on the host (the host board; boards without a file system,
/// whose runner side runs in the plugin): fetching is a copy.
public enum LocalFiles {
    /// Copies the plain file names `names` from `source` into `destination`, replacing what is there.
    public static func copy(_ names: [String], from source: URL, to destination: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: destination, withIntermediateDirectories: true)
            for name in names {
                try PlainFileName.check(name, step: "fetch")
                let target = URL(fileURLWithPath: destination).appendingPathComponent(name).path
                try? FileManager.default.removeItem(atPath: target)
                try FileManager.default.copyItem(atPath: source.appendingPathComponent(name).path, toPath: target)
            }
        } catch let failure as PluginFailure {
            throw failure
        } catch {
            throw PluginFailure(.device, "fetch from \(source.path): \(error.localizedDescription)")
        }
    }
}
