import Foundation
import MLBenchCore

// Probes beside the measurement: created from the inventory, recorded on the
// runner's clock, judged and stored.
extension ExperimentRunner {
    /// The inventory probes attached to the board, created; one that cannot be
    /// created is recorded as failed rather than failing the experiment. A probe
    /// setting `pid: runner` is given the runner's process id, when the board
    /// reports it (`runner_pid`, as the host board does).
    func boardProbes(_ board: String, result: inout ExperimentResult) -> ProbeRecorder? {
        let entries = (lab.inventory.inventory.probes ?? [:]).filter { $0.value.board == board }
        guard !entries.isEmpty else { return nil }
        let names = entries.keys.sorted()
        let runnerPID = result.board?.runnerConditions?["runner_pid"].flatMap { Double($0) }
        let probes = names.map { name -> (name: String, probe: any Probe) in
            do {
                var settings = entries[name]?.settings
                if case .object(var members)? = settings, members["pid"] == .string("runner") {
                    guard let runnerPID else {
                        throw LabError.inventory("probe '\(name)': 'pid: runner' needs a board that reports its runner's process id; board '\(board)' does not")
                    }
                    members["pid"] = .number(runnerPID)
                    settings = .object(members)
                }
                return (name, try lab.probe(name, settings: settings))
            } catch {
                return (name, UnavailableProbe(error: error))
            }
        }
        log(&result, "measure", "recording probe(s) \(names.joined(separator: ", ")) during warm-up and measurement")
        return ProbeRecorder(probes: probes)
    }

    /// The runner's clock against the host's, logged; nil (and logged) when the runner
    /// does not answer `clock`: its clock is then taken to be the host's.
    func clockOffset(_ session: DeployedRunner, result: inout ExperimentResult) -> ClockOffset? {
        do {
            guard let offset = try session.clockOffset() else { return nil }
            log(&result, "measure", String(format: "runner clock − host clock: %.3f ms ± %.3f ms (best round trip %.3f ms of %d)",
                                           Double(offset.offsetNs) / 1e6, Double(offset.uncertaintyNs) / 1e6,
                                           Double(offset.roundTripNs) / 1e6, offset.exchanges))
            return offset
        } catch {
            log(&result, "measure", "the runner's clock is taken to be the host's: it did not answer 'clock' (\(error))")
            return nil
        }
    }

    /// Stops the recording and stores each probe's record on the runner's clock,
    /// logging failures, gaps and rates not met.
    func recordProbes(_ probes: ProbeRecorder?, alignment: ClockAlignment?, into result: inout ExperimentResult) {
        guard let probes else { return }
        let records = probes.stop(alignment: alignment)
        result.probes = records
        if let alignment {
            result.clock = alignment
            log(&result, "measure", alignment.note)
        }
        if let measurement = result.measurement {
            let energy = records.flatMap { EnergyPerInference.analyze($0, startsNs: measurement.startsNs, durationsNs: measurement.durationsNs) }
            if !energy.isEmpty {
                result.energy = energy
                for record in energy { log(&result, "measure", "energy, \(record.probe).\(record.channel): \(record.note)") }
            }
        }
        for record in records {
            if let failure = record.failure {
                log(&result, "measure", String(format: "probe %@: %d samples, then a gap of %.3f s: %@", record.name, record.samples.count,
                                               record.gap?.seconds ?? 0, failure))
            } else {
                log(&result, "measure", "probe \(record.name): \(record.samples.count) samples on \(record.channels.count) channel(s)")
            }
            for sampling in record.sampling ?? [] where sampling.isWorthNoting {
                log(&result, "measure", "probe \(record.name).\(sampling.channel): \(sampling.note)")
            }
        }
    }
}

/// A probe the inventory names but that could not be created (its device is
/// missing, its settings are wrong): it fails to start with that error, so the
/// recording names it and keeps the gap.
private final class UnavailableProbe: Probe, @unchecked Sendable {
    let error: Error
    init(error: Error) { self.error = error }
    func describe() throws -> ProbeDescription { throw error }
    func start(_ deliver: @escaping @Sendable ([ProbeSample]) -> Void) throws { throw error }
    func stop() throws {}
}
