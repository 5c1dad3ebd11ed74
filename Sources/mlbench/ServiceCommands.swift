import ArgumentParser
import Foundation
import MLBench
import MLBenchService

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the lab over HTTP: the REST API (OpenAPI at /api/v1/openapi.json), live progress as server-sent events, Prometheus metrics at /metrics.",
        discussion: """
            Only registered users get in, each with an API token (Authorization: Bearer TOKEN):

              mlbench users add alice --role user
              mlbench users token alice          # prints the token once; only its SHA-256 is stored

            Roles: user (their own experiments and what is shared with them), operator (also the whole queue, boards on and off, messages to users), admin (also users and tokens).

            The server listens on a loopback address only; put a reverse proxy (TLS) in front of it to reach it from elsewhere. It runs no experiments: start `mlbench worker` for each bench host beside it, on the same store. See Docs/Service.md.
            """)

    @Option(help: "The loopback address to listen on (127.0.0.1, ::1 or localhost).") var host = "127.0.0.1"
    @Option(help: "The port (0: any free port; the one chosen is printed).") var port = 8080
    @Option(help: "The largest model upload, in MiB.") var maxModelMb = 512
    @Option(help: "The largest input (.npy) upload, in MiB.") var maxInputMb = 64
    @Option(help: "How often event streams look at the store, in seconds.") var eventPoll = 0.5
    @OptionGroup var options: LabOptions
    @OptionGroup var storeOptions: StoreOptions

    func run() throws {
        try report {
            let lab = try options.lab()
            let location = storeOptions.location(lab)
            var configuration = ServiceConfiguration(store: location)
            configuration.host = host
            configuration.port = port
            configuration.maxModelBytes = maxModelMb * 1024 * 1024
            configuration.maxInputBytes = maxInputMb * 1024 * 1024
            configuration.eventPoll = eventPoll
            guard ServiceConfiguration.isLoopback(host) else {
                throw Failure(description: "--host '\(host)' is not a loopback address; mlbench serve listens on 127.0.0.1, ::1 or localhost only (put a reverse proxy in front of it)")
            }
            guard (0...65535).contains(port) else { throw Failure(description: "--port \(port) is not a port number") }
            guard maxModelMb > 0, maxInputMb > 0 else { throw Failure(description: "upload limits must be positive") }
            let service = try LabService(lab: lab, configuration: configuration, signer: try BundleSigner.forLab(lab.home))
            let done = DispatchSemaphore(value: 0)
            let outcome = Outcome()
            Task {
                do {
                    try await MLBenchServer.run(service) { port in
                        let line = "mlbench serve: listening on http://\(host.contains(":") ? "[\(host)]" : host):\(port) (store \(location))\n"
                        FileHandle.standardOutput.write(Data(line.utf8))
                    }
                } catch {
                    outcome.error = error
                }
                done.signal()
            }
            done.wait()
            if let error = outcome.error { throw error }
        }
    }

    final class Outcome: @unchecked Sendable { var error: (any Error)? }
}

struct Users: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The service's users and their API tokens (for admins; acts on the store directly).",
        subcommands: [Add.self, List.self, Token.self, Tokens.self, Revoke.self, Role.self, Remove.self])

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Register a user.")
        @Argument(help: "The user's name (the name their experiments and results carry).") var name: String
        @Option(help: "user, operator or admin.") var role = "user"
        @OptionGroup var options: LabOptions
        @OptionGroup var storeOptions: StoreOptions

        func run() throws {
            try report {
                let user = try storeOptions.open(try options.lab()).addUser(name, role: try parseRole(role, option: "--role"))
                print("added \(user.name) (\(user.role.rawValue))")
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List users and how many tokens each has.")
        @OptionGroup var options: LabOptions
        @OptionGroup var storeOptions: StoreOptions

        func run() throws {
            try report {
                let store = try storeOptions.open(try options.lab())
                let tokens = Dictionary(grouping: try store.tokens(user: nil), by: \.user)
                var rows = [["USER", "ROLE", "TOKENS", "CREATED"]]
                for user in try store.users() {
                    rows.append([user.name, user.role.rawValue, "\(tokens[user.name]?.count ?? 0)", ResultCoding.timestamp(user.createdAt)])
                }
                print(rows.count == 1 ? "no user is registered" : ResultPresenter.table(rows))
            }
        }
    }

    struct Token: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Issue an API token for a user and print it (once: only its SHA-256 is stored).")
        @Argument var name: String
        @Option(help: "What the token is for.") var label: String?
        @OptionGroup var options: LabOptions
        @OptionGroup var storeOptions: StoreOptions

        func run() throws {
            try report { print(try storeOptions.open(try options.lab()).issueToken(user: name, label: label)) }
        }
    }

    struct Tokens: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List tokens by id (never the tokens themselves).")
        @Argument var name: String?
        @OptionGroup var options: LabOptions
        @OptionGroup var storeOptions: StoreOptions

        func run() throws {
            try report {
                var rows = [["ID", "USER", "LABEL", "CREATED"]]
                for token in try storeOptions.open(try options.lab()).tokens(user: name) {
                    rows.append([token.id, token.user, token.label ?? "", ResultCoding.timestamp(token.createdAt)])
                }
                print(rows.count == 1 ? "no token" : ResultPresenter.table(rows))
            }
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a token by its id (from `mlbench users tokens`).")
        @Argument var id: String
        @OptionGroup var options: LabOptions
        @OptionGroup var storeOptions: StoreOptions

        func run() throws {
            try report {
                try storeOptions.open(try options.lab()).revokeToken(id: id)
                print("revoked \(id)")
            }
        }
    }

    struct Role: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Change a user's role.")
        @Argument var name: String
        @Argument(help: "user, operator or admin.") var role: String
        @OptionGroup var options: LabOptions
        @OptionGroup var storeOptions: StoreOptions

        func run() throws {
            try report {
                try storeOptions.open(try options.lab()).setRole(try parseRole(role), user: name)
            }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a user with their tokens (their experiments and results stay).")
        @Argument var name: String
        @OptionGroup var options: LabOptions
        @OptionGroup var storeOptions: StoreOptions

        func run() throws {
            try report {
                try storeOptions.open(try options.lab()).removeUser(name)
                print("removed \(name)")
            }
        }
    }
}

/// A role named on the command line; `option` names where it was given, when an option.
private func parseRole(_ text: String, option: String? = nil) throws -> ServiceRole {
    guard let role = ServiceRole(rawValue: text) else {
        throw Failure(description: "\(option.map { "\($0) " } ?? "")'\(text)' is not user, operator or admin")
    }
    return role
}
