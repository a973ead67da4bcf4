import Foundation
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

/// The same inputs through our normalizer and through Meta's official Python SDK
/// (facebook-business 26.0.3, installed by this test into a venv under the build folder, .build/python/). Where the
/// SDK's rule and Meta's documentation agree, the hashes must be equal; where they differ, the
/// case must be listed below with our rule, and it must really differ.
@Suite struct SDKParityTests {
    static let sdkVersion = "26.0.3"
    static let venv = FunctionsManifestTests.root.appendingPathComponent(".build/python/facebook-business-\(sdkVersion)")

    static let inputs: [(String, String)] = [
        ("em", "John_Smith@gmail.com"), ("em", " Jane.Doe@Example.COM "), ("em", "not-an-email"),
        ("ph", "16505551212"), ("ph", "+1 (650) 555-1212"), ("ph", "001 650 555 1212"), ("ph", "1.650.555.1212"),
        ("ph", "+44 20 7946 0958"), ("ph", "0044 20 7946 0958"),
        ("fn", "mary"), ("fn", "  Mary "), ("fn", "Mary-Ann"), ("fn", "Émilie"), ("ln", "O'Brien"), ("ln", "van der Berg"),
        ("ge", "f"), ("ge", "M"), ("ge", "female"),
        ("db", "19900214"), ("db", "1990-02-14"), ("db", "02/14/1990"),
        ("ct", "menlopark"), ("ct", "Menlo Park"), ("ct", "St. Louis"), ("ct", "Winston-Salem"), ("ct", "Coeur d'Alene"),
        ("st", "ca"), ("st", "CA"), ("st", "California"), ("st", "New York"),
        ("zp", "94025"), ("zp", "94025-1234"), ("zp", "SW1A 1AA"),
        ("country", "us"), ("country", "US"), ("country", "United States"), ("country", "DEU"),
        ("em", "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f"),
        ("zp", "94025 1234"), ("zp", "940251234"),
        ("f5first", "Mary"), ("f5first", "Christopher"), ("f5last", "Smithson"), ("f5first", "Mary-Ann"),
        ("fi", "J"), ("fi", "jane"),
        ("dobd", "7"), ("dobd", "07"), ("dobd", "31"), ("dobd", "32"), ("dobm", "2"), ("dobm", "12"), ("dobm", "13"),
        ("doby", "1990"), ("doby", "90"),
        // Hashed input: a digest in capitals or with spaces, an MD5, and values from Meta's
        // Parameter Builder library (the digest, a dot and the library's suffix).
        ("ph", " E323EC626319CA94EE8BFF2E4C87CF613BE6EA19919ED1364124E16807AB3176 "),
        ("external_id", "5d41402abc4b2a76b9719d911017c592"),
        ("external_id", "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f.AQ"),
        ("em", "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f.AQQCAQAA"),
        ("external_id", "5d41402abc4b2a76b9719d911017c592.AQ"),
    ]

    /// Where Meta's documentation goes further than the SDK: our rule, in words.
    static let documentedDifferences: [String: String] = [
        "ph|1.650.555.1212": "dots are separators: the SDK refuses the number, we keep its digits",
        "fn|Mary-Ann": "names keep letters only: the SDK keeps the hyphen",
        "ln|O'Brien": "names keep letters only: the SDK keeps the apostrophe",
        "ln|van der Berg": "names lose their spaces: the SDK keeps them",
        "ge|female": "gender words become f or m: the SDK hashes the word",
        "db|1990-02-14": "dates become YYYYMMDD: the SDK hashes the text as given",
        "db|02/14/1990": "unambiguous dates become YYYYMMDD: the SDK hashes the text as given",
        "ct|Coeur d'Alene": "cities keep letters only: the SDK keeps the apostrophe",
        "st|California": "US state names become their codes: the SDK hashes the name",
        "st|New York": "US state names become their codes: the SDK hashes the name",
        "country|United States": "country names become alpha-2: the SDK refuses them",
        "country|DEU": "alpha-3 codes become alpha-2: the SDK refuses them",
        "zp|94025 1234": "a US ZIP+4 becomes its first five digits: the SDK keeps all nine",
        "zp|940251234": "a US ZIP+4 becomes its first five digits: the SDK keeps all nine",
        "f5first|Mary-Ann": "name parts keep letters only: the SDK keeps the hyphen among the five",
        "external_id|5d41402abc4b2a76b9719d911017c592":
            "an MD5 is no form Meta's Conversions API takes: we hash the 32 digits as the id; the SDK sends the MD5 as it is",
        "external_id|62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f.AQ":
            "a Parameter Builder value passes as it is: the SDK hashes it again",
        "em|62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f.AQQCAQAA":
            "a Parameter Builder value passes as it is: the SDK refuses it as an email address",
        "external_id|5d41402abc4b2a76b9719d911017c592.AQ":
            "an MD5 from the Parameter Builder is refused (invalid_hash): the SDK hashes it as the id",
    ]

