import CompassPlatform

/// The AWS SAM template for the production functions of `functions.json`: one
/// `AWS::Serverless::Function` per function on `provided.al2023` (its zip from
/// `scripts/package-lambda`, with the executable as `bootstrap`), an HTTP API event per path
/// and method, an EventBridge rule (`aws.events`, `Scheduled Event`) where the manifest has one, and every variable a
/// parameter. A secret (`secrets`, `STORE_URL` among them) is no environment variable: its
/// parameter is the ARN of a Secrets Manager secret, the function gets `<VARIABLE>_SECRET_ID`,
/// the AWS Parameters and Secrets Lambda Extension as a layer, and the right to read those secrets
/// only (`LambdaSecrets` reads it at the first invocation). The store is a DynamoDB table the
/// template creates (`StoreKind=dynamodb`, the default: on-demand, TTL on `expires`,
/// point-in-time recovery, kept when the stack goes) with each function allowed the calls the
/// store makes on that table alone, or any `STORE_URL` from a secret (`StoreKind=url`). AWS's own
/// variables (`AWS_REGION`, credentials) are Lambda's to set, never parameters. Written as YAML
/// whose every scalar is quoted.
package struct SAMTemplate {
    package var manifest: FunctionsManifest

    /// Variables a deployment must set; the rest may stay empty (their defaults apply).
    package static let required: Set<String> = [
        "META_APP_ID", "META_APP_SECRET", "OAUTH_REDIRECT_BASE_URL", "COMPASS_JWT_SECRET", "CREDENTIALS_KEY", "CRON_SECRET",
    ]
    /// What the store's calls need on the table (`DynamoDBStore`), and nothing else.
    package static let tableActions = [
        "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:Query", "dynamodb:Scan", "dynamodb:BatchWriteItem",
    ]
    /// Optional variables whose parameter has a default of its own (the alarms name it).
    package static let defaults = ["METRICS_NAMESPACE": "CompassMeta"]
    /// CloudWatch alarms on the functions' Embedded Metric Format figures: the alarm, the metric,
    /// the function whose lines carry it, the statistic, the period, the comparison and threshold,
    /// and how a period without data counts.
    package static let alarms:
        [(
            name: String, metric: String, function: String, statistic: String, period: Int, comparison: String, threshold: Int,
            missing: String
        )] = [
            ("RefreshCronNotRunningAlarm", "RefreshRuns", "refresh-cron", "Sum", 300, "LessThanThreshold", 1, "breaching"),
            (
                "TokensNeedReconnectingAlarm", "TokenFailures_reason_needs_reauth", "refresh-cron", "Sum", 3600, "GreaterThanThreshold", 0,
                "notBreaching"
            ),
            ("DeadLettersAlarm", "DeadLetters", "refresh-cron", "Maximum", 300, "GreaterThanThreshold", 0, "notBreaching"),
            (
                "OldestQueuedEventAlarm", "OldestQueuedEventAgeSeconds", "refresh-cron", "Maximum", 300, "GreaterThanThreshold", 3600,
                "notBreaching"
            ),
        ]

    /// Lambda sets these itself (and refuses a function that sets them).
    package static func isLambdaOwn(_ variable: String) -> Bool { variable.hasPrefix("AWS_") }
    /// Variables kept in Secrets Manager, never in the functions' environment (`STORE_URL` can
    /// hold the database's password).
    package static let secrets: Set<String> = [
        "META_APP_SECRET", "COMPASS_JWT_SECRET", "CREDENTIALS_KEY", "CREDENTIALS_KEY_PREVIOUS", "CRON_SECRET", "ETCD_PASSWORD",
        "COMPASS_WEBHOOK_SECRET", "STORE_URL", "METRICS_TOKEN",
    ]

    /// `MetaAppSecretSecretArn` for `META_APP_SECRET`: the ARN of the secret holding it.
    package static func secretParameterName(_ variable: String) -> String { parameterName(variable) + "SecretArn" }

    /// The parameter of a variable: its value, or for a secret the ARN of the secret holding it.
    package static func parameter(for variable: String) -> String {
        secrets.contains(variable) ? secretParameterName(variable) : parameterName(variable)
    }

    /// The name the function's environment has for a variable (`<VARIABLE>_SECRET_ID` for a secret).
    package static func environmentName(for variable: String) -> String {
        secrets.contains(variable) ? variable + "_SECRET_ID" : variable
    }
    /// API Gateway ends an HTTP API integration after 30 s: a function that only answers HTTP
    /// stops a second before, so its invocation deadline bounds its calls to Meta and the store.
    package static let httpTimeoutSeconds = 29

    package init(manifest: FunctionsManifest) {
        self.manifest = manifest
    }

    /// `MetaAppId` for `META_APP_ID`.
    package static func parameterName(_ variable: String) -> String {
        variable.split(separator: "_").map { $0.prefix(1) + $0.dropFirst().lowercased() }.joined()
    }

    /// `FunctionName` for `function-name`.
    package static func resourceName(_ function: String) -> String {
        function.split(separator: "-").map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined() + "Function"
    }

    /// A five-field cron line as EventBridge writes it: six fields, `?` for one of the days.
    package static func scheduleExpression(_ cron: String) -> String? {
        let fields = cron.split(separator: " ").map(String.init)
        guard fields.count == 5 else { return nil }
        if fields == ["*", "*", "*", "*", "*"] { return "rate(1 minute)" }
        let (minute, hour, day, month, weekday) = (fields[0], fields[1], fields[2], fields[3], fields[4])
        return weekday == "*" ? "cron(\(minute) \(hour) \(day) \(month) ? *)" : "cron(\(minute) \(hour) ? \(month) \(weekday) *)"
    }

    package var functions: [FunctionsManifest.Function] { manifest.served(sandbox: false) }

    /// A function's variables that are the template's to set.
    private func variables(of function: FunctionsManifest.Function) -> [String] {
        function.environment.filter { !Self.isLambdaOwn($0) }
    }

    package func render() -> String {
        let variables = Array(Set(functions.flatMap(variables(of:)))).sorted()
        var lines = [
            "# Generated by `compass-dev sam-template functions.json` (scripts/package-lambda): do not edit.",
            "AWSTemplateFormatVersion: \"2010-09-09\"",
            "Transform: \"AWS::Serverless-2016-10-31\"",
            "Description: \(quoted("Compass Meta connector: one custom-runtime function per route of functions.json"))",
        ]
        lines += parameters(variables) + conditions(variables)
        lines += [
            "Globals:",
            "  Function:",
            "    Runtime: \"provided.al2023\"",
            "    Handler: \"bootstrap\"",
            "    Architectures:",
            "      - \"x86_64\"",
            "    MemorySize: 256",
            "Resources:",
            "  HttpApi:",
            "    Type: \"AWS::Serverless::HttpApi\"",
        ]
        lines += table()
        for function in functions { lines += resource(function) }
        lines += alarms()
        lines += [
            "Outputs:",
            "  ApiUrl:",
            "    Description: \"The base URL of the routes (OAUTH_REDIRECT_BASE_URL when no domain of your own is in front)\"",
            "    Value: !Sub \"https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}\"",
        ]
        return lines.joined(separator: "\n") + "\n"
    }

    /// A parameter per variable (for a secret, the ARN of its secret) and the extension's layer.
    private func parameters(_ variables: [String]) -> [String] {
        var lines = ["Parameters:"]
        for variable in variables {
            lines.append("  \(Self.parameter(for: variable)):")
            lines.append("    Type: \"String\"")
            if Self.secrets.contains(variable) {
                lines.append("    Description: \(quoted("ARN of the Secrets Manager secret whose string is \(variable)"))")
            } else {
                lines.append("    Description: \(quoted(variable))")
            }
            lines.append(Self.required.contains(variable) ? "    MinLength: 1" : "    Default: \(quoted(Self.defaults[variable] ?? ""))")
        }
        return lines + [
            "  StoreKind:",
            "    Type: \"String\"",
            "    Description: \"dynamodb: a table this stack creates; url: StoreUrlSecretArn names the store\"",
            "    AllowedValues:",
            "      - \"dynamodb\"",
            "      - \"url\"",
            "    Default: \"dynamodb\"",
            "  SecretsExtensionLayerArn:",
            "    Type: \"String\"",
            "    Description: \(quoted("ARN of the AWS Parameters and Secrets Lambda Extension layer for the region and x86_64 (AWS's list: https://docs.aws.amazon.com/secretsmanager/latest/userguide/retrieving-secrets_lambda.html)"))",
            "    MinLength: 1",
        ]
    }

    /// A condition per optional secret (its ARN is in the policy only when given), the store's
    /// kind, and the rule that a store of the user's own is named.
    private func conditions(_ variables: [String]) -> [String] {
        let optionalSecrets = variables.filter { Self.secrets.contains($0) && !Self.required.contains($0) }
        return ["Conditions:", "  UseDynamoDBStore: !Equals [!Ref StoreKind, \"dynamodb\"]"]
            + optionalSecrets.map { variable in
                "  Has\(Self.secretParameterName(variable)): !Not [!Equals [!Ref \(Self.secretParameterName(variable)), \"\"]]"
            } + [
                "Rules:",
                "  StoreUrlNamed:",
                "    RuleCondition: !Equals [!Ref StoreKind, \"url\"]",
                "    Assertions:",
                "      - Assert: !Not [!Equals [!Ref \(Self.secretParameterName("STORE_URL")), \"\"]]",
                "        AssertDescription: \"StoreKind url needs StoreUrlSecretArn\"",
            ]
    }

    /// The store's table, when the stack makes it: the key `DynamoDBStore` uses, on-demand,
    /// expiry by TTL, point-in-time recovery; kept when the stack is deleted or the table replaced.
    private func table() -> [String] {
        [
            "  StoreTable:",
            "    Type: \"AWS::DynamoDB::Table\"",
            "    Condition: \"UseDynamoDBStore\"",
            "    DeletionPolicy: \"Retain\"",
            "    UpdateReplacePolicy: \"Retain\"",
            "    Properties:",
            "      BillingMode: \"PAY_PER_REQUEST\"",
            "      AttributeDefinitions:",
            "        - AttributeName: \"pk\"",
            "          AttributeType: \"S\"",
            "        - AttributeName: \"sk\"",
            "          AttributeType: \"S\"",
            "      KeySchema:",
            "        - AttributeName: \"pk\"",
            "          KeyType: \"HASH\"",
            "        - AttributeName: \"sk\"",
            "          KeyType: \"RANGE\"",
            "      TimeToLiveSpecification:",
            "        AttributeName: \"expires\"",
            "        Enabled: true",
            "      PointInTimeRecoverySpecification:",
            "        PointInTimeRecoveryEnabled: true",
            "      SSESpecification:",
            "        SSEEnabled: true",
        ]
    }

    /// One function: its package, timeout, variables, secrets' layer and policy, and events.
    private func resource(_ function: FunctionsManifest.Function) -> [String] {
        let httpOnly = function.schedule == nil
        var lines = [
            "  \(Self.resourceName(function.name)):",
            "    Type: \"AWS::Serverless::Function\"",
            "    Properties:",
            "      CodeUri: \(quoted(function.name + ".zip"))",
            "      Timeout: \(httpOnly ? min(function.timeoutSeconds, Self.httpTimeoutSeconds) : function.timeoutSeconds)",
            "      Environment:",
            "        Variables:",
        ]
        for variable in variables(of: function) {
            if variable == "STORE_URL" {
                lines += [
                    "          STORE_URL: !If [UseDynamoDBStore, !Sub \"dynamodb://${StoreTable}?region=${AWS::Region}\", !Ref \"AWS::NoValue\"]",
                    "          STORE_URL_SECRET_ID: !If [UseDynamoDBStore, !Ref \"AWS::NoValue\", !Ref \(Self.parameter(for: variable))]",
                ]
            } else {
                lines.append("          \(Self.environmentName(for: variable)): !Ref \(Self.parameter(for: variable))")
            }
        }
        let secrets = variables(of: function).filter { Self.secrets.contains($0) }
        if !secrets.isEmpty {
            lines += ["      Layers:", "        - !Ref SecretsExtensionLayerArn"]
        }
        if function.environment.contains("STORE_URL") || !secrets.isEmpty { lines.append("      Policies:") }
        if function.environment.contains("STORE_URL") {
            lines += [
                "        - !If",
                "          - UseDynamoDBStore",
                "          - Statement:",
                "              - Effect: \"Allow\"",
                "                Action:",
            ]
            lines += Self.tableActions.map { "                  - \"\($0)\"" }
            lines += ["                Resource: !GetAtt StoreTable.Arn", "          - !Ref \"AWS::NoValue\""]
        }
        if !secrets.isEmpty {
            lines += [
                "        - Statement:",
                "            - Effect: \"Allow\"",
                "              Action: \"secretsmanager:GetSecretValue\"",
                "              Resource:",
            ]
            for variable in secrets {
                let name = Self.secretParameterName(variable)
                lines.append(
                    Self.required.contains(variable)
                        ? "                - !Ref \(name)"
                        : "                - !If [Has\(name), !Ref \(name), !Ref \"AWS::NoValue\"]")
            }
        }
        return lines + events(function)
    }

    /// The alarms, on the namespace the functions write their figures to.
    private func alarms() -> [String] {
        Self.alarms.flatMap { alarm in
            [
                "  \(alarm.name):",
                "    Type: \"AWS::CloudWatch::Alarm\"",
                "    Properties:",
                "      Namespace: !Ref MetricsNamespace",
                "      MetricName: \(quoted(alarm.metric))",
                "      Dimensions:",
                "        - Name: \"Function\"",
                "          Value: \(quoted(alarm.function))",
                "      Statistic: \(quoted(alarm.statistic))",
                "      Period: \(alarm.period)",
                "      EvaluationPeriods: 1",
                "      ComparisonOperator: \(quoted(alarm.comparison))",
                "      Threshold: \(alarm.threshold)",
                "      TreatMissingData: \(quoted(alarm.missing))",
            ]
        }
    }

    /// An HTTP API event per path and method, and the schedule where the manifest has one.
    private func events(_ function: FunctionsManifest.Function) -> [String] {
        var lines = ["      Events:"]
        var index = 0
        for path in function.paths {
            for method in function.methods {
                index += 1
                lines += [
                    "        Http\(index):",
                    "          Type: \"HttpApi\"",
                    "          Properties:",
                    "            ApiId: !Ref HttpApi",
                    "            Path: \(quoted(path))",
                    "            Method: \(quoted(method))",
                ]
            }
        }
        if let schedule = function.schedule, let expression = Self.scheduleExpression(schedule) {
            lines += [
                "        Schedule:",
                "          Type: \"Schedule\"",
                "          Properties:",
                "            Schedule: \(quoted(expression))",
            ]
        }
        return lines
    }

    /// A double-quoted YAML scalar (JSON's escaping is YAML's).
    private func quoted(_ text: String) -> String { String(decoding: JSONValue.string(text).serialized, as: UTF8.self) }
}
