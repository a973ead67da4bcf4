import CompassPlatform
import Synchronization

/// How close the app is to Meta's rate limits, from the usage headers Meta sends with its
/// answers, successful ones included: `X-App-Usage` (`call_count`, `total_time`,
/// `total_cputime`, percentages), `X-Ad-Account-Usage` (`acc_id_util_pct`) and
/// `X-Business-Use-Case-Usage` (the same percentages per business, and
/// `estimated_time_to_regain_access` in minutes once throttled). A job that makes many calls
/// shares one value among them and slows down as the figure climbs, before Meta refuses.
package final class GraphUsage: Sendable {
    /// Below this percentage calls go at full speed.
    package static let slowFrom = 75.0
    /// At or above this percentage (or once Meta names a time to regain access) no new work is
    /// taken: the rest waits for a later run.
    package static let stopAt = 95.0
    /// The pause before each call just under `stopAt`; it grows linearly from `slowFrom`.
    package static let longestPauseSeconds = 2.0

    private let level = Mutex(0.0)

    package init() {}

    /// The highest percentage in the latest answer that carried usage headers.
    package var percentage: Double { level.withLock { $0 } }

    /// Reads the usage headers of one answer (lower-case names); an answer without them
    /// leaves the level as it was.
    package func record(_ headers: [String: String]) {
        guard let highest = Self.highestPercentage(headers) else { return }
        level.withLock { $0 = highest }
    }

    /// How long to wait before the next call: 0 below `slowFrom`, nil when no new call should
    /// be made at all.
    package func pauseSeconds() -> Double? {
        let current = percentage
        if current >= Self.stopAt { return nil }
        guard current > Self.slowFrom else { return 0 }
        return (current - Self.slowFrom) / (Self.stopAt - Self.slowFrom) * Self.longestPauseSeconds
    }

    /// The largest percentage in the three headers; 100 when Meta says access is to be
    /// regained later. nil when none of them is there (or none can be read).
    package static func highestPercentage(_ headers: [String: String]) -> Double? {
        var values: [Double] = []
        func numbers(_ object: JSONValue?, _ names: [String]) {
            for name in names { if let number = object?[name]?.number { values.append(number) } }
        }
        let percentages = ["call_count", "total_time", "total_cputime"]
        if let text = headers["x-app-usage"], let app = try? JSONParser.parse(Array(text.utf8)) {
            numbers(app, percentages)
        }
        if let text = headers["x-ad-account-usage"], let account = try? JSONParser.parse(Array(text.utf8)) {
            numbers(account, ["acc_id_util_pct"])
        }
        if let text = headers["x-business-use-case-usage"], case .object(let businesses)? = try? JSONParser.parse(Array(text.utf8)) {
            for case .array(let entries) in businesses.values {
                for entry in entries {
                    numbers(entry, percentages)
                    if let minutes = entry["estimated_time_to_regain_access"]?.number, minutes > 0 { values.append(100) }
                }
            }
        }
        return values.filter(\.isFinite).max()
    }
}