    /// The value as the connector sends it: through the whole event path (`ConversionEvent`), so
    /// that hashed input (`HashedInput`) is compared too; nil when the value is refused or left out.
    static func ours(_ key: String, _ value: String) -> String? {
        let event: JSONValue = .object([
            "eventName": .string("Lead"), "eventTime": .int(Date().unixSeconds - 60), "actionSource": .string("email"),
            "eventId": .string("parity"), "userData": .object([key: .string(value)]),
        ])
        guard case .success(let normalized) = ConversionEvent.normalize(event, tenantId: "parity", now: Date()) else { return nil }
        return normalized.payload["user_data"]?[key]?.string
    }

    static func ensureVenv() throws -> URL {
        try PythonVenv.ensure(venv, installing: ["facebook-business==\(sdkVersion)"]).appendingPathComponent("bin/python")
    }

    @discardableResult
    static func run(_ executable: String, _ arguments: [String], input: Data? = nil) throws -> Data {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = Pipe()
        let stdin = Pipe()
        process.standardOutput = output
        process.standardInput = stdin
        try process.run()
        if let input { stdin.fileHandleForWriting.write(input) }
        try stdin.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw WebDriver.Failure(description: "\(executable) \(arguments.joined(separator: " ")) exited \(process.terminationStatus)")
        }
        return data
    }

    @Test(.timeLimit(.minutes(5)))
    func ourHashesMatchTheOfficialSDKWhereTheRulesAgree() throws {
        let python = try Self.ensureVenv()
        let script = FunctionsManifestTests.root.appendingPathComponent("Tests/parity/sdk_normalize.py").path
        let request = try JSONSerialization.data(withJSONObject: Self.inputs.map { [$0.0, $0.1] })
        let answer = try Self.run(python.path, [script], input: request)
        let sdk = try #require(try JSONSerialization.jsonObject(with: answer) as? [Any])
        #expect(sdk.count == Self.inputs.count)

        var table = ["key | input | SDK | ours | verdict"]
        var agreed = 0
        for (index, (key, value)) in Self.inputs.enumerated() {
            let theirs = sdk[index] as? String
            let mine = Self.ours(key, value)
            let id = "\(key)|\(value)"
            let documented = Self.documentedDifferences[id]
            let verdict: String
            if theirs == mine {
                agreed += 1
                verdict = "same"
                #expect(documented == nil, "listed as a difference but the SDK agrees: \(id)")
            } else {
                verdict = "differs: " + (documented ?? "UNDOCUMENTED")
                #expect(documented != nil, "undocumented difference for \(id): SDK \(theirs ?? "refuses"), ours \(mine ?? "refuses")")
            }
            table.append(
                "\(key) | \(value) | \(theirs.map { String($0.prefix(12)) } ?? "refuses") | \(mine.map { String($0.prefix(12)) } ?? "refuses") | \(verdict)"
            )
        }
        print(table.joined(separator: "\n"))
        print("SDK parity: \(agreed) of \(Self.inputs.count) cases identical, \(Self.inputs.count - agreed) documented differences")
    }
}
