import Foundation
import Testing

@testable import CompassPlatform
@testable import CompassTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// The metrics route as an operator's Prometheus sees it: Debian's `prometheus` scrapes it
/// through lighttpd with its bearer while events flow, an outage queues some and a cron run
/// drains them; Prometheus's own HTTP API then answers with what happened. `promtool check
/// metrics` accepts the exposition, and `promtool check rules` the alert rules of docs/alerts.yml.
@Suite(.serialized) struct PrometheusTests {
    static let token = "metrics-token-0123456789abcdef"

    /// Prometheus on a loopback port of its own, scraping `target` every second.
    final class Prometheus {
        let folder = TemporaryFolder()
        let port: Int
        private let pid: pid_t

        init(target: String) throws {
            port = try LighttpdHost.freePort()
            let config = """
                global:
                  scrape_interval: 1s
                  scrape_timeout: 1s
                scrape_configs:
                  - job_name: compass
                    metrics_path: /api/cron/meta/metrics
                    authorization:
                      credentials: \(PrometheusTests.token)
                    static_configs:
                      - targets: ['\(target)']
                """
            try config.write(toFile: folder.path + "/prometheus.yml", atomically: true, encoding: .utf8)
            pid = try Spawn.process(
                [
                    "/usr/bin/prometheus", "--config.file=\(folder.path)/prometheus.yml", "--storage.tsdb.path=\(folder.path)/data",
                    "--web.listen-address=127.0.0.1:\(port)",
                ], stderr: folder.path + "/prometheus.log")
            // Listening is not ready: until its storage is open, Prometheus answers 503 in plain text.
            let deadline = Date().addingTimeInterval(60)
            while !isReady() {
                guard Date() < deadline else { throw POSIXError(.ETIMEDOUT) }
                usleep(100_000)
            }
        }

        private func isReady() -> Bool {
            guard LighttpdHost.accepts(port) else { return false }
            let answer = try? CurlTransport().send(HTTPRequest(method: "GET", url: "http://127.0.0.1:\(port)/-/ready"))
            return answer?.status == 200
        }

        deinit {
            kill(pid, SIGTERM)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }

        /// The value of an instant query's first series, nil when it has none.
        func value(_ query: String) throws -> Double? {
            let encoded = query.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? query
            let answer = try CurlTransport().send(HTTPRequest(method: "GET", url: "http://127.0.0.1:\(port)/api/v1/query?query=\(encoded)"))
            // An answer other than 200 (503 while Prometheus is busy) has no value yet.
            guard answer.status == 200 else { return nil }
            let json = try JSONSerialization.jsonObject(with: Data(answer.body)) as? [String: Any]
            let result = ((json?["data"] as? [String: Any])?["result"] as? [[String: Any]])?.first
            return ((result?["value"] as? [Any])?.last as? String).flatMap(Double.init)
        }

        /// Waits until `query` is `expected` (Prometheus scrapes every second).
        func waitFor(_ query: String, _ expected: Double, seconds: Double = 30) throws -> Double? {
            let deadline = Date().addingTimeInterval(seconds)
            var last: Double? = nil
            while Date() < deadline {
                last = try value(query)
                if last == expected { return last }
                usleep(250_000)
            }
            return last
        }
    }

    @Test func prometheusScrapesWhatHappened() throws {
        let host = try LighttpdHost(extra: ["METRICS_TOKEN": Self.token])
        let bearer = try host.readyTenant("tenant_metrics")
        let prometheus = try Prometheus(target: host.base.replacingOccurrences(of: "http://", with: ""))
        let log = (try? String(contentsOfFile: prometheus.folder.path + "/prometheus.log", encoding: .utf8)) ?? ""
        #expect(try prometheus.waitFor("up{job=\"compass\"}", 1) == 1, "\(log.suffix(1500))")

        #expect(try host.events(bearer, LighttpdHost.batch(["m1", "m2", "m3"])).status == 200)
        #expect(try host.events(bearer, LighttpdHost.batch(["m1"])).json["duplicates"] as? Int == 1)
        #expect(try host.events(bearer, #"{"eventName":"Lead"}"#).status == 422)
        // Meta down: two events queued, waiting; then a cron run drains them.
        try host.fault("server_error", path: "2000101/events", remaining: 1)
        #expect(try host.events(bearer, LighttpdHost.batch(["m4", "m5"])).status == 202)
        #expect(try prometheus.waitFor("compass_meta_events_waiting", 2) == 2)
        #expect(try prometheus.waitFor("compass_meta_events_queued_total", 2) == 2)
        let cron = [("Authorization", "Bearer cron-secret-for-tests-0123456789")]
        #expect(try host.send("POST", "/api/cron/meta/refresh", headers: cron).status == 200)

        #expect(try prometheus.waitFor("compass_meta_events_sent_total", 5) == 5)
        #expect(try prometheus.waitFor("compass_meta_events_waiting", 0) == 0)
        #expect(try prometheus.waitFor("compass_meta_oldest_queued_event_age_seconds", 0) == 0)
        #expect(try prometheus.waitFor("compass_meta_events_duplicates_total", 1) == 1)
        #expect(try prometheus.waitFor("compass_meta_events_rejected_total{reason=\"invalid\"}", 1) == 1)
        #expect(try prometheus.waitFor("compass_meta_events_accepted_total", 6) == 6)
        #expect(try prometheus.waitFor("compass_meta_graph_calls_total{outcome=\"api_error\",code=\"2\"}", 1) == 1)
        // `cron_job`, not `job`: Prometheus gives every series its target's `job`.
        #expect(try prometheus.waitFor("compass_meta_refresh_last_run_job_items{cron_job=\"outbox\",figure=\"sent\"}", 2) == 2)
        #expect(try prometheus.value("compass_meta_refresh_last_run_timestamp_seconds") ?? 0 > Date().timeIntervalSince1970 - 120)

        // The exposition as promtool reads it; without the bearer, 401.
        let exposition = try host.send("GET", "/api/cron/meta/metrics", headers: [("Authorization", "Bearer " + Self.token)])
        #expect(exposition.status == 200 && exposition.headers["content-type"]?.hasPrefix("text/plain; version=0.0.4") == true)
        let checked = try Self.promtool(["check", "metrics"], input: exposition.body)
        #expect(checked.status == 0, "\(checked.output)")
        #expect(try host.send("GET", "/api/cron/meta/metrics").status == 401)
        #expect(try host.send("GET", "/api/cron/meta/metrics", headers: [("Authorization", "Bearer wrong")]).status == 401)
    }

    /// docs/alerts.yml: valid rules, each naming a metric the connector exposes.
    @Test func theAlertRulesPassPromtoolAndNameOurMetrics() throws {
        let path = FunctionsManifestTests.root.appendingPathComponent("docs/alerts.yml").path
        let checked = try Self.promtool(["check", "rules", path], input: [])
        #expect(checked.status == 0, "\(checked.output)")
        let rules = try String(contentsOfFile: path, encoding: .utf8)
        let named = Set(rules.matches(of: /compass_meta_[a-z_]+/).map { String($0.output) })
        let known = Set(MetricCatalog.all.map(\.name))
        #expect(!named.isEmpty && named.isSubset(of: known), "\(named.subtracting(known))")
    }

    static func promtool(_ arguments: [String], input: [UInt8]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/promtool")
        process.arguments = arguments
        let stdin = Pipe()
        let stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stdout
        try process.run()
        stdin.fileHandleForWriting.write(Data(input))
        try stdin.fileHandleForWriting.close()
        let output = String(decoding: stdout.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, output)
    }
}
