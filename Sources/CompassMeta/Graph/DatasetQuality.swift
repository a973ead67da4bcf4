import CompassPlatform

/// Meta's own figures for a dataset (pixel): per event name, the Event Match Quality composite
/// score (0 to 10) and how often each match key was present, from the Dataset Quality API.
/// Fields Meta leaves out stay nil; an answer without `web` is no events, not an error.
package struct EventQuality: Codable, Sendable, Equatable {
    package var eventName: String
    package var compositeScore: Double?
    /// Match key (`email`, `phone`, ...) to the percentage of events that carried it.
    package var matchKeyCoverage: [String: Double]

    package init(eventName: String, compositeScore: Double?, matchKeyCoverage: [String: Double]) {
        self.eventName = eventName
        self.compositeScore = compositeScore
        self.matchKeyCoverage = matchKeyCoverage
    }
}

extension GraphClient {
    package static let datasetQualityFields =
        "web{event_name,event_match_quality{composite_score,match_key_feedback},event_coverage,dedup_key_feedback,data_freshness}"

    /// `GET /dataset_quality?dataset_id=PIXEL&agent_name=AGENT&fields=web{...}` with the tenant's token.
    package func datasetQuality(pixelId: String, agentName: String, token: String) throws(GraphFailure) -> [EventQuality] {
        let answer: JSONValue = try get("dataset_quality", [
            ("dataset_id", pixelId), ("agent_name", agentName), ("fields", Self.datasetQualityFields),
        ], token: token)
        guard let rows = answer["web"]?.array else { return [] }
        return rows.compactMap { row -> EventQuality? in
            guard let name = row["event_name"]?.string, !name.isEmpty, name.count <= 100 else { return nil }
            let quality = row["event_match_quality"]
            var coverage: [String: Double] = [:]
            for feedback in quality?["match_key_feedback"]?.array ?? [] {
                guard let key = feedback["identifier"]?.string, key.count <= 64,
                      let percentage = feedback["coverage"]?["percentage"]?.number, percentage.isFinite else { continue }
                coverage[key] = percentage
            }
            let score = quality?["composite_score"]?.number.flatMap { $0.isFinite ? $0 : nil }
            return EventQuality(eventName: name, compositeScore: score, matchKeyCoverage: coverage)
        }
    }
}
