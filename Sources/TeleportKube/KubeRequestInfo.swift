/// What a Kubernetes API request asks for, read from its method and path (for the audit and the
/// session decisions): the verb as Kubernetes names it, the API group, resource, subresource,
/// namespace and name. Non-resource paths (`/version`, `/api`, `/apis`, `/openapi/...`) have no
/// resource.
public struct KubeRequestInfo: Sendable, Equatable {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`, or the
    /// lower-case method for non-resource paths.
    public var verb: String
    /// The API group (empty for the core group and non-resource paths).
    public var apiGroup: String
    /// The resource (`pods`), empty for non-resource paths.
    public var resource: String
    /// The subresource (`exec`, `log`, `attach`, `portforward`), or empty.
    public var subresource: String
    /// The namespace, or empty.
    public var namespace: String
    /// The object's name, or empty.
    public var name: String
    /// The path without the query.
    public var path: String
    /// The query's parameters, in order.
    public var query: [(String, String)] { Self.parameters(queryText) }
    var queryText: String

    public static func == (lhs: KubeRequestInfo, rhs: KubeRequestInfo) -> Bool {
        lhs.verb == rhs.verb && lhs.apiGroup == rhs.apiGroup && lhs.resource == rhs.resource && lhs.subresource == rhs.subresource
            && lhs.namespace == rhs.namespace && lhs.name == rhs.name && lhs.path == rhs.path
    }

    /// Whether the request starts an interactive stream (`exec` or `attach` of a pod).
    public var isSession: Bool { resource == "pods" && (subresource == "exec" || subresource == "attach") }

    /// The first value of query parameter `name`.
    public func parameter(_ name: String) -> String? { query.first { $0.0 == name }?.1 }

    /// All values of query parameter `name` (exec's `command`).
    public func parameters(_ name: String) -> [String] { query.filter { $0.0 == name }.map(\.1) }

    /// Reads a request.
    public init(method: String, target: String) {
        let parts = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        path = String(parts.first ?? "")
        queryText = parts.count > 1 ? String(parts[1]) : ""
        apiGroup = ""
        resource = ""
        subresource = ""
        namespace = ""
        name = ""
        var segments = path.split(separator: "/").map { Self.decode(String($0)) }
        let method = method.uppercased()
        var isResource = false
        if segments.first == "api", segments.count >= 3 {
            segments.removeFirst(2)
            isResource = true
        } else if segments.first == "apis", segments.count >= 4 {
            apiGroup = segments[1]
            segments.removeFirst(3)
            isResource = true
        }
        guard isResource else {
            verb = method.lowercased()
            return
        }
        if segments.first == "namespaces", segments.count >= 2 {
            namespace = segments[1]
            if segments.count == 2 {
                resource = "namespaces"
                name = namespace
                segments = []
            } else {
                segments.removeFirst(2)
            }
        }
        if !segments.isEmpty { resource = segments.removeFirst() }
        if !segments.isEmpty { name = segments.removeFirst() }
        if !segments.isEmpty { subresource = segments.removeFirst() }
        let watch = ["true", "1"].contains(Self.parameters(queryText).first { $0.0 == "watch" }?.1 ?? "")
        switch method {
        case "GET", "HEAD": verb = watch ? "watch" : (name.isEmpty ? "list" : "get")
        case "POST": verb = "create"
        case "PUT": verb = "update"
        case "PATCH": verb = "patch"
        case "DELETE": verb = name.isEmpty ? "deletecollection" : "delete"
        default: verb = method.lowercased()
        }
    }

    static func parameters(_ text: String) -> [(String, String)] {
        text.split(separator: "&").map { pair in
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return (decode(String(kv[0])), kv.count > 1 ? decode(String(kv[1])) : "")
        }
    }

    /// Percent-decoding (`+` is a space in queries).
    static func decode(_ text: String) -> String {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%"), let high = iterator.next(), let low = iterator.next(),
                let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)
            {
                bytes.append(value)
            } else if byte == UInt8(ascii: "+") {
                bytes.append(UInt8(ascii: " "))
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
