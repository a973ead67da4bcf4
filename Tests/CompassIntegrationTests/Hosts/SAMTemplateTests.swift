import Foundation
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

/// The AWS SAM template scripts/package-lambda writes (cfn-lint checks its schema in scripts/test).
@Suite struct SAMTemplateTests {
    @Test func everyProductionFunctionWithItsRoutesScheduleAndSecretParameters() throws {
        let manifest = try FunctionsManifest.load(path: FunctionsManifestTests.root.appendingPathComponent("functions.json").path)
        let text = SAMTemplate(manifest: manifest).render()
        #expect(text.contains("Runtime: \"provided.al2023\"") && text.contains("Handler: \"bootstrap\""))
        for function in manifest.functions {
            let start = try #require(text.range(of: "  \(SAMTemplate.resourceName(function.name)):\n"), "\(function.name)")
            let rest = text[start.upperBound...]
            let block = rest[..<(rest.range(of: "\n  [A-Za-z]+:\n", options: .regularExpression)?.lowerBound ?? rest.endIndex)]
            #expect(block.contains("CodeUri: \"\(function.name).zip\""))
            for path in function.paths {
                for method in function.methods {
                    #expect(block.contains("Path: \"\(path)\"\n            Method: \"\(method)\""), "\(function.name) \(method) \(path)")
                }
            }
            // Lambda's own variables are never the template's; the store is the stack's table
            // unless StoreKind=url, with the calls the store makes on that table alone.
            #expect(!block.contains("AWS_"), "\(function.name)")
            #expect(
                block.contains(
                    #"STORE_URL: !If [UseDynamoDBStore, !Sub "dynamodb://${StoreTable}?region=${AWS::Region}", !Ref "AWS::NoValue"]"#)
                    && block.contains(#"STORE_URL_SECRET_ID: !If [UseDynamoDBStore, !Ref "AWS::NoValue", !Ref StoreUrlSecretArn]"#)
                    && block.contains("Resource: !GetAtt StoreTable.Arn"), "\(function.name)")
            for action in SAMTemplate.tableActions { #expect(block.contains("- \"\(action)\"")) }
            for variable in function.environment where !SAMTemplate.isLambdaOwn(variable) && variable != "STORE_URL" {
                #expect(
                    block.contains("\(SAMTemplate.environmentName(for: variable)): !Ref \(SAMTemplate.parameter(for: variable))"),
                    "\(function.name): \(variable)")
                // A secret is never a plain environment variable: the function gets the secret's
                // ARN, the extension that reads it, and the right to read that secret.
                if SAMTemplate.secrets.contains(variable) {
                    #expect(!block.contains("          \(variable): "), "\(function.name): \(variable) in the environment")
                    #expect(
                        block.contains("- !Ref SecretsExtensionLayerArn") && block.contains("Action: \"secretsmanager:GetSecretValue\""))
                    #expect(
                        block.contains("!Ref \(SAMTemplate.secretParameterName(variable))\n")
                            || block.contains("!Ref \(SAMTemplate.secretParameterName(variable)), !Ref \"AWS::NoValue\"]"),
                        "\(function.name): \(variable)")
                }
            }
            #expect(block.contains("Timeout: \(function.schedule == nil ? min(function.timeoutSeconds, 29) : function.timeoutSeconds)"))
            #expect(block.contains("Type: \"Schedule\"") == (function.schedule != nil), "\(function.name)")
        }
        #expect(text.contains("Schedule: \"rate(1 minute)\""))
        for name in ["graph-sandbox", "dev-console", "GraphSandbox", "DevConsole"] { #expect(!text.contains(name)) }
        // A secret's parameter is the ARN of its secret; every required variable has no default,
        // the others default to empty.
        for variable in Set(manifest.functions.flatMap(\.environment)) where !SAMTemplate.isLambdaOwn(variable) {
            let start = try #require(text.range(of: "  \(SAMTemplate.parameter(for: variable)):\n"))
            let block = text[start.upperBound...].prefix(300).split(separator: "\n").prefix(4).joined(separator: "\n")
            #expect(block.contains("ARN of the Secrets Manager secret") == SAMTemplate.secrets.contains(variable), "\(variable)")
            #expect(
                block.contains("Default: \"\(SAMTemplate.defaults[variable] ?? "")\"") != SAMTemplate.required.contains(variable),
                "\(variable)")
        }
        #expect(SAMTemplate.secrets.contains("STORE_URL"))
        // The table: on-demand, expiry by TTL on the attribute the store writes, point-in-time
        // recovery, kept when the stack goes; a store of the user's own must be named.
        for line in [
            "  StoreTable:\n    Type: \"AWS::DynamoDB::Table\"\n    Condition: \"UseDynamoDBStore\"\n    DeletionPolicy: \"Retain\"",
            "BillingMode: \"PAY_PER_REQUEST\"", "TimeToLiveSpecification:\n        AttributeName: \"expires\"\n        Enabled: true",
            "PointInTimeRecoveryEnabled: true", "    Default: \"dynamodb\"", "RuleCondition: !Equals [!Ref StoreKind, \"url\"]",
            "  RefreshCronNotRunningAlarm:\n    Type: \"AWS::CloudWatch::Alarm\"", "MetricName: \"TokenFailures_reason_needs_reauth\"",
            "MetricName: \"DeadLetters\"", "MetricName: \"OldestQueuedEventAgeSeconds\"", "Namespace: !Ref MetricsNamespace",
        ] {
            #expect(text.contains(line), "\(line)")
        }
        #expect(SAMTemplate.required.isSubset(of: Config.variables) && SAMTemplate.secrets.isSubset(of: Config.variables))
        #expect(SAMTemplate.scheduleExpression("15 3 * * *") == "cron(15 3 * * ? *)")
        #expect(SAMTemplate.scheduleExpression("0 6 * * 1") == "cron(0 6 ? * 1 *)")
        #expect(SAMTemplate.scheduleExpression("bad") == nil)
    }
}
