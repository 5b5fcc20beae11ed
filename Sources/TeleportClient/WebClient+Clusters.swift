public import TeleportAPI

extension WebClient {
    /// `GET /webapi/sites`: the proxy's cluster and the leaf clusters that trust it (`tsh clusters`).
    public func clusters() async throws -> [WebAPI.ClusterEntry] {
        try decode([WebAPI.ClusterEntry].self, try await transport.get("/webapi/sites"), what: "cluster list")
    }
}
