import CompassPlatform

/// Meta's own figures for a dataset (pixel), per event name, from the Dataset Quality API: the
/// Event Match Quality composite score (0 to 10), how often each match key was present, Meta's
/// diagnostics (its own words for what is wrong and how to fix it), event coverage, how well
/// browser and server copies share a deduplication key, data freshness, and the additional
/// conversions reported. Fields Meta leaves out stay nil; an answer without `web` is no events.
package struct EventQuality: Codable, Sendable, Equatable {
    package var eventName: String
    package var compositeScore: Double?
    /// Match key (`email`, `phone`, ...) to the percentage of events that carried it.
    package var matchKeyCoverage: [String: Double]
    package var diagnostics: [Diagnostic]?
    /// Percentage of the pixel's events this server copy covers, and Meta's goal for it.
    package var eventCoverage: Share?
    /// One row per deduplication key Meta saw (`event_id`, `external_id`, `fbp`).
    package var dedupeKeys: [DedupeKey]?
    /// How often events arrive (`real_time`, `hourly`, `daily`, `weekly`).
    package var dataFreshness: Freshness?
    /// Additional conversions reported thanks to server events.
    package var additionalConversionsReported: Share?

    package struct Diagnostic: Codable, Sendable, Equatable {
        package var name: String?
        package var description: String?
        package var solution: String?
        package var percentage: Double?
        package var affectedEventCount: Int64?
        package var totalEventCount: Int64?
    }

    package struct Share: Codable, Sendable, Equatable {
        package var percentage: Double?
        package var goalPercentage: Double?
        package var description: String?
    }

    package struct DedupeKey: Codable, Sendable, Equatable {
        package var key: String
        package var browserEventsWithKey: Double?
        package var serverEventsWithKey: Double?
        /// The share of browser events deduplicated against server events by this key.
        package var browserCoverage: Double?
    }

    package struct Freshness: Codable, Sendable, Equatable {
        package var uploadFrequency: String?
        package var description: String?
    }

    package init(
        eventName: String, compositeScore: Double?, matchKeyCoverage: [String: Double], diagnostics: [Diagnostic]? = nil,
        eventCoverage: Share? = nil, dedupeKeys: [DedupeKey]? = nil, dataFreshness: Freshness? = nil,
        additionalConversionsReported: Share? = nil
    ) {
        self.eventName = eventName
        self.compositeScore = compositeScore
        self.matchKeyCoverage = matchKeyCoverage
        self.diagnostics = diagnostics
        self.eventCoverage = eventCoverage
        self.dedupeKeys = dedupeKeys
        self.dataFreshness = dataFreshness
        self.additionalConversionsReported = additionalConversionsReported
    }

    /// The browser/server deduplication coverage Meta reports for `event_id`, else the lowest
    /// of the keys it reports; nil when Meta gave none.
    package var dedupeCoverage: Double? {
        let keys = dedupeKeys ?? []
        return keys.first { $0.key == "event_id" }?.browserCoverage ?? keys.compactMap(\.browserCoverage).min()
    }
}

extension EventQuality {
    /// One row of Meta's `web` list; nil for a row without a usable event name.
    init?(row: JSONValue) {
        guard let name = row["event_name"]?.string, !name.isEmpty, name.count <= 100 else { return nil }
        let quality = row["event_match_quality"]
        var coverage: [String: Double] = [:]
        for feedback in quality?["match_key_feedback"]?.array ?? [] {
            guard let key = feedback["identifier"]?.string, key.count <= 64,
                let percentage = Self.number(feedback["coverage"]?["percentage"])
            else { continue }
            coverage[key] = percentage
        }
        let diagnostics = quality?["diagnostics"]?.array?.prefix(20).map { item in
            Diagnostic(
                name: Self.text(item["name"]), description: Self.text(item["description"]), solution: Self.text(item["solution"]),
                percentage: Self.number(item["percentage"]), affectedEventCount: item["affected_event_count"]?.integer,
                totalEventCount: item["total_event_count"]?.integer)
        }
        let dedupe = row["dedupe_key_feedback"]?.array?.prefix(10).compactMap { item -> DedupeKey? in
            guard let key = Self.text(item["dedupe_key"]) else { return nil }
            return DedupeKey(
                key: key, browserEventsWithKey: Self.number(item["browser_events_with_dedupe_key"]?["percentage"]),
                serverEventsWithKey: Self.number(item["server_events_with_dedupe_key"]?["percentage"]),
                browserCoverage: Self.number(item["overall_browser_coverage_from_dedupe_key"]?["percentage"]))
        }
        let freshness = row["data_freshness"].map {
            Freshness(uploadFrequency: Self.text($0["upload_frequency"]), description: Self.text($0["description"]))
        }
        self.init(
            eventName: name, compositeScore: Self.number(quality?["composite_score"]), matchKeyCoverage: coverage,
            diagnostics: diagnostics.map(Array.init), eventCoverage: Self.share(row["event_coverage"]),
            dedupeKeys: dedupe, dataFreshness: freshness, additionalConversionsReported: Self.share(row["acr"]))
    }

