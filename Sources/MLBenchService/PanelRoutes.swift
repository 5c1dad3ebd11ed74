import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The web monitoring panel (Docs/Panel.md): static pages under `/panel/` that call the
/// REST API with the user's own token. The pages hold no data, so serving them needs no
/// token; everything they show comes from the API, which checks it.
public enum PanelRoutes {
    /// The names served, each with its file and media type: the only names served (a
    /// request's path is looked up here, never used to open a file). The pages share one
    /// HTML shell; its script draws the page the address names.
    static let files: [String: (file: String, type: String)] = [
        "index.html": ("panel.html", "text/html; charset=utf-8"),
        "result.html": ("panel.html", "text/html; charset=utf-8"),
        "compare.html": ("panel.html", "text/html; charset=utf-8"),
        "panel.css": ("panel.css", "text/css; charset=utf-8"),
        "panel.js": ("panel.js", "text/javascript; charset=utf-8"),
        "plots.js": ("plots.js", "text/javascript; charset=utf-8"),
    ]

    /// Scripts and styles from the panel's own files only; inline style attributes for the
    /// plots' colours; no framing.
    static let contentSecurityPolicy = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'"

    public static func register(_ routes: APIRoutes) {
        let assets = load()
        // The router takes /panel and /panel/ as one path; the shell's <base> makes its
        // relative addresses work from either.
        routes.page("/panel") { _, _ in serve("index.html", assets) }
        routes.page("/panel/:file") { _, context in serve(context.parameters.get("file") ?? "", assets) }
    }

    /// The module's resource bundle as SwiftPM lays it out beside the executable. Looked up
    /// here rather than through `Bundle.module`, which ends the process when the bundle is
    /// missing: a binary copied without it still serves the API, and says what is missing.
    static let bundleName = "mlbench_MLBenchService.resources"

    /// The files, read once when the server starts: they are part of the build.
    static func load() -> [String: Data] {
        let beside = [Bundle.main.bundleURL, Bundle.main.executableURL?.resolvingSymlinksInPath().deletingLastPathComponent()]
        guard let folder = beside.compactMap({ $0?.appendingPathComponent(bundleName).appendingPathComponent("Panel", isDirectory: true) })
            .first(where: { FileManager.default.fileExists(atPath: $0.path) }) else { return [:] }
        var assets = [String: Data]()
        for file in Set(files.values.map(\.file)) {
            if let data = try? Data(contentsOf: folder.appendingPathComponent(file)) { assets[file] = data }
        }
        return assets
    }

    static func serve(_ name: String, _ assets: [String: Data]) -> Response {
        guard let entry = files[name] else {
            return ServiceCoding.text("no panel page '\(name)' (the panel is at /panel/)", status: .notFound)
        }
        guard let data = assets[entry.file] else {
            return ServiceCoding.text("the panel's files were not found: \(bundleName)/Panel belongs beside the mlbench executable", status: .notFound)
        }
        var headers = HTTPFields()
        headers[.contentType] = entry.type
        headers[.cacheControl] = "no-cache"
        headers[.contentSecurityPolicy] = contentSecurityPolicy
        headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
