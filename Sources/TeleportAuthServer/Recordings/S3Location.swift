public import Foundation
public import TeleportAPI

/// `audit_sessions_uri: s3://BUCKET/PREFIX?endpoint=URL&region=REGION&insecure=true`: where
/// session recordings go in S3 or any S3-compatible server. Without `endpoint`, AWS itself
/// (`https://BUCKET.s3.REGION.amazonaws.com`, virtual-hosted); with it, path-style requests to
/// `URL/BUCKET/KEY` (what S3-compatible servers expect). The region comes from `region=`, else
/// `teleport.storage.region`, else `AWS_REGION`/`AWS_DEFAULT_REGION`, else `us-east-1`.
public struct S3Location: Sendable, Equatable {
    public var bucket: String
    /// The key prefix without slashes at either end ("" for none).
    public var prefix: String
    public var region: String
    /// `http(s)://host[:port]` of an S3-compatible server, or nil for AWS.
    public var endpoint: URL?
    /// Skip verification of the endpoint's certificate (`insecure=true`).
    public var insecure: Bool

    /// The parameters `s3://` takes.
    static let parameters = ["endpoint", "region", "insecure"]

    /// Parses the URI; every mistake is one line naming `audit_sessions_uri` and the fix.
    public static func parse(_ uri: String, defaultRegion: String? = nil, environment: [String: String] = ProcessInfo.processInfo.environment) throws
        -> S3Location
    {
        let key = "teleport.storage.audit_sessions_uri"
        guard uri.hasPrefix("s3://") else { throw TeleportError.badParameter("\(key): \(uri) is not an s3:// URI") }
        var rest = Substring(uri.dropFirst("s3://".count))
        var query: Substring = ""
        if let mark = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: mark)...]
            rest = rest[..<mark]
        }
        let parts = rest.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        let bucket = String(parts.first ?? "")
        guard !bucket.isEmpty, bucket.count <= 255, bucket.allSatisfy({ $0.isLetter || $0.isNumber || "-._".contains($0) }), bucket.allSatisfy(\.isASCII)
        else {
            throw TeleportError.badParameter("\(key): \(uri) names no valid bucket (s3://BUCKET/PREFIX)")
        }
        let prefix = parts.count > 1 ? String(parts[1]).trimmingCharacters(in: CharacterSet(charactersIn: "/")) : ""
        var values: [String: String] = [:]
        for pair in query.split(separator: "&") where !pair.isEmpty {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(kv[0])
            let value = kv.count > 1 ? (String(kv[1]).removingPercentEncoding ?? String(kv[1])) : ""
            guard parameters.contains(name) else {
                throw TeleportError.badParameter("\(key): unknown parameter \(name) (known: \(parameters.joined(separator: ", ")))")
            }
            values[name] = value
        }
        var endpoint: URL?
        if let text = values["endpoint"] {
            guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https", url.host?.isEmpty == false,
                url.path.isEmpty || url.path == "/"
            else {
                throw TeleportError.badParameter("\(key): endpoint=\(text) is not http(s)://HOST[:PORT]")
            }
            endpoint = url
        }
        var insecure = false
        if let text = values["insecure"] {
            guard let flag = ["true": true, "false": false, "1": true, "0": false][text.lowercased()] else {
                throw TeleportError.badParameter("\(key): insecure=\(text) is not true or false")
            }
            insecure = flag
        }
        var region = "us-east-1"
        for candidate: String? in [values["region"], defaultRegion, environment["AWS_REGION"], environment["AWS_DEFAULT_REGION"]].reversed() {
            if let candidate, !candidate.isEmpty { region = candidate }
        }
        return S3Location(bucket: bucket, prefix: prefix, region: region, endpoint: endpoint, insecure: insecure)
    }

    /// The object key of `name` (the prefix, then the name).
    public func objectKey(_ name: String) -> String { prefix.isEmpty ? name : "\(prefix)/\(name)" }

    /// `s3://BUCKET/KEY`, for messages.
    public func display(_ name: String) -> String { "s3://\(bucket)/\(objectKey(name))" }

    /// The server's name for messages: the endpoint, or AWS S3 in the region.
    public var serverName: String {
        if let endpoint { return endpoint.absoluteString }
        return "AWS S3 (\(region))"
    }
}

/// AWS credentials as the AWS tools find them: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` (and
/// `AWS_SESSION_TOKEN`) from the environment, else the profile `AWS_PROFILE` (default `default`)
/// of the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`, default `~/.aws/credentials`).
/// Read for every request, so fixed credentials are used without a restart.
public enum AWSCredentialSource {
    /// The credentials, or `connectionProblem` naming where they were looked for (retryable: the
    /// recording waits on its host).
    public static func resolve(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> AWSSignatureV4.Credentials {
        if let id = environment["AWS_ACCESS_KEY_ID"], !id.isEmpty, let secret = environment["AWS_SECRET_ACCESS_KEY"], !secret.isEmpty {
            return .init(accessKeyID: id, secretAccessKey: secret, sessionToken: environment["AWS_SESSION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 })
        }
        let home = environment["HOME"] ?? NSHomeDirectory()
        let path = environment["AWS_SHARED_CREDENTIALS_FILE"] ?? "\(home)/.aws/credentials"
        let profile = environment["AWS_PROFILE"] ?? "default"
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw TeleportError.connectionProblem(
                "no AWS credentials for S3: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for teleport, or write them to \(path)")
        }
        let values = parseCredentialsFile(text)[profile] ?? [:]
        guard let id = values["aws_access_key_id"], let secret = values["aws_secret_access_key"] else {
            throw TeleportError.connectionProblem(
                "\(path) has no aws_access_key_id and aws_secret_access_key in profile [\(profile)]; add them or set AWS_PROFILE")
        }
        return .init(accessKeyID: id, secretAccessKey: secret, sessionToken: values["aws_session_token"])
    }

    /// `[profile]` sections of `key = value` lines; `#` and `;` start comments.
    public static func parseCredentialsFile(_ text: String) -> [String: [String: String]] {
        var sections: [String: [String: String]] = [:]
        var current: String?
        for raw in text.split(whereSeparator: \.isNewline) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") && line.hasSuffix("]") {
                var name = line.dropFirst().dropLast().trimmingCharacters(in: .whitespaces)
                if name.hasPrefix("profile ") { name = String(name.dropFirst("profile ".count)).trimmingCharacters(in: .whitespaces) }
                current = name
                continue
            }
            guard let current, let equals = line.firstIndex(of: "=") else { continue }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            sections[current, default: [:]][key] = value
        }
        return sections
    }
}