    private static func number(_ value: JSONValue?) -> Double? { value?.number.flatMap { $0.isFinite ? $0 : nil } }

    /// Meta's words, bounded: a description is shown to the tenant, never trusted for length.
    private static func text(_ value: JSONValue?) -> String? { value?.string.map { String($0.prefix(500)) } }

    private static func share(_ value: JSONValue?) -> Share? {
        guard let value, value.object != nil else { return nil }
        return Share(
            percentage: number(value["percentage"]), goalPercentage: number(value["goal_percentage"]),
            description: text(value["description"]))
    }
}

extension GraphClient {
    /// Every field of Meta's per-event quality object this connector shows (Meta's names, checked
    /// by the strict sandbox against the SDK's `AdsPixelCAPIIntegrationQuality`).
    package static let datasetQualityFields =
        "web{event_name,event_match_quality{composite_score,match_key_feedback,diagnostics},"
        + "event_coverage,dedupe_key_feedback{dedupe_key,browser_events_with_dedupe_key,server_events_with_dedupe_key,"
        + "overall_browser_coverage_from_dedupe_key},data_freshness,acr}"

    /// `GET /dataset_quality?dataset_id=PIXEL&agent_name=AGENT&fields=web{...}` with the tenant's token.
    package func datasetQuality(pixelId: String, agentName: String, token: String) throws(GraphFailure) -> [EventQuality] {
        let answer: JSONValue = try get(
            "dataset_quality",
            [
                ("dataset_id", pixelId), ("agent_name", agentName), ("fields", Self.datasetQualityFields),
            ], token: token)
        return (answer["web"]?.array ?? []).compactMap(EventQuality.init(row:))
    }
}

/// Meta's own figures for an offline dataset's events (a store's sales), per event name, from
/// the Dataset Quality API's `offline` field: a composite score out of 10 (8.5 or more opens
/// omnichannel ads to the advertiser) and the scores for match keys, frequency and freshness,
/// each with Meta's recommendation. Meta's page lists the four as numbers and shows each as an
/// object `{score, recommendation}` in every example; this reads both.
package struct OfflineEventQuality: Codable, Sendable, Equatable {
    package var eventName: String
    package var composite: Score?
    package var matchKey: Score?
    package var frequency: Score?
    package var freshness: Score?
    /// The share of events carrying an email address and a phone number (percent).
    package var emailCoverage: Double?
    package var phoneCoverage: Double?

    package struct Score: Codable, Sendable, Equatable {
        package var score: Double?
        package var recommendation: String?
    }

    /// The fields asked of Meta (`offline{...}`), held to Meta's page by the strict sandbox.
    package static let fields = "offline{event_name,composite,match_key,frequency,freshness}"
}

extension OfflineEventQuality {
    /// One row of Meta's `offline` list; nil for a row without a usable event name.
    init?(row: JSONValue) {
        guard let name = row["event_name"]?.string, !name.isEmpty, name.count <= 100 else { return nil }
        eventName = name
        composite = Self.score(row["composite"])
        matchKey = Self.score(row["match_key"])
        frequency = Self.score(row["frequency"])
        freshness = Self.score(row["freshness"])
        let coverage = row["match_key"]?["coverage"] ?? row["coverage"]
        emailCoverage = Self.number(coverage?["email"])
        phoneCoverage = Self.number(coverage?["phone"])
    }

    private static func number(_ value: JSONValue?) -> Double? { value?.number.flatMap { $0.isFinite ? $0 : nil } }

    private static func score(_ value: JSONValue?) -> Score? {
        guard let value else { return nil }
        if let plain = number(value) { return Score(score: plain, recommendation: nil) }
        guard value.object != nil else { return nil }
        return Score(score: number(value["score"]), recommendation: value["recommendation"]?.string.map { String($0.prefix(500)) })
    }
}

extension GraphClient {
    /// `GET /dataset_quality?dataset_id=DATASET&agent_name=AGENT&fields=offline{...}`: an
    /// offline dataset's figures, with the tenant's token.
    package func offlineDatasetQuality(datasetId: String, agentName: String, token: String) throws(GraphFailure) -> [OfflineEventQuality] {
        let answer: JSONValue = try get(
            "dataset_quality", [("dataset_id", datasetId), ("agent_name", agentName), ("fields", OfflineEventQuality.fields)], token: token)
        return (answer["offline"]?.array ?? []).compactMap(OfflineEventQuality.init(row:))
    }
}
