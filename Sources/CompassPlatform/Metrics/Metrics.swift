import Synchronization

/// One series: a metric of `MetricCatalog` and its labels, rendered as Prometheus writes it
/// (`name{label="value",...}`, labels in name order). Never a tenant id: a million tenants
/// must not become a million series.
package struct MetricSeries: Hashable, Sendable, Comparable {
    package let name: String
    package let labels: [String: String]

    package init(_ name: String, _ labels: [String: String] = [:]) {
        self.name = name
        self.labels = labels
    }

    /// `name{a="x",b="y"}`, with label values escaped as the exposition format says.
    package var text: String {
        guard !labels.isEmpty else { return name }
        let pairs = labels.keys.sorted().map { key in "\(key)=\"\(Self.escape(labels[key]!))\"" }
        return name + "{" + pairs.joined(separator: ",") + "}"
    }

    /// The series a stored text names; nil for anything else.
    package init?(text: String) {
        guard let brace = text.firstIndex(of: "{") else {
            guard !text.isEmpty else { return nil }
            self.init(text)
            return
        }
        guard text.hasSuffix("}") else { return nil }
        var labels: [String: String] = [:]
        var rest = text[text.index(after: brace)..<text.index(before: text.endIndex)]
        while !rest.isEmpty {
            guard let equals = rest.firstIndex(of: "="), rest[rest.index(after: equals)...].first == "\"" else { return nil }
            let key = String(rest[..<equals])
            var value = ""
            var index = rest.index(equals, offsetBy: 2)
            var closed = false
            while index < rest.endIndex {
                let character = rest[index]
                if character == "\\", rest.index(after: index) < rest.endIndex {
                    let next = rest[rest.index(after: index)]
                    value.append(next == "n" ? "\n" : next)
                    index = rest.index(index, offsetBy: 2)
                    continue
                }
                if character == "\"" {
                    closed = true
                    break
                }
                value.append(character)
                index = rest.index(after: index)
            }
            guard closed else { return nil }
            labels[key] = value
            rest = rest[rest.index(after: index)...]
            if rest.first == "," { rest = rest.dropFirst() }
        }
        self.init(String(text[..<brace]), labels)
    }

    static func escape(_ value: String) -> String {
        value.replacing("\\", with: "\\\\").replacing("\"", with: "\\\"").replacing("\n", with: "\\n")
    }

    package static func < (a: MetricSeries, b: MetricSeries) -> Bool { a.text < b.text }
}

/// What one request (or one cron run) changed: counters counted up, and the changes of gauges
/// kept by the work that moves them (an event queued is +1 waiting, delivered -1). The host
/// writes them to the store once, at the end (`MetricsLedger`).
package final class Metrics: Sendable {
    private let changes = Mutex<[MetricSeries: Int64]>([:])
    /// Everything added, written or not: what a Lambda invocation reports as its own.
    private let added = Mutex<[MetricSeries: Int64]>([:])

    package init() {}

    package func add(_ name: String, _ labels: [String: String] = [:], _ amount: Int = 1) {
        guard amount != 0 else { return }
        changes.withLock { $0[MetricSeries(name, labels), default: 0] += Int64(amount) }
        added.withLock { $0[MetricSeries(name, labels), default: 0] += Int64(amount) }
    }

    /// Every change since this value was made.
    package var recorded: [MetricSeries: Int64] { added.withLock { $0 } }

    /// Everything added since the last call, and nothing kept.
    package func take() -> [MetricSeries: Int64] {
        changes.withLock { current in
            defer { current = [:] }
            return current.filter { $0.value != 0 }
        }
    }

    /// Back what `take` returned (a write that failed), to be written with the next changes.
    package func restore(_ taken: [MetricSeries: Int64]) {
        changes.withLock { current in current.merge(taken) { $0 + $1 } }
    }
}
