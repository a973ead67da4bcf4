import CompassMeta
import CompassPlatform
import CompassStorage

/// Every layer's settings, parsed by `Config.load` from one read of the environment: each
/// layer's own (`PlatformSettings`, `MetaSettings`, `StoreSettings`), the routes' and the
/// development tools'. A malformed value fails `load`; a missing required one fails when a
/// route asks for it, so that a route never needs a variable it does not use.
package struct Config: Sendable {
    /// The routes' settings: cron and metrics bearers, the outbox bound, the token job, notices.
    package struct Routes: Sendable {
        package static let variables = [
            "CRON_SECRET", "METRICS_TOKEN", "METRICS_NAMESPACE", "OUTBOX_MAX_EVENTS", "REFRESH_WINDOW_DAYS", "REFRESH_BUDGET_SECONDS",
            "META_CONCURRENCY", "COMPASS_WEBHOOK_URL", "COMPASS_WEBHOOK_SECRET",
        ]

        package var cronSecret: String?
        /// The bearer of the metrics route; `CRON_SECRET` when unset.
        package var metricsToken: String?
        /// The CloudWatch namespace of a Lambda deployment's Embedded Metric Format lines.
        package var metricsNamespace: String
        /// Per tenant: past this many waiting events, new ones are refused with 503 rather than
        /// overflowing the store.
        package var outboxMaxEvents: Int
        /// Renew tokens that expire within this many days.
        package var refreshWindowDays: Int
        /// How long before its expiry a token is renewed.
        package var renewalWindow: TimeInterval { TimeInterval(refreshWindowDays * 86_400) }
        /// A refresh-cron run takes no new work past this many seconds (under its one-minute schedule).
        package var refreshBudgetSeconds: Int
        /// Graph calls refresh-cron keeps in flight at once.
        package var metaConcurrency: Int
        /// Where Compass wants notices (`integration.needs_reauth`), and the HMAC key that signs them.
        package var webhookURL: String?
        package var webhookSecret: String?

        package static func load(_ read: EnvironmentReader) throws(ConfigError) -> Routes {
            // A webhook needs its secret.
            if read.value("COMPASS_WEBHOOK_URL") != nil, read.value("COMPASS_WEBHOOK_SECRET") == nil {
                _ = try read.url("COMPASS_WEBHOOK_URL")
                throw ConfigError(variable: "COMPASS_WEBHOOK_SECRET", problem: "is required when COMPASS_WEBHOOK_URL is set")
            }
            return Routes(
                cronSecret: read.value("CRON_SECRET"),
                metricsToken: read.value("METRICS_TOKEN"),
                metricsNamespace: read.value("METRICS_NAMESPACE") ?? "CompassMeta",
                outboxMaxEvents: try read.whole("OUTBOX_MAX_EVENTS", 1...10_000_000, default: 100_000, unit: nil),
                refreshWindowDays: try read.whole("REFRESH_WINDOW_DAYS", 1...59, default: 7, unit: "days"),
                refreshBudgetSeconds: try read.whole("REFRESH_BUDGET_SECONDS", 1...3600, default: 50, unit: "seconds"),
                metaConcurrency: try read.whole("META_CONCURRENCY", 1...64, default: 8, unit: "calls"),
                webhookURL: try read.url("COMPASS_WEBHOOK_URL"),
                webhookSecret: read.value("COMPASS_WEBHOOK_SECRET"))
        }
    }

    /// Development only (scripts/serve without a Meta app): the Graph sandbox and the dev console.
    package struct Development: Sendable {
        package static let variables = ["SANDBOX_STATE_DIR", "SANDBOX_BASE_URL", "SANDBOX_LATENCY_MS", "COMPASS_DEV_CONSOLE"]

        /// Where the Graph sandbox keeps its state and the URL it is served at.
        package var sandboxStateDirectory: String?
        package var sandboxBaseURL: String?
        /// What each Graph sandbox call waits, as a round trip to Meta would.
        package var sandboxLatencyMilliseconds: Int
        /// The dev login and settings stand-in are served.
        package var devConsoleEnabled: Bool

        package static func load(_ read: EnvironmentReader) throws(ConfigError) -> Development {
            Development(
                sandboxStateDirectory: read.value("SANDBOX_STATE_DIR"), sandboxBaseURL: try read.url("SANDBOX_BASE_URL"),
                sandboxLatencyMilliseconds: try read.whole("SANDBOX_LATENCY_MS", 0...10_000, default: 0, unit: "milliseconds"),
                devConsoleEnabled: read.value("COMPASS_DEV_CONSOLE") == "1")
        }
    }

    /// Every variable any route reads (functions.json names a subset per function).
    package static let variables =
        MetaSettings.variables + PlatformSettings.variables + Routes.variables + StoreSettings.variables + Development.variables

    package var platform: PlatformSettings
    package var meta: MetaSettings
    package var store: StoreSettings
    package var routes: Routes
    package var development: Development

    /// `workingDirectory` is where the development default store goes (`.data`) when
    /// `STORE_URL` is unset; nil under a host, where a store must be named.
    package static func load(from environment: [String: String], workingDirectory: String?) throws(ConfigError) -> Config {
        let read = EnvironmentReader(environment)
        let routes = try Routes.load(read)
        let store = try StoreSettings.load(read, workingDirectory: workingDirectory)
        return Config(
            platform: try PlatformSettings.load(read), meta: try MetaSettings.load(read), store: store, routes: routes,
            development: try Development.load(read))
    }
}
