import Foundation
import TeleportAPI
import TeleportAuthServer
import TeleportTestSupport
import Testing

/// ``S3Client`` against a local S3-compatible server (moto's, ``S3TestServer``; not AWS), which
/// checks our Signature V4 against the keys it issued: objects stored and read back; a wrong
/// secret, a bucket that does not exist and an endpoint nothing listens on are one clear,
/// retryable line each. And `s3://` URIs and credentials files parsed.
@Suite("S3 client", .serialized, .timeLimit(.minutes(3)), .enabled(if: S3TestServer.missing == nil, "moto's S3 server is not installed"))
struct S3ClientTests {
    @Test func theClientStoresAndReadsAndNamesEachFailure() async throws {
        try await S3TestServer.with { s3 in
            func client(bucket: String? = nil, secret: String? = nil, endpoint: String? = nil) throws -> S3Client {
                let location = try S3Location.parse(
                    "s3://\(bucket ?? s3.bucket)/records/?endpoint=\(endpoint ?? s3.endpoint)&region=us-east-1", environment: [:])
                let credentials = AWSSignatureV4.Credentials(accessKeyID: s3.accessKeyID, secretAccessKey: secret ?? s3.secretAccessKey)
                return S3Client(location: location, credentials: { credentials }, timeout: .seconds(30))
            }
            let good = try client()
            let payload = Data((0..<70_000).map { UInt8($0 % 251) })
            try await good.put("a/b c.bin", payload)
            #expect(try await good.get("a/b c.bin", maxBytes: 1 << 20) == payload)
            #expect(try await good.get("absent.bin", maxBytes: 1 << 20) == nil)
            #expect(try await s3.objectKeys().contains("records/a/b c.bin"))

            func failure(_ body: () async throws -> Void) async -> TeleportError? {
                do {
                    try await body()
                    return nil
                } catch {
                    return error as? TeleportError
                }
            }
            // Wrong credentials: retryable, naming the cause and where credentials come from.
            let wrong = await failure { try await client(secret: "wrong-secret").put("x.bin", payload) }
            #expect(wrong?.code == .connectionProblem, "\(String(describing: wrong))")
            #expect(wrong?.message.contains("SignatureDoesNotMatch") == true && wrong?.message.contains("AWS_SECRET_ACCESS_KEY") == true, "\(String(describing: wrong))")
            #expect(wrong?.message.contains("\n") == false)
            // A bucket that does not exist.
            let noBucket = await failure { try await client(bucket: "no-such-bucket").put("x.bin", payload) }
            #expect(noBucket?.code == .connectionProblem && noBucket?.message.contains("no-such-bucket does not exist") == true, "\(String(describing: noBucket))")
            // An endpoint nothing listens on.
            let closed = try TestSupport.freeLoopbackPort()
            let unreachable = await failure { _ = try await client(endpoint: "http://127.0.0.1:\(closed)").get("x.bin", maxBytes: 1024) }
            #expect(unreachable?.code == .connectionProblem && unreachable?.message.contains("cannot reach S3 at http://127.0.0.1:\(closed)") == true, "\(String(describing: unreachable))")
            #expect(!(try await s3.objectKeys()).contains("records/x.bin"))
        }
    }

    @Test func badURIsAreOneLineErrors() throws {
        for (uri, fragment) in [
            ("s3:///records", "names no valid bucket"), ("s3://b/p?endpoint=ftp://x", "endpoint=ftp://x is not http(s)"),
            ("s3://b/p?color=blue", "unknown parameter color"), ("s3://b/p?insecure=maybe", "insecure=maybe"),
        ] {
            #expect(throws: TeleportError.self) { try S3Location.parse(uri, environment: [:]) }
            do {
                _ = try S3Location.parse(uri, environment: [:])
            } catch let error as TeleportError {
                #expect(error.message.contains(fragment) && error.message.contains("audit_sessions_uri"), "\(uri): \(error.message)")
            }
        }
        let location = try S3Location.parse("s3://Example_TELEPORT_S3_BUCKET/records", defaultRegion: "eu-west-1", environment: [:])
        #expect(location.bucket == "Example_TELEPORT_S3_BUCKET" && location.prefix == "records" && location.region == "eu-west-1" && location.endpoint == nil)
        #expect(try S3Location.parse("s3://b", environment: ["AWS_REGION": "ap-south-1"]).region == "ap-south-1")
        let profiles = AWSCredentialSource.parseCredentialsFile("[default]\naws_access_key_id = A\naws_secret_access_key=B\n# c\n[profile other]\naws_access_key_id=C\n")
        #expect(profiles["default"] == ["aws_access_key_id": "A", "aws_secret_access_key": "B"] && profiles["other"] == ["aws_access_key_id": "C"])
    }
}
