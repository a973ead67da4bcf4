import Foundation
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

@Suite struct ConfigTests {
    /// Each layer parses its own variables from the one read of the environment.
    @Test func eachVariableBelongsToOneLayer() throws {
        let layers = [
            PlatformSettings.variables, MetaSettings.variables, StoreSettings.variables, Config.Routes.variables,
            Config.Development.variables,
        ]
        #expect(Set(Config.variables).count == layers.map(\.count).reduce(0, +))
        let environment = [
            "LOG_LEVEL": "debug", "META_API_VERSION": "v25.0", "STORE_URL": "file:///srv/store", "OUTBOX_MAX_EVENTS": "9",
            "SANDBOX_LATENCY_MS": "7",
        ]
        let config = try Config.load(from: environment, workingDirectory: nil)
        let read = EnvironmentReader(environment)
        let platform = try PlatformSettings.load(read)
        let meta = try MetaSettings.load(read)
        #expect(config.platform.logLevel == .debug && platform.logLevel == .debug)
        #expect(config.meta.apiVersion == "v25.0" && meta.apiVersion == "v25.0")
        #expect(config.store.location == .files(root: "/srv/store"))
        #expect(config.routes.outboxMaxEvents == 9 && config.development.sandboxLatencyMilliseconds == 7)
    }

    @Test func concurrencyAndSandboxLatencyAreBounded() throws {
        let config = try Config.load(from: ["META_CONCURRENCY": "4", "SANDBOX_LATENCY_MS": "200"], workingDirectory: "/tmp")
        #expect(config.routes.metaConcurrency == 4 && config.development.sandboxLatencyMilliseconds == 200)
        #expect(try Config.load(from: [:], workingDirectory: "/tmp").routes.metaConcurrency == 8)
        for (name, value) in [
            ("META_CONCURRENCY", "0"), ("META_CONCURRENCY", "65"), ("SANDBOX_LATENCY_MS", "-1"), ("REFRESH_BUDGET_SECONDS", "0"),
        ] {
            #expect(throws: ConfigError.self, "\(name)=\(value)") { try Config.load(from: [name: value], workingDirectory: "/tmp") }
        }
    }

    let key = Data(Crypto.randomBytes(32)).base64EncodedString()

    @Test func defaultsWhenOptionalVariablesAreAbsent() throws {
        let config = try Config.load(from: [:], workingDirectory: "/srv/app")
        #expect(config.meta.apiVersion == MetaSettings.defaultAPIVersion)
        #expect(config.meta.graphURL == "https://graph.facebook.com")
        #expect(config.meta.dialogURL == "https://www.facebook.com")
        #expect(config.meta.scopes == ["ads_read", "business_management"])
        #expect(config.store.location == .files(root: "/srv/app/.data"))
        #expect(throws: ConfigError(variable: "META_APP_ID", problem: "is not set")) { try config.meta.app() }
        #expect(throws: ConfigError(variable: "COMPASS_JWT_SECRET", problem: "is not set")) { try config.platform.sessionSecret() }
    }

    @Test(arguments: [
        ("META_API_VERSION", "18.0"), ("META_APP_ID", "abc"), ("META_GRAPH_URL", "ftp://x"),
        ("OAUTH_REDIRECT_BASE_URL", "joincompass.ai"), ("COMPASS_JWT_SECRET", "short"),
        ("CREDENTIALS_KEY", "bm90IDMyIGJ5dGVz"), ("STORE_URL", "redis://x"), ("STORE_URL", "file://relative"),
        ("LOG_LEVEL", "loud"), ("META_SCOPES", "ads read"), ("META_TIMEOUT_MS", "5"),
    ])
    func malformedValuesNameTheirVariable(name: String, value: String) {
        #expect {
            try Config.load(from: [name: value], workingDirectory: "/")
        } throws: { error in
            (error as? ConfigError)?.variable == name
                && (error as? ConfigError)?.apiError.message.contains(name) == true
        }
    }

    @Test func aBaseURLWithWhitespaceIsRefusedAsCharactersSeeIt() {
        // Every ASCII scalar and a few others, alone and inside a URL, as Character judges them.
        let scalars = (0..<0x80).map { Unicode.Scalar(UInt8($0)) } + ["\u{85}", "\u{A0}", "\u{2028}", "\u{3000}", "é", "\u{200B}"]
        for scalar in scalars {
            let text = "https://joincompass.ai/a\(scalar)b"
            #expect(EnvironmentReader.hasWhitespace(text) == text.contains(where: \.isWhitespace), "U+\(String(scalar.value, radix: 16))")
        }
        #expect(EnvironmentReader.hasWhitespace("https://a.example/\r\n"))
        for value in ["https://joincompass.ai/a b", "https://joincompass.ai/\ta", "https://joincompass.ai/a\u{A0}b"] {
            #expect(throws: ConfigError.self) { try EnvironmentReader.baseURL(value, variable: "OAUTH_REDIRECT_BASE_URL") }
        }
    }

    @Test func parsesStoresAndTrimsTrailingSlashes() throws {
        let config = try Config.load(
            from: [
                "STORE_URL": "etcd://10.0.0.1:2379,10.0.0.2:2379", "OAUTH_REDIRECT_BASE_URL": "https://joincompass.ai/",
                "CREDENTIALS_KEY": key, "META_API_VERSION": "v25.0",
            ], workingDirectory: "/")
        #expect(config.store.location == .etcd(endpoints: ["http://10.0.0.1:2379", "http://10.0.0.2:2379"], namespace: ""))
        #expect(
            try Config.load(from: ["STORE_URL": "etcd+https://e1:2379/compass/prod"], workingDirectory: "/").store.location
                == .etcd(endpoints: ["https://e1:2379"], namespace: "compass/prod/"))
        #expect(try config.meta.callbackURL() == "https://joincompass.ai/api/connect/meta/callback")
        #expect(config.meta.apiVersion == "v25.0")
        #expect(try config.platform.credentialCipher().previous == nil)
    }

    /// `dynamodb://TABLE?region=...&endpoint=...`; the region from `AWS_REGION` when the URL has
    /// none (Lambda sets it); a clear error for a bad table name, a missing region or another
    /// parameter; AWS's variables kept for the credentials.
    @Test func parsesDynamoDBStores() throws {
        let load = { (environment: [String: String]) throws -> Config in try Config.load(from: environment, workingDirectory: "/") }
        #expect(
            try load(["STORE_URL": "dynamodb://compass-meta?region=eu-west-1&endpoint=http://127.0.0.1:5000/"]).store.location
                == .dynamodb(table: "compass-meta", region: "eu-west-1", endpoint: "http://127.0.0.1:5000"))
        let lambda = try load(["STORE_URL": "dynamodb://compass.meta_1", "AWS_REGION": "us-east-1", "AWS_SESSION_TOKEN": "tok"])
        #expect(lambda.store.location == .dynamodb(table: "compass.meta_1", region: "us-east-1", endpoint: nil))
        #expect(lambda.store.awsEnvironment == ["AWS_REGION": "us-east-1", "AWS_SESSION_TOKEN": "tok"])
        for bad in [
            "dynamodb://ab?region=eu-west-1", "dynamodb://table", "dynamodb://table?region=EU", "dynamodb://t/x?region=eu-west-1",
            "dynamodb://table?region=eu-west-1&color=red", "dynamodb://table?region=eu-west-1&endpoint=ftp://x",
        ] {
            #expect(throws: ConfigError.self, "\(bad)") { try load(["STORE_URL": bad]) }
        }
    }
}
