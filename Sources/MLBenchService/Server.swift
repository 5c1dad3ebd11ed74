import Foundation
import Hummingbird
import Logging
import MLBench
import NIOCore

/// `mlbench serve`: the REST API (and whatever else registers routes) over one store.
public enum MLBenchServer {
    /// The areas of the server, each adding its routes. A new area (the web panel, say)
    /// adds its registration function here.
    public static let areas: [@Sendable (APIRoutes) -> Void] = [
        MetaRoutes.register,
        UserRoutes.register,
        FileRoutes.register,
        ExperimentRoutes.register,
        ResultRoutes.register,
        BoardRoutes.register,
        QueueRoutes.register,
        MessageRoutes.register,
        MetricsRoutes.register,
        PanelRoutes.register,
    ]

    /// Every route of every area on one router.
    public static func routes(_ service: LabService) -> APIRoutes {
        let routes = APIRoutes(router: Router(), service: service)
        for register in areas { register(routes) }
        OpenAPIRoutes.register(routes) // last: it documents the others
        return routes
    }

    /// Serves until SIGINT or SIGTERM. `listening` is told the port once the server accepts
    /// connections (useful with port 0).
    public static func run(_ service: LabService, logger: Logger? = nil, listening: @escaping @Sendable (Int) -> Void = { _ in }) async throws {
        let configuration = service.configuration
        guard ServiceConfiguration.isLoopback(configuration.host) else {
            throw LabError.usage("mlbench serve listens on loopback addresses only (127.0.0.1, ::1, localhost), not '\(configuration.host)'; put a reverse proxy in front of it")
        }
        let routes = routes(service)
        var log = logger ?? Logger(label: "mlbench.serve")
        if logger == nil { log.logLevel = .warning }
        let app = Application(
            router: routes.router,
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "mlbench"),
            onServerRunning: { channel in listening(channel.localAddress?.port ?? configuration.port) },
            logger: log)
        try await app.runService()
    }
}
