import MLBenchCore

/// The initial condition of the timed iterations: where the experiment asked the
/// inputs to be, and where the runner says they were. They differ when a runner
/// cannot place inputs in its device memory (it then times from host memory), and
/// `effective` is nil when the runner does not report it (it predates the field).
public struct InputPlacementRecord: Codable, Sendable, Equatable {
    public var requested: InputPlacement
    public var effective: InputPlacement?
    /// The runtime's memory the inputs were in ("TVM tensors on cpu(0)", "CUDA device buffers", ...).
    public var detail: String?

    public init(requested: InputPlacement, effective: InputPlacement?, detail: String?) {
        self.requested = requested
        self.effective = effective
        self.detail = detail
    }

    /// One line for the step log and the result page.
    public var note: String {
        guard let effective else {
            return "inputs: \(requested.rawValue) placement asked for; the runner does not say where the inputs were"
        }
        let place = effective == .device ? "placed in device memory before timing" : "handed over from host memory on every iteration"
        let fallback = effective == requested ? "" : " (\(requested.rawValue) asked for; the runner cannot place them there)"
        return "inputs \(place)" + (detail.map { ": \($0)" } ?? "") + fallback
    }

    /// Gathers what each measured batch reported. A runner that answers one batch
    /// one way and another batch another way is recorded as unreported rather than
    /// as either: the timings would mix two conditions.
    struct Collector {
        let requested: InputPlacement
        private var seen: [InputPlacement?] = []
        private var detail: String?

        init(requested: InputPlacement) { self.requested = requested }

        mutating func add(_ batch: RunnerTimings) {
            seen.append(batch.inputPlacement)
            detail = detail ?? batch.inputPlacementDetail
        }

        var record: InputPlacementRecord {
            let kinds = Set(seen.map { $0?.rawValue ?? "" })
            guard kinds.count == 1, let only = seen.first ?? nil else {
                return InputPlacementRecord(requested: requested, effective: nil,
                                            detail: kinds.count > 1 ? "the runner changed placement between batches" : nil)
            }
            return InputPlacementRecord(requested: requested, effective: only, detail: detail)
        }
    }
}
