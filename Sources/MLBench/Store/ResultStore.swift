import Foundation

/// Where results are kept. `LabStore` implements it on SQLite (the embedded default)
/// and on PostgreSQL (several bench hosts), together with `ExperimentQueue`.
public protocol ResultStore {
    /// Stores a new result; an existing result is never modified.
    func insert(_ result: ExperimentResult) throws
    func result(id: String) throws -> ExperimentResult?
    /// The newest results first.
    func list(limit: Int) throws -> [ResultHeadline]
}

/// One line of a results listing.
public struct ResultHeadline: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var status: ExperimentResult.Status
    public var board: String?
    public var toolchain: String?
    public var toolchainVersion: String?
    public var medianNs: Double?
    public var preservationRatio: Double?
    public var finishedAt: Date
    public var failureReason: String?
    /// Who ran it (the submitter, for queued experiments).
    public var user: String? = nil
}
