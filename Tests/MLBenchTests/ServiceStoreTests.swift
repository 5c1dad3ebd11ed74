import Foundation
@testable import MLBench
import XCTest

/// The service's part of the store (schema 4): users, hashed tokens, shares and what
/// each user may see, messages, uploads and the step log, on SQLite and PostgreSQL.
final class ServiceStoreTests: XCTestCase {
    func testTokensAreStoredAsTheirSHA256AndAuthenticateTheirUser() throws {
        try StoreBackends.each { store, _ in
            _ = try store.addUser("alice", role: .user)
            let token = try store.issueToken(user: "alice", label: "laptop")
            XCTAssertTrue(token.hasPrefix("mlb_") && token.count == 4 + 64, token)
            let stored = try store.connection.query("SELECT token_sha256 FROM api_tokens").compactMap { $0.first?.text }
            XCTAssertEqual(stored, [try LabStore.tokenHash(token)], "only the hash is kept")
            let everything = try store.connection.query("SELECT token_sha256, user_name, label FROM api_tokens").flatMap { $0 }.compactMap(\.text)
            XCTAssertFalse(everything.contains { $0.contains(token.dropFirst(4)) }, "never the token itself")
            XCTAssertEqual(try store.authenticate(token: token)?.name, "alice")
            XCTAssertNil(try store.authenticate(token: token + "0"))
            XCTAssertNil(try store.authenticate(token: "mlb_" + String(repeating: "0", count: 64)))
            XCTAssertNil(try store.authenticate(token: ""))

            let second = try store.issueToken(user: "alice", label: nil)
            XCTAssertNotEqual(second, token, "tokens are random")
            let id = try XCTUnwrap(try store.tokens(user: "alice").first { $0.label == "laptop" }?.id)
            XCTAssertEqual(id, String(try LabStore.tokenHash(token).prefix(12)))
            try store.revokeToken(id: id)
            XCTAssertNil(try store.authenticate(token: token), "a revoked token no longer opens")
            XCTAssertEqual(try store.authenticate(token: second)?.name, "alice")

            try store.removeUser("alice")
            XCTAssertNil(try store.authenticate(token: second), "a removed user's tokens go with them")
        }
    }

    func testTheTokenHashIsSHA256() throws {
        XCTAssertEqual(try LabStore.tokenHash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    func testUsersRolesAndNames() throws {
        try StoreBackends.each { store, _ in
            _ = try store.addUser("olga", role: .operator)
            XCTAssertThrowsError(try store.addUser("olga", role: .user))
            XCTAssertThrowsError(try store.addUser("../etc", role: .user))
            XCTAssertThrowsError(try store.addUser("", role: .user))
            try store.setRole(.admin, user: "olga")
            XCTAssertEqual(try store.user(named: "olga")?.role, .admin)
            XCTAssertThrowsError(try store.issueToken(user: "nobody", label: nil))
            XCTAssertTrue(ServiceRole.user < .operator && ServiceRole.operator < .admin)
        }
    }

    func testAUserSeesTheirOwnResultsAndThoseSharedWithThem() throws {
        try StoreBackends.each { store, _ in
            for name in ["alice", "bob"] { _ = try store.addUser(name, role: .user) }
            let admin = try store.addUser("root", role: .admin)
            var mine = ExperimentResult.sample(id: "r-alice")
            mine.user = "alice"
            var theirs = ExperimentResult.sample(id: "r-bob", finishedAt: Date(timeIntervalSince1970: 1_800_000_100))
            theirs.user = "bob"
            try store.insert(mine)
            try store.insert(theirs)
            let alice = try XCTUnwrap(try store.user(named: "alice")), bob = try XCTUnwrap(try store.user(named: "bob"))

            XCTAssertEqual(try store.list(limit: 10, visibleTo: alice).map(\.id), ["r-alice"])
            XCTAssertEqual(try store.list(limit: 10, visibleTo: bob).map(\.id), ["r-bob"])
            XCTAssertEqual(try store.list(limit: 10, visibleTo: admin).map(\.id), ["r-bob", "r-alice"])
            XCTAssertFalse(try store.canSee(result: mine, as: bob))

            try store.share(.result, "r-alice", with: "bob", by: "alice")
            XCTAssertTrue(try store.canSee(result: mine, as: bob))
            XCTAssertEqual(Set(try store.list(limit: 10, visibleTo: bob).map(\.id)), ["r-alice", "r-bob"])
            XCTAssertEqual(try store.shares(.result, "r-alice").map(\.user), ["bob"])
            try store.unshare(.result, "r-alice", with: "bob")
            XCTAssertFalse(try store.canSee(result: mine, as: bob))
            XCTAssertThrowsError(try store.share(.result, "r-alice", with: "nobody", by: "alice"))

            // Sharing a queued experiment shares its result too.
            try store.registerBoard("host", host: "bench-1")
            let queued = try store.submit(Submission(user: "alice", name: "q", board: "host", definition: "name: q"), at: Date())
            XCTAssertFalse(try store.canSee(experiment: queued, as: bob))
            XCTAssertEqual(try store.experiments(state: nil, visibleTo: bob).count, 0)
            try store.connection.execute("UPDATE queue SET result_id = 'r-alice' WHERE id = ?", [.text(queued.id)])
            try store.share(.experiment, queued.id, with: "bob", by: "alice")
            XCTAssertTrue(try store.canSee(experiment: queued, as: bob))
            XCTAssertEqual(try store.experiments(state: nil, visibleTo: bob).map(\.id), [queued.id])
            XCTAssertTrue(try store.canSee(result: mine, as: bob))
            let olga = try store.addUser("olga", role: .operator)
            XCTAssertEqual(try store.experiments(state: nil, visibleTo: olga).map(\.id), [queued.id], "operators see the whole queue")
        }
    }

    func testMessagesUploadsAndTheStepLog() throws {
        try StoreBackends.each { store, _ in
            for name in ["alice", "bob"] { _ = try store.addUser(name, role: .user) }
            let first = try store.postMessage(author: "olga", recipient: nil, text: "maintenance at 18:00")
            let second = try store.postMessage(author: "olga", recipient: "alice", text: "your sweep")
            XCTAssertGreaterThan(second.id, first.id)
            XCTAssertEqual(try store.messages(for: nil).map(\.id), [second.id, first.id], "the ids the store gave them")
            XCTAssertThrowsError(try store.postMessage(author: "olga", recipient: "nobody", text: "x"))
            XCTAssertThrowsError(try store.postMessage(author: "olga", recipient: nil, text: "  "))
            XCTAssertEqual(try store.messages(for: "alice").map(\.text), ["your sweep", "maintenance at 18:00"])
            XCTAssertEqual(try store.messages(for: "bob").map(\.text), ["maintenance at 18:00"])

            let hash = String(repeating: "ab", count: 32)
            try store.recordUpload(UploadRecord(sha256: hash, user: "alice", kind: "model", size: 10, createdAt: Date()))
            XCTAssertEqual(try store.upload(sha256: hash, user: "alice")?.kind, "model")
            XCTAssertNil(try store.upload(sha256: hash, user: "bob"), "an upload is its uploader's")

            try store.appendLog(experiment: "e1", lines: ["building", "measuring"], at: Date())
            try store.appendLog(experiment: "e1", lines: ["done"], at: Date())
            XCTAssertEqual(try store.log(experiment: "e1").map(\.line), ["building", "measuring", "done"])
            XCTAssertEqual(try store.log(experiment: "e1", after: 2).map(\.line), ["done"])
            XCTAssertEqual(try store.log(experiment: "e2").count, 0)
        }
    }
}
