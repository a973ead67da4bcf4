/// CloudWatch's Embedded Metric Format: one JSON log line that CloudWatch Logs turns into
/// metrics, so a Lambda deployment has figures with no scraper. The document, as AWS's
/// specification ("Specification: Embedded metric format") defines it: a root `_aws` member with
/// `Timestamp` (milliseconds) and `CloudWatchMetrics`, one directive with the `Namespace`, one
/// dimension set (`Function`, a root member holding the function's name) and a `Metrics`
/// definition (`Name`, `Unit`) per value; each value a numeric root member of that name. A
/// series' labels go into its name (`EventsRejected_reason_meta`): a document holds one value per
/// dimension, and CloudWatch bills per dimension value.
package enum EmbeddedMetricFormat {
    /// A directive holds at most 100 metric definitions (the specification's limit).
    package static let maxMetrics = 100

    /// The line for `values` (counters and gauges of one invocation), nil when there is nothing.
    package static func line(_ values: [MetricSeries: Double], namespace: String, function: String, at milliseconds: Int64) -> String? {
        // Gauges go out at 0 too: an alarm on them needs the data point.
        let gauges = [MetricCatalog.eventsWaiting, MetricCatalog.deadLetters, MetricCatalog.oldestQueuedAge]
        let named = values.filter { $0.value != 0 || gauges.contains($0.key.name) }
            .map { (name: metricName($0.key), value: $0.value) }.sorted { $0.name < $1.name }.prefix(maxMetrics)
        guard !named.isEmpty else { return nil }
        var root: [String: JSONValue] = ["Function": .string(function)]
        var definitions: [JSONValue] = []
        for (name, value) in named {
            root[name] = value == value.rounded() && abs(value) < 1e15 ? .int(Int64(value)) : .double(value)
            definitions.append(.object(["Name": .string(name), "Unit": .string(name.hasSuffix("Seconds") ? "Seconds" : "Count")]))
        }
        root["_aws"] = .object([
            "Timestamp": .int(milliseconds),
            "CloudWatchMetrics": .array([
                .object([
                    "Namespace": .string(namespace), "Dimensions": .array([.array([.string("Function")])]),
                    "Metrics": .array(definitions),
                ])
            ]),
        ])
        return String(decoding: JSONValue.object(root).serialized, as: UTF8.self)
    }

    /// `compass_meta_events_rejected_total{reason="meta"}` -> `EventsRejected_reason_meta`.
    package static func metricName(_ series: MetricSeries) -> String {
        var base = series.name
        if base.hasPrefix("compass_meta_") { base.removeFirst("compass_meta_".count) }
        if base.hasSuffix("_total") { base.removeLast("_total".count) }
        var name = base.split(separator: "_").map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
        for key in series.labels.keys.sorted() {
            let value = series.labels[key]!.filter { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }
            name += "_" + key + "_" + value
        }
        return name
    }
}
