import Foundation
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

@Suite struct NormalizationTests {
    func hashed(_ key: String, _ value: String) -> String? {
        guard case .success(let normalized) = UserDataNormalizer.normalize(key, value) else { return nil }
        return UserDataNormalizer.hash(normalized)
    }

    func normalized(_ key: String, _ value: String) -> String? {
        if case .success(let text) = UserDataNormalizer.normalize(key, value) { return text }
        return nil
    }

    @Test func matchesMetasPublishedHashes() {
        #expect(hashed("em", "John_Smith@gmail.com") == "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f")
        #expect(hashed("ph", "16505551212") == "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176")
        #expect(hashed("fn", "mary") == "6915771be1c5aa0c886870b6951b03d7eafc121fea0e80a5ea83beb7c449f4ec")
        #expect(hashed("ph", "+1 (650) 555-1212") == hashed("ph", "16505551212"))
        #expect(hashed("em", "  JOHN_SMITH@gmail.com ") == hashed("em", "John_Smith@gmail.com"))
    }

    static let cases: [(String, String, String?)] = [
        ("em", " Jane.Doe@Example.COM ", "jane.doe@example.com"),
        ("em", "not-an-email", nil),
        ("em", "a@b", nil),
        ("ph", "+44 20 7946 0958", "442079460958"),
        ("ph", "001 650 555 1212", "16505551212"),
        ("ph", "1.650.555.1212", "16505551212"),
        ("ph", "+1 (650) 555-1212 ext", "16505551212"),
        ("ph", "tel:+1-650-555-1212", "16505551212"),
        ("ph", "call me", nil),
        ("ph", "12345", nil),
        ("fn", "  Mary-Ann ", "maryann"),
        ("fn", "Émilie", "émilie"),
        ("ln", "O'Brien Jr.", "obrienjr"),
        ("fn", "123", nil),
        ("ge", "Female", "f"),
        ("ge", "M", "m"),
        ("ge", "male", "m"),
        ("ge", "x", nil),
        ("db", "1990-02-14", "19900214"),
        ("db", "19900214", "19900214"),
        ("db", "1990/2/14", "19900214"),
        ("db", "02/14/1990", "19900214"),
        ("db", "14/02/1990", "19900214"),
        ("db", "03/04/1990", nil),
        ("db", "1990-02-30", nil),
        ("db", "2000-02-29", "20000229"),
        ("db", "yesterday", nil),
        ("db", "١٩٩٠-٠٢-١٤", nil),
        ("db", "99999999999999999999-1-1", nil),
        ("ct", "San Francisco", "sanfrancisco"),
        ("ct", "Saint-Étienne 42", "saintétienne"),
        ("st", "California", "ca"),
        ("st", "CA", "ca"),
        ("st", "new york", "ny"),
        ("st", "Bayern", "bayern"),
        ("zp", "94025-1234", "94025"),
        ("zp", "SW1A 1AA", "sw1a1aa"),
        ("country", "US", "us"),
        ("country", "United States", "us"),
        ("country", "DEU", "de"),
        ("country", "Germany", "de"),
        ("country", "Côte d'Ivoire", "ci"),
        ("country", "Narnia", nil),
        ("external_id", " user-123 ", "user-123"),
    ]

    @Test(arguments: cases)
    func normalizesEachKeyAsDocumented(key: String, input: String, expected: String?) {
        #expect(normalized(key, input) == expected)
    }

    @Test func neverHashesADigestTwice() {
        let digest = "62A14E44F765419D10FEA99367361A727C12365E2520F32218D505ED9AA0F62F"
        for key in UserDataNormalizer.hashedKeys {
            #expect(hashed(key, digest) == digest.lowercased())
            #expect(hashed(key, " \(digest.lowercased()) ") == digest.lowercased())
        }
    }

    @Test(arguments: [
        ("192.168.1.10", true), ("255.255.255.255", true), ("256.1.1.1", false), ("1.2.3", false),
        ("01.2.3.4", false), ("2001:db8::1", true), ("::1", true), ("::ffff:192.0.2.1", true),
        ("fe80::1%eth0", true), ("2001:db8:::1", false), ("1:2:3:4:5:6:7:8:9", false), ("hello", false),
        ("1:2:3:4:5:6:7:8", true), ("::", true),
    ])
    func recognisesIPAddresses(address: String, valid: Bool) {
        #expect(UserDataNormalizer.isIPAddress(address) == valid)
    }
}
