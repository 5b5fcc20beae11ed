import Foundation
import Hummingbird
import NIOCore

/// xterm.js 3.8 from Debian (never committed here), at `/web/vendor/xterm/xterm.js`, `xterm.css`
/// and `addons/fit/fit.js`; a 404 with a sentence when the packages are not installed.
///
/// Debian's `libjs-xterm` ships `/usr/share/javascript/xterm/xterm.js` as a CommonJS stub
/// (`require("./public/Terminal")`), which a browser cannot load; the modules themselves are in
/// `node-xterm` (`/usr/share/nodejs/xterm/lib`). The proxy then bundles those modules once, in
/// a small loader that sets `window.Terminal`; `fit.js` is wrapped to set `window.TeleportXtermFit`.
struct XtermAssets: Sendable {
    /// Where `libjs-xterm` installs the browser files.
    var directory = "/usr/share/javascript/xterm"
    /// Where `node-xterm` installs the CommonJS modules.
    var modules = "/usr/share/nodejs/xterm/lib"

    /// Adds the routes to `router`.
    func register(on router: Router<ProxyRequestContext>) {
        let directory = self.directory
        let modules = self.modules
        let bundle = Self.load { Self.terminalBundle(browserFile: directory + "/xterm.js", modules: modules) }
        let css = Self.load { FileManager.default.contents(atPath: directory + "/xterm.css") ?? FileManager.default.contents(atPath: modules + "/xterm.css") }
        let fit = Self.load {
            (FileManager.default.contents(atPath: directory + "/addons/fit/fit.js") ?? FileManager.default.contents(atPath: modules + "/addons/fit/fit.js"))
                .map { Data("(function () { var exports = {};\n".utf8) + $0 + Data("\nwindow.TeleportXtermFit = exports; })();\n".utf8) }
        }
        router.get("web/vendor/xterm/xterm.js") { _, _ in Self.reply(bundle, type: "text/javascript; charset=utf-8") }
        router.get("web/vendor/xterm/xterm.css") { _, _ in Self.reply(css, type: "text/css; charset=utf-8") }
        router.get("web/vendor/xterm/addons/fit/fit.js") { _, _ in Self.reply(fit, type: "text/javascript; charset=utf-8") }
    }

    static func load(_ read: () -> Data?) -> Data? { read() }

    static func reply(_ data: Data?, type: String) -> Response {
        guard let data else {
            return Response(
                status: .notFound, headers: [.contentType: "text/plain; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: "xterm.js is not installed on this proxy: install the libjs-xterm and node-xterm packages.\n")))
        }
        return Response(status: .ok, headers: [.contentType: type, .cacheControl: "max-age=3600"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// The browser file when it is a real bundle; otherwise the CommonJS modules in one loader.
    static func terminalBundle(browserFile: String, modules: String) -> Data? {
        if let file = FileManager.default.contents(atPath: browserFile), !String(decoding: file, as: UTF8.self).contains("require(") {
            return file
        }
        guard let enumerator = FileManager.default.enumerator(atPath: modules) else { return nil }
        var out = "(function () {\n\"use strict\";\nvar defs = {}, cache = {};\n"
        out += """
            function resolve(from, path) {
              var parts = from.split("/"); parts.pop();
              path.split("/").forEach(function (p) { if (p === "..") { parts.pop(); } else if (p !== ".") { parts.push(p); } });
              return parts.join("/");
            }
            function load(id) {
              if (cache[id]) { return cache[id].exports; }
              if (!defs[id]) { throw new Error("xterm bundle: no module " + id); }
              var module = { exports: {} }; cache[id] = module;
              defs[id](function (path) { return load(resolve(id, path)); }, module, module.exports);
              return module.exports;
            }

            """
        var count = 0
        for case let path as String in enumerator
        where path.hasSuffix(".js") && !path.hasSuffix(".test.js") && !path.hasPrefix("addons/") && !path.contains("/test")
        {
            guard let source = FileManager.default.contents(atPath: modules + "/" + path) else { continue }
            let id = String(path.dropLast(3))
            out += "defs[\"\(id)\"] = function (require, module, exports) {\n\(String(decoding: source, as: UTF8.self))\n};\n"
            count += 1
        }
        guard count > 0 else { return nil }
        out += "window.Terminal = load(\"xterm\");\n})();\n"
        return Data(out.utf8)
    }
}
