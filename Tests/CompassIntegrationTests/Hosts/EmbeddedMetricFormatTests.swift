import Foundation
import Testing

@testable import CompassDev
@testable import CompassHosts
@testable import CompassPlatform
@testable import CompassTestSupport

/// On Lambda, send-event and refresh-cron write their figures as CloudWatch Embedded Metric
/// Format lines (one per invocation) on standard output, which Lambda sends to CloudWatch Logs.
/// Each line is checked against the members AWS's specification requires; the SAM template's
/// alarms name metrics these lines carry.
@Suite(.serialized) struct EmbeddedMetricFormatTests {
    /// The specification's required members: a JSON object whose `_aws` holds a numeric
    /// `Timestamp` and `CloudWatchMetrics`, each directive a `Namespace` (1 to 255 characters),
    /// `Dimensions` (arrays of at most 30 keys, each a root member holding a string) and
    /// `Metrics` (at most 100, each a `Name` that is a numeric root member, a `Unit` of
    /// CloudWatch's). Returns the problems found.
    static func problems(_ line: String) -> [String] {
        guard let root = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return ["not a JSON object"] }
        guard let aws = root["_aws"] as? [String: Any] else { return ["no _aws object"] }
        var found: [String] = []
        if !(aws["Timestamp"] is NSNumber) { found.append("Timestamp is not a number") }
        guard let directives = aws["CloudWatchMetrics"] as? [[String: Any]], !directives.isEmpty else {
            return found + ["no CloudWatchMetrics directive"]
        }
        let units: Set<String> = [
            "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes", "Bits", "Kilobits",
            "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second", "Kilobytes/Second", "Megabytes/Second",
            "Gigabytes/Second", "Terabytes/Second", "Bits/Second", "Kilobits/Second", "Megabits/Second", "Gigabits/Second",
            "Terabits/Second", "Count/Second", "None",
        ]
        for directive in directives {
            guard let namespace = directive["Namespace"] as? String, (1...255).contains(namespace.count) else {
                found.append("Namespace missing or of the wrong length")
                continue
            }
            for set in directive["Dimensions"] as? [[String]] ?? [["<missing>"]] {
                if set.count > 30 { found.append("a dimension set of more than 30 keys") }
                for key in set where !(root[key] is String) { found.append("dimension \(key) is not a string member") }
            }
            let metrics = directive["Metrics"] as? [[String: Any]] ?? []
            if metrics.isEmpty || metrics.count > 100 { found.append("Metrics empty or over 100") }
            for metric in metrics {
                guard let name = metric["Name"] as? String, (1...255).contains(name.count) else {
                    found.append("a metric without a Name")
                    continue
                }
                if !(root[name] is NSNumber) { found.append("\(name) is not a numeric member") }
                if let unit = metric["Unit"], !(unit is String && units.contains(unit as! String)) { found.append("\(name): unit \(unit)") }
            }
        }
        return found
    }

    static func lines(_ path: String) -> [String] {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
            .filter { $0.contains("\"_aws\"") }
    }

    @Test func sendEventAndRefreshCronWriteOneValidLinePerInvocation() throws {
        let functions = try LambdaFlowTests.Functions()
        defer { functions.stop() }
        let environment = ["METRICS_NAMESPACE": "CompassMetaTest"]
        for name in ["connect", "callback", "settings", "send-event", "refresh-cron"] {
            try functions.start(name, environment: environment)
        }
        let session = "compass_session=" + LambdaFunction.session("tenant_emf")
        let connect = try functions.invoke("connect", LambdaFlowTests.event("GET", "/api/connect/meta", cookies: [session]))
        let dialog = try #require((connect.json["headers"] as? [String: String])?["Location"])
        let approved = try CurlTransport().send(HTTPRequest(method: "GET", url: dialog + "&sandbox_action=approve"))
        let query = String(try #require(approved.headers["location"]).split(separator: "?", maxSplits: 1)[1])
        _ = try functions.invoke("callback", LambdaFlowTests.event("GET", "/api/connect/meta/callback", query: query, cookies: [session]))
        _ = try functions.invoke(
            "settings",
            LambdaFlowTests.event(
                "PUT", "/api/connect/meta/settings", headers: ["origin": "https://compass.example", "content-type": "application/json"],
                cookies: [session], body: #"{"adAccountId":"act_1000001","pixelId":"2000101"}"#))
        let bearer = ["authorization": "Bearer " + LambdaFunction.session("tenant_emf"), "content-type": "application/json"]
        for body in [LighttpdHost.batch(["e1", "e2"]), LighttpdHost.batch(["e1"])] {
            let sent = try functions.invoke(
                "send-event", LambdaFlowTests.event("POST", "/api/connect/meta/events", headers: bearer, body: body))
            #expect(sent.json["statusCode"] as? Int == 200, "\(sent.body)")
        }
        _ = try functions.invoke("refresh-cron", #"{"version":"0","source":"aws.events","detail-type":"Scheduled Event","detail":{}}"#)
        usleep(200_000)

        let sendLines = Self.lines(functions.folder.path + "/send-event.stdout")
        #expect(sendLines.count == 2, "\(sendLines)")
        for line in sendLines { #expect(Self.problems(line).isEmpty, "\(Self.problems(line)): \(line)") }
        let first = try JSONSerialization.jsonObject(with: Data((sendLines.first ?? "{}").utf8)) as? [String: Any]
        #expect(first?["EventsSent"] as? Int == 2 && first?["EventsAccepted"] as? Int == 2 && first?["Function"] as? String == "send-event")
        #expect(
            ((first?["_aws"] as? [String: Any])?["CloudWatchMetrics"] as? [[String: Any]])?.first?["Namespace"] as? String
                == "CompassMetaTest")
        let second = try JSONSerialization.jsonObject(with: Data((sendLines.last ?? "{}").utf8)) as? [String: Any]
        #expect(second?["EventsDuplicates"] as? Int == 1)

        let cronLines = Self.lines(functions.folder.path + "/refresh-cron.stdout")
        #expect(cronLines.count == 1, "\(cronLines)")
        for line in cronLines { #expect(Self.problems(line).isEmpty, "\(Self.problems(line)): \(line)") }
        let cron = try JSONSerialization.jsonObject(with: Data((cronLines.first ?? "{}").utf8)) as? [String: Any]
        #expect(
            cron?["RefreshRuns"] as? Int == 1 && cron?["EventsWaiting"] as? Int == 0 && cron?["DeadLetters"] as? Int == 0, "\(cron ?? [:])")
        // Every alarm of the template names a metric these lines carry, from the function they come from.
        for alarm in SAMTemplate.alarms where alarm.function == "refresh-cron" && alarm.metric != "TokenFailures_reason_needs_reauth" {
            #expect(cron?[alarm.metric] != nil, "\(alarm.name)")
        }
        #expect(
            EmbeddedMetricFormat.metricName(MetricSeries(MetricCatalog.tokenFailures, ["reason": "needs_reauth"]))
                == "TokenFailures_reason_needs_reauth")
        // The check itself refuses what the specification does not allow.
        #expect(
            !Self.problems(#"{"_aws":{"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[["F"]],"Metrics":[{"Name":"X"}]}]}}"#).isEmpty)
    }
}
