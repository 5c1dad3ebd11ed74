import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// One synchronous HTTP request and its answer, through URLSession: what the lab's
/// outgoing calls share (webhook notifications, the MLflow export). The lab's commands
/// are synchronous, so the call blocks its thread until the answer or the timeout.
public enum HTTPExchange {
    public struct Response: Sendable {
        public var status: Int
        public var body: Data
        public var text: String { String(decoding: body, as: UTF8.self) }
    }

    /// Sends `request` and returns the answer, whatever its status; throws when no answer
    /// came (unreachable host, refused connection, timeout), naming `peer`.
    public static func send(_ request: URLRequest, peer: String) throws -> Response {
        let outcome = Outcome()
        let done = DispatchSemaphore(value: 0)
        URLSession.shared.dataTask(with: request) { data, response, error in
            outcome.set(status: (response as? HTTPURLResponse)?.statusCode, body: data, error: error.map { $0.localizedDescription })
            done.signal()
        }.resume()
        // URLSession enforces the request's own timeout; this is a backstop a few seconds later.
        guard done.wait(timeout: .now() + request.timeoutInterval + 5) == .success else {
            throw LabError.usage("\(peer) did not answer within \(Int(request.timeoutInterval)) s")
        }
        let (status, body, error) = outcome.get()
        if let error { throw LabError.usage("cannot reach \(peer): \(error)") }
        guard let status else { throw LabError.usage("\(peer) gave no HTTP answer") }
        return Response(status: status, body: body ?? Data())
    }

    private final class Outcome: @unchecked Sendable {
        private let lock = NSLock()
        private var status: Int?
        private var body: Data?
        private var error: String?
        func set(status: Int?, body: Data?, error: String?) { lock.lock(); (self.status, self.body, self.error) = (status, body, error); lock.unlock() }
        func get() -> (Int?, Data?, String?) { lock.lock(); defer { lock.unlock() }; return (status, body, error) }
    }
}
