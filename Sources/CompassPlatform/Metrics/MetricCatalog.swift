/// Every metric the connector exposes: its name in Prometheus's conventions (`compass_meta_`
/// prefix, `_total` for counters, seconds as the unit of time), its type and what it means. The
/// one list: the exposition, docs/operations.md and the alert rules name these.
package enum MetricCatalog {
    package enum Kind: String, Sendable { case counter, gauge }

    package struct Metric: Sendable {
        package let name: String
        package let kind: Kind
        package let help: String
    }

    // Counters: exact across processes, written once per request (`MetricsLedger`).
    package static let eventsAccepted = "compass_meta_events_accepted_total"
    package static let eventsSent = "compass_meta_events_sent_total"
    package static let eventsQueued = "compass_meta_events_queued_total"
    package static let eventsDeadLettered = "compass_meta_events_dead_lettered_total"
    package static let eventsDuplicates = "compass_meta_events_duplicates_total"
    package static let eventsRejected = "compass_meta_events_rejected_total"
    package static let graphCalls = "compass_meta_graph_calls_total"
    package static let tokenRenewals = "compass_meta_token_renewals_total"
    package static let tokenFailures = "compass_meta_token_failures_total"
    package static let noticesSent = "compass_meta_notices_sent_total"
    package static let refreshRuns = "compass_meta_refresh_runs_total"
    // Gauges kept by the work that moves them: the sum of every change.
    package static let eventsWaiting = "compass_meta_events_waiting"
    package static let integrations = "compass_meta_integrations"
    package static let oldestQueuedAge = "compass_meta_oldest_queued_event_age_seconds"
    package static let pixelsUnavailable = "compass_meta_pixels_unavailable"
    package static let tokensExpiringSoon = "compass_meta_tokens_expiring_soon"
    package static let deadLetters = "compass_meta_dead_letters"
    // Gauges of the last refresh-cron run, as it wrote them.
    package static let lastRunStart = "compass_meta_refresh_last_run_timestamp_seconds"
    package static let lastRunDuration = "compass_meta_refresh_last_run_duration_seconds"
    package static let lastRunBudgetSpent = "compass_meta_refresh_last_run_budget_spent"
    package static let lastRunJob = "compass_meta_refresh_last_run_job_items"
    package static let graphUsage = "compass_meta_graph_usage_percent"

    package static let all: [Metric] = [
        Metric(
            name: eventsAccepted, kind: .counter,
            help: "Events send-event took: sent, queued, or found to be copies of events "
                + "it had taken before."),
        Metric(name: eventsSent, kind: .counter, help: "Events Meta took, at once or from an outbox."),
        Metric(name: eventsQueued, kind: .counter, help: "Events put in an outbox because Meta could not take them then."),
        Metric(name: eventsDeadLettered, kind: .counter, help: "Queued events given up on (out of Meta's window or refused for good)."),
        Metric(name: eventsDuplicates, kind: .counter, help: "Copies of events already delivered, not sent again."),
        Metric(name: eventsRejected, kind: .counter, help: "Events refused, by reason: invalid (by the connector) or meta (by Meta)."),
        Metric(
            name: graphCalls, kind: .counter,
            help: "Calls to Meta's Graph API by outcome (ok, api_error, "
                + "transport_error, bad_response) and Graph error code."),
        Metric(name: tokenRenewals, kind: .counter, help: "Meta tokens renewed by refresh-cron."),
        Metric(
            name: tokenFailures, kind: .counter,
            help: "Token checks or renewals that failed, by reason: needs_reauth (Meta "
                + "refused the token) or failed (may pass)."),
        Metric(name: noticesSent, kind: .counter, help: "Notices delivered to Compass's webhook."),
        Metric(name: refreshRuns, kind: .counter, help: "refresh-cron runs that finished."),
        Metric(name: eventsWaiting, kind: .gauge, help: "Events waiting in outboxes, all tenants."),
        Metric(name: deadLetters, kind: .gauge, help: "Dead-lettered events kept for replay, all tenants."),
        Metric(
            name: oldestQueuedAge, kind: .gauge,
            help: "How long the outbox holding the oldest queued event has held events (0 when none waits)."),
        Metric(
            name: tokensExpiringSoon, kind: .gauge,
            help: "Meta tokens that run out within 7 days (or have: not renewed in time); "
                + "refresh-cron renews them from REFRESH_WINDOW_DAYS before."),
        Metric(
            name: pixelsUnavailable, kind: .gauge,
            help: "Chosen pixels and datasets Meta says do not exist or cannot be reached (their events wait)."),
        Metric(
            name: integrations, kind: .gauge,
            help: "Integrations by status: connected, needs_reauth (the tenant must connect again), "
                + "disconnected (Meta removed the app)."),
        Metric(name: lastRunStart, kind: .gauge, help: "When the last refresh-cron run started (Unix seconds)."),
        Metric(name: lastRunDuration, kind: .gauge, help: "How long the last refresh-cron run took."),
        Metric(
            name: graphUsage, kind: .gauge,
            help: "The highest share of Meta's rate limits (percent) its answers reported to the last "
                + "refresh-cron run's calls; the run slows from 75 and stops at 95."),
        Metric(name: lastRunBudgetSpent, kind: .gauge, help: "1 when the last refresh-cron run stopped at its time budget with work left."),
        Metric(
            name: lastRunJob, kind: .gauge,
            help: "The last refresh-cron run's figures, by cron_job (tokens, outbox, "
                + "quality, notices, sweep) and figure (its JSON summary)."),
    ]

    /// The Prometheus text exposition format (0.0.4): for each metric its `HELP` and `TYPE`
    /// lines, then its series in order; a metric without a labelled series shows 0.
    package static func exposition(_ values: [MetricSeries: Double]) -> String {
        var out = ""
        for metric in all {
            out += "# HELP \(metric.name) \(metric.help.replacing("\\", with: "\\\\").replacing("\n", with: "\\n"))\n"
            out += "# TYPE \(metric.name) \(metric.kind.rawValue)\n"
            let series = values.filter { $0.key.name == metric.name }.sorted { $0.key < $1.key }
            if series.isEmpty && !metric.name.hasPrefix("compass_meta_refresh_last_run") { out += "\(metric.name) 0\n" }
            for (key, value) in series { out += "\(key.text) \(format(value))\n" }
        }
        return out
    }

    static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }
}
